"""`gunyah decode`: function IDs, HVC immediates, call UIDs, identify results."""

from __future__ import annotations

import argparse
from typing import Any

from .. import abi, render
from ..abi import rm
from ..trap import describe_hvc
from .common import (
    EXIT_OK,
    UsageError,
    add_json,
    emit,
    number,
)


def cmd_decode(args: argparse.Namespace) -> int:
    values: list[int] = args.values
    if args.uid:
        if len(values) != 4:
            raise UsageError(f"--uid takes exactly 4 words W0 W1 W2 W3, got {len(values)}")
        if any(v >> 32 for v in values):
            raise UsageError("--uid words are 32-bit; a value does not fit")
        d = abi.describe_uid(values).to_dict()
        emit(args, d, render.uid(d))
        return EXIT_OK
    if args.identify:
        if not 1 <= len(values) <= 4:
            raise UsageError(f"--identify takes X0 [X1 X2 X3], got {len(values)} values")
        d = abi.HypIdentify.decode(*values).to_dict()
        emit(args, d, render.identify_result(d))
        return EXIT_OK
    if args.rm is not None or args.rm_error is not None:
        return _rm(args)
    if not values:
        raise UsageError("give at least one VALUE to decode")
    if args.hvc_imm:
        if any(v >> 16 for v in values):
            raise UsageError("an HVC immediate is 16 bits; a value does not fit")
        rows = [describe_hvc(v).to_dict() for v in values]
        emit(args, rows, "\n".join(render.hvc_imm(r) for r in rows))
        return EXIT_OK
    if any(v >> 32 for v in values):
        bad = next(v for v in values if v >> 32)
        raise UsageError(f"function ID {bad:#x} does not fit in 32 bits")
    rows = [abi.describe_function(v).to_dict() for v in values]
    emit(args, rows, "\n".join(render.function_id(r) for r in rows))
    return EXIT_OK


def _rm(args: argparse.Namespace) -> int:
    if args.rm is None:
        raise UsageError("--rm-error goes with --rm MESSAGE: the message it answered")
    if args.values or args.hvc_imm or args.uid or args.identify:
        raise UsageError("--rm decodes a message ID alone; give no VALUEs with it")
    try:
        msg_id = rm.message_id(args.rm)
        error = None if args.rm_error is None else rm.error_code(args.rm_error)
    except ValueError as e:
        raise UsageError(str(e)) from None
    try:
        payload = None if args.rm_payload is None else bytes.fromhex(args.rm_payload)
    except ValueError:
        raise UsageError(f"--rm-payload {args.rm_payload!r} is not hex bytes") from None
    if payload is not None and len(payload) > rm.MAX_MSG_SIZE:
        raise UsageError(f"--rm-payload holds at most {rm.MAX_MSG_SIZE} bytes")
    d = rm.describe(msg_id, error)
    if payload is not None:
        d["payload"] = payload.hex()
        d["decoded"] = rm.decode_reply(msg_id, payload)
    emit(args, d, render.rm_message(d))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "decode",
        help="decode function IDs, HVC immediates, call UIDs or identify results",
        description="Decode SMCCC function IDs (the default), HVC immediates (--hvc-imm), "
        "a call UID's four words (--uid W0 W1 W2 W3), or a hypervisor_identify result "
        "(--identify X0 [X1 X2 X3]), or a resource manager message ID and the RM error "
        "of its reply (--rm MESSAGE [--rm-error N]).",
        epilog="A kernel's 'RM rejected message 51000015. Error: 7' decodes with "
        "'gunyah decode --rm 51000015 --rm-error 7'; a VM_EXITED notification's payload "
        "with 'gunyah decode --rm NOTIFY_VM_EXITED --rm-payload 800001000400000000000000'.",
    )
    p.add_argument("values", nargs="*", type=number(64), metavar="VALUE")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--hvc-imm", action="store_true", help="values are HVC immediates")
    g.add_argument("--uid", action="store_true", help="values are the UID words W0..W3")
    g.add_argument("--identify", action="store_true", help="values are X0 [X1 X2 X3]")
    p.add_argument("--rm", metavar="MESSAGE",
                   help="an RM message ID, hex as kernel logs print it (51000015) or a name")
    p.add_argument("--rm-error", metavar="N",
                   help="the RM error its reply carried (decimal as logged, or a name)")
    p.add_argument("--rm-payload", metavar="HEX",
                   help="a reply's payload after its error word, or a notification's: "
                   "its fields named (VM states, exit types, resources)")
    add_json(p)
    p.set_defaults(func=cmd_decode)
