"""`gunyah conformance`: a guest against every persona."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import render
from ..conduit import Kind
from ..model import PERSONAS, PERSONAS_BY_NAME
from .common import (
    EXIT_OK,
    UsageError,
    add_json,
    add_limits,
    emit,
)


def cmd_conformance(args: argparse.Namespace) -> int:
    from .. import conformance
    from ..vcpu import GuestError, load_elf

    kind: Kind = "smc" if args.smc else "hvc"
    names = args.persona or [p.name for p in PERSONAS]
    personas = [PERSONAS_BY_NAME[n] for n in dict.fromkeys(names)]
    if args.guest is None:
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
    m = conformance.Matrix(tuple(rows))
    data = m.to_dict()
    emit(args, data, render.matrix(data))
    return EXIT_OK if m.passed else 1


def register(sub: Any) -> None:
    p = sub.add_parser(
        "conformance",
        help="try a guest's identification against every persona",
        description="Run a guest's identification against every persona (or those named "
        "with --persona) and print a matrix: expected verdict, observed verdict, pass or "
        "fail, and the trapped calls behind each failure. GUEST is a static AArch64 ELF "
        "that reports its verdict by exit status (0 supported, 1 not-gunyah, 3 "
        "unsupported-api); without it the built-in Python driver and the built-in AArch64 "
        "guest are checked. Exit status: 0 every row passes, 1 some row fails, 2 bad usage.",
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
    add_json(p)
    p.set_defaults(func=cmd_conformance)
