"""`gunyah run`: a guest program on the vCPU."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from .. import render
from ..limits import MAX_STACK
from ..model import Hypervisor
from .common import (
    EXIT_GUEST_FAILED,
    EXIT_USAGE,
    UsageError,
    add_json,
    add_limits,
    add_persona,
    count,
    number,
)


def cmd_run(args: argparse.Namespace) -> int:
    from ..vcpu import GuestError, VCpu, load_elf, load_raw

    try:
        image = load_raw(args.guest, args.raw) if args.raw is not None else load_elf(args.guest)
        cpu = VCpu(
            Hypervisor(args.persona),
            max_instructions=args.max_instructions,
            timeout=args.timeout,
            stack_size=args.stack_size,
            trace=args.trace or args.json,
        )
    except (GuestError, ValueError) as e:
        raise UsageError(str(e)) from None
    try:
        result = cpu.run(image)
    except GuestError as e:
        raise UsageError(str(e)) from None
    data = result.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        sys.stdout.write(result.output)
        if result.output and not result.output.endswith("\n"):
            sys.stdout.write("\n")
        if result.calls_dropped:
            print(f"({result.calls_dropped} earlier calls not kept; the last "
                  f"{len(result.calls)} follow)")  # fmt: skip
        for call in data["calls"]:
            print(render.trap_record(call))
    if result.output_dropped and not args.json:
        print(f"gunyah: {result.output_dropped} more bytes of console output not kept",
              file=sys.stderr)  # fmt: skip
    if result.fault is not None:
        if not args.json:
            recent = [c.to_dict() for c in result.recent]
            print(render.fault(result.fault.to_dict(), recent), file=sys.stderr)
        return EXIT_GUEST_FAILED
    status = result.exit_status
    if status is not None and 0 <= status <= 255:
        return status
    print(f"gunyah: the guest's exit status {status:#x} is not a process exit status (0..255)",
          file=sys.stderr)  # fmt: skip
    return EXIT_GUEST_FAILED


def register(sub: Any) -> None:
    p = sub.add_parser(
        "run",
        help="run an AArch64 guest program with its HVC/SMC trapped into the model",
        description="Run a static AArch64 ELF (or, with --raw ADDR, a raw binary) on an "
        "emulated CPU at EL1. Every HVC/SMC it executes goes to the hypervisor model; "
        "BRK #0 ends the run with exit status X0, and Arm semihosting serves console "
        "output and exit. Exit status: the guest's own when it stopped itself "
        f"({EXIT_GUEST_FAILED} when that is outside 0..255), {EXIT_GUEST_FAILED} when it "
        f"faulted or ran out of budget or time, {EXIT_USAGE} for bad usage.",
    )
    p.add_argument("guest", metavar="GUEST", help="the guest program")
    add_persona(p)
    p.add_argument("--trace", action="store_true", help="print every trapped call")
    add_limits(p)
    p.add_argument(
        "--stack-size",
        type=count(MAX_STACK),
        default=1 << 20,
        metavar="BYTES",
        help=f"stack size (default 1 MiB; a multiple of 16, at most {MAX_STACK >> 20} MiB)",
    )
    p.add_argument(
        "--raw",
        type=number(48),
        metavar="ADDR",
        help="GUEST is a raw binary: load it at ADDR and start there",
    )
    add_json(p)
    p.set_defaults(func=cmd_run)
