"""`gunyah call`: one call into the model, explained."""

from __future__ import annotations

import argparse
from typing import Any

from .. import render
from ..conduit import Kind
from ..model import Hypervisor, call_once
from .common import (
    EXIT_OK,
    UsageError,
    add_json,
    add_persona,
    emit,
    number,
)


def cmd_call(args: argparse.Namespace) -> int:
    kind: Kind = "smc" if args.smc else "hvc"
    try:
        result = call_once(Hypervisor(args.persona), kind, args.hvc_imm or 0, args.values,
                           args.pc)  # fmt: skip
    except ValueError as e:
        raise UsageError(str(e)) from None
    data = result.to_dict()
    emit(args, data, render.call_result(data))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "call",
        help="make one call into the hypervisor model and explain the result",
        description="Make one HVC or SMC into the hypervisor model. With immediate 0 "
        "(the default) the first value is the SMCCC function ID (X0) and the rest are "
        "X1, X2, ...; with --hvc-imm N (Gunyah's native ABI is 0x6000..0x61ff) the values "
        "are X0, X1, ... as given. Prints X0..X3 at the call's width and what they mean; "
        "--json has all of X0..X17 (a native call sets X9 to the return address, --pc + 4).",
    )
    p.add_argument(
        "values",
        nargs="*",
        type=number(64),
        metavar="VALUE",
        help="FUNCTION_ID then arguments, or registers from X0 with --hvc-imm",
    )
    add_persona(p)
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--hvc-imm", type=number(16), metavar="N", help="HVC immediate (default 0, SMCCC)"
    )
    g.add_argument("--smc", action="store_true", help="trap with SMC #0 instead of HVC #0")
    p.add_argument("--pc", type=number(64), default=0, metavar="ADDR",
                   help="the address of the trapping instruction (default 0)")  # fmt: skip
    add_json(p)
    p.set_defaults(func=cmd_call)
