"""`gunyah conformance`: a guest against every persona."""

from __future__ import annotations

import argparse
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import render
from ..conduit import Kind
from ..guest.references import DEFAULT_REFERENCE, REFERENCES
from ..model import PERSONAS, PERSONAS_BY_NAME
from ..outcome import EXIT_FAILED_ROWS
from .common import (
    EXIT_GUEST_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_json,
    add_limits,
    check_output_path,
    emit,
    error,
    seconds,
)


def cmd_conformance(args: argparse.Namespace) -> int:
    from .. import conformance
    from ..vcpu import GuestError, load_elf

    kind: Kind = "smc" if args.smc else "hvc"
    names = args.persona or [p.name for p in PERSONAS]
    personas = [PERSONAS_BY_NAME[n] for n in dict.fromkeys(names)]
    if args.junit is not None:
        if not args.junit or os.path.lexists(args.junit):
            raise UsageError(f"{args.junit}: already exists; the report never replaces a file")
        check_output_path(args.junit)
    if args.kernel:
        if args.guest is not None:
            raise UsageError("give a GUEST or --kernel, not both")
        rows = _kernel_rows(args, personas)
        if rows is None:
            return EXIT_GUEST_FAILED
    elif args.module:
        raise UsageError("--module goes with --kernel")
    elif args.guest is None:
        rows = conformance.check_python(personas, kind) + conformance.check_builtin(personas, kind)
    else:
        try:
            image = load_elf(args.guest)
            rows = conformance.check_image(
                image, personas, Path(args.guest).name,
                max_instructions=args.max_instructions, timeout=args.timeout,
            )  # fmt: skip
        except GuestError as e:
            raise UsageError(str(e)) from None
    reference = REFERENCES[args.reference]
    m = conformance.Matrix(tuple(replace(r, reference=reference) for r in rows), reference)
    data = m.to_dict()
    if args.junit is not None:
        try:
            with open(args.junit, "xb") as f:
                f.write(render.junit(data))
        except OSError as e:
            raise UsageError(f"{args.junit}: cannot write the report: {e.strerror or e}") from None
    emit(args, data, render.matrix(data))
    return EXIT_OK if m.passed else EXIT_FAILED_ROWS


def _kernel_rows(args: argparse.Namespace, personas: list[Any]) -> list[Any] | None:
    """The matrix on a real kernel; None (after one line) when it cannot boot."""
    from ..boot.kernel import BadKernel, MissingPart, find_parts
    from ..boot.machine import BootError, BootOptions
    from ..boot.matrix import check_jobs, check_kernel
    from ..boot.modules import ModuleError
    from ..toolchain import SHIM_ELF

    why = check_jobs(args.jobs)
    if why is not None:
        raise UsageError(why)
    module = args.module
    opts = BootOptions(
        modules=(module,) if module is not None else (),
        identify_module=module is None,
        user_verdict=module is not None,
        timeout=args.boot_timeout,
    )
    try:
        return check_kernel(personas, opts, find_parts(), SHIM_ELF, args.jobs)
    except (BadKernel, ModuleError) as e:
        raise UsageError(str(e)) from None
    except (MissingPart, BootError) as e:
        error(str(e))
        return None


def register(sub: Any) -> None:
    p = sub.add_parser(
        "conformance",
        help="try a guest's identification against every persona",
        description="Run a guest's identification against every persona (or those named "
        "with --persona) and print a matrix: expected verdict, observed verdict, pass or "
        "fail, and the trapped calls behind each failure. GUEST is a static AArch64 ELF "
        "that reports its verdict by exit status (0 supported, 1 not-gunyah, 3 "
        "unsupported-api); without it the built-in Python driver and the built-in AArch64 "
        "guest are checked. With --kernel, a real arm64 kernel boots once per persona in "
        "QEMU (see 'gunyah boot') and a kernel module gives the verdict. Exit status: "
        f"{EXIT_OK} every row passes, {EXIT_FAILED_ROWS} some row fails, {EXIT_USAGE} bad "
        f"usage, {EXIT_GUEST_FAILED} the kernel cannot boot here.",
    )
    p.add_argument("guest", nargs="?", metavar="GUEST", help="the guest program to check")
    p.add_argument(
        "--persona",
        action="append",
        choices=list(PERSONAS_BY_NAME),
        metavar="NAME",
        help="check only this persona (repeatable)",
    )
    p.add_argument(
        "--smc", action="store_true", help="the built-in guests use SMC #0 instead of HVC #0"
    )
    add_limits(p, " per persona")
    p.add_argument("--kernel", action="store_true",
                   help="boot the real kernel once per persona ('gunyah boot') and fill the "
                   "matrix from the module's 'gunyah-verdict: VERDICT' line")  # fmt: skip
    p.add_argument("--module", type=Path, metavar="FILE",
                   help="with --kernel: your module (.c or .ko) instead of ours; it logs "
                   "'gunyah-verdict: supported|not-gunyah|unsupported-api'")  # fmt: skip
    p.add_argument("--jobs", type=int, default=os.cpu_count() or 1, metavar="N",
                   help="with --kernel: boots at a time (default: the cores here)")  # fmt: skip
    p.add_argument("--boot-timeout", type=seconds, default=120.0, metavar="S",
                   help="with --kernel: each boot's limit in seconds (default 120)")  # fmt: skip
    p.add_argument("--reference", choices=list(REFERENCES), default=DEFAULT_REFERENCE.name,
                   help="the driver whose verdicts the rows expect: 'linux', the Linux "
                   "driver's final form (the standard Gunyah UID only; default), or "
                   "'seed-v8', the patch this project began from "
                   "(the Qualcomm UID too)")  # fmt: skip
    p.add_argument("--junit", metavar="FILE",
                   help="also write the matrix as JUnit XML, one test case per row")  # fmt: skip
    add_json(p)
    p.set_defaults(func=cmd_conformance)
