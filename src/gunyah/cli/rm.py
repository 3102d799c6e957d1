"""`gunyah rm`: one request to the resource manager, through the model's queues."""

from __future__ import annotations

import argparse
from typing import Any

from .. import render
from ..abi import rm
from ..guest.rm_client import exchange
from ..model import Hypervisor
from .common import EXIT_OK, UsageError, add_json, add_persona, emit, number

EXIT_RM_ERROR = 1  # a reply with an RM error, or none at all


def _payload(text: str) -> bytes:
    try:
        data = bytes.fromhex(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex bytes (e.g. 03000000)") from None
    if len(data) > rm.MAX_MSG_SIZE:
        raise argparse.ArgumentTypeError(f"at most {rm.MAX_MSG_SIZE} bytes")
    return data


def cmd_rm(args: argparse.Namespace) -> int:
    try:
        msg_id = rm.message_id(args.message)
    except ValueError as e:
        raise UsageError(str(e)) from None
    result = exchange(Hypervisor(args.persona), msg_id, args.payload, args.seq,
                      rm.TYPE_NOTIFICATION if args.notification else rm.TYPE_REQUEST)  # fmt: skip
    data = result.to_dict()
    emit(args, data, render.rm_exchange(data))
    return EXIT_OK if data["rm_error"] == rm.OK else EXIT_RM_ERROR


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rm",
        help="send one request to the resource manager and decode its reply",
        description="Send one RPC request to the resource manager the way a guest's "
        "driver does: framed into messages on the VM's send queue (cap 0, msgqueue_send), "
        "the reply polled from its receive queue (cap 1, msgqueue_receive), both through "
        "the hypervisor model. Prints the reply's RM error and payload, decoded where the "
        "message is known. Exit status: 0 for an OK reply, 1 for an RM error or no reply, "
        "2 for bad usage.",
        epilog="Messages by name: " + ", ".join(sorted(rm.MESSAGE_IDS)),
    )
    p.add_argument("message", metavar="MESSAGE",
                   help="message ID: a name (VM_GET_VMID) or a number (0x56000024)")  # fmt: skip
    p.add_argument("payload", nargs="?", type=_payload, default=b"", metavar="PAYLOAD",
                   help="the request's payload as hex bytes, little-endian as sent "
                   "(VM_GET_STATE of VM 3: 03000000); default none")  # fmt: skip
    p.add_argument("--seq", type=number(16), default=1, metavar="N",
                   help="the request's sequence number (default 1)")  # fmt: skip
    p.add_argument("--notification", action="store_true",
                   help="send it as a notification (the RM answers none from a VM)")  # fmt: skip
    add_persona(p)
    add_json(p)
    p.set_defaults(func=cmd_rm)
