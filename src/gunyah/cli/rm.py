"""`gunyah rm`: requests to the resource manager, through the model's queues:
one, or a sequence (a VM's life cycle) with the notifications as they come."""

from __future__ import annotations

import argparse
from typing import Any

from .. import render
from ..abi import rm
from ..guest.rm_client import exchange
from ..model import Hypervisor
from .common import EXIT_OK, UsageError, add_json, add_persona, emit, number, parse_number

EXIT_RM_ERROR = 1  # a reply with an RM error, or none at all
# the primary VM's RAM the model gives `gunyah rm`, to share or lend (IPA == PA)
RAM_BASE, RAM_SIZE = 0x4000_0000, 16 << 20
MAX_REQUESTS = 64


def _payload(text: str) -> bytes:
    try:
        data = bytes.fromhex(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not hex bytes (e.g. 03000000)") from None
    if len(data) > rm.MAX_MSG_SIZE:
        raise argparse.ArgumentTypeError(f"at most {rm.MAX_MSG_SIZE} bytes")
    return data


def requests(tokens: list[str]) -> list[tuple[int, bytes]]:
    """MESSAGE [PAYLOAD] MESSAGE [PAYLOAD] ...: a message name, or a number
    (bare hex first, 0x... after), each followed by its payload's hex if any."""
    out: list[tuple[int, bytes | None]] = []
    for token in tokens:
        if not out or token.strip().upper() in rm.MESSAGE_IDS or token.startswith("0x"):
            try:
                out.append((rm.message_id(token), None))
            except ValueError as e:
                raise UsageError(str(e)) from None
        elif out[-1][1] is None:
            try:
                out[-1] = (out[-1][0], _payload(token))
            except argparse.ArgumentTypeError as e:
                raise UsageError(str(e)) from None
        else:
            raise UsageError(f"{token[:40]!r}: a request has one payload; name the next "
                             "message (VM_GET_STATE) or give its number as 0x56000017")  # fmt: skip
        if len(out) > MAX_REQUESTS:
            raise UsageError(f"at most {MAX_REQUESTS} requests at a time")
    return [(msg_id, payload or b"") for msg_id, payload in out]


def load(ram: bytearray, spec: str) -> None:
    """--load ADDR:FILE: the file's bytes into the primary's RAM at ADDR,
    read no further than the RAM has room for."""
    where, sep, name = spec.partition(":")
    address = parse_number(where) if sep and len(where) <= 20 else None
    if address is None or not name:
        raise UsageError(f"--load {spec[:60]!r}: give ADDR:FILE, such as 0x40201000:vm.dtb")
    offset = address - RAM_BASE
    if not 0 <= offset < RAM_SIZE:
        raise UsageError(f"--load: {address:#x} is outside the primary's RAM "
                         f"({RAM_BASE:#x}+{RAM_SIZE:#x})")  # fmt: skip
    room = RAM_SIZE - offset
    try:
        with open(name, "rb") as f:
            data = f.read(room + 1)
    except OSError as e:
        raise UsageError(f"--load: cannot read {name}: {e.strerror}") from None
    if len(data) > room:
        raise UsageError(f"--load: {name} does not fit in the RAM after {address:#x}")
    ram[offset : offset + len(data)] = data


def cmd_rm(args: argparse.Namespace) -> int:
    asked = requests(args.requests)
    hyp = Hypervisor(args.persona)
    ram = bytearray(RAM_SIZE)
    for spec in args.load:
        load(ram, spec)
    hyp.attach_ram(RAM_BASE, ram)
    kind = rm.TYPE_NOTIFICATION if args.notification else rm.TYPE_REQUEST
    results = [exchange(hyp, msg_id, payload, (args.seq + i) & 0xFFFF, kind).to_dict()
               for i, (msg_id, payload) in enumerate(asked)]  # fmt: skip
    ok = all(d["rm_error"] == rm.OK for d in results)
    if len(results) == 1:
        emit(args, results[0], render.rm_exchange(results[0]))
    else:
        data = {"exchanges": results}
        emit(args, data, "\n".join(render.rm_exchange(d) for d in results))
    return EXIT_OK if ok else EXIT_RM_ERROR


def register(sub: Any) -> None:
    p = sub.add_parser(
        "rm",
        help="send requests to the resource manager and decode its replies and notifications",
        description="Send RPC requests to the resource manager the way a guest's "
        "driver does: framed into messages on the VM's send queue (cap 0, msgqueue_send), "
        "the reply polled from its receive queue (cap 1, msgqueue_receive), both through "
        "the hypervisor model. Prints each reply's RM error and payload and the "
        "notifications that came with it, decoded where the message is known. Several "
        "requests in one command are one VM's life cycle: the primary VM has "
        f"{RAM_SIZE >> 20} MiB of RAM at {RAM_BASE:#x} (IPA == PA) to share or lend, and "
        "sequence numbers count up from --seq. Exit status: 0 when every reply is OK, 1 "
        "for an RM error or no reply, 2 for bad usage.",
        epilog="Messages by name: " + ", ".join(sorted(rm.MESSAGE_IDS)),
    )
    p.add_argument("requests", nargs="+", metavar="MESSAGE [PAYLOAD]",
                   help="a message ID, a name (VM_GET_VMID) or a number (0x56000024), then "
                   "its payload as hex bytes, little-endian as sent (VM_GET_STATE of VM 3: "
                   "03000000), if it has one; more requests may follow, e.g. "
                   "'VM_ALLOCATE 00000000 VM_GET_STATE 80000000'")  # fmt: skip
    p.add_argument("--seq", type=number(16), default=1, metavar="N",
                   help="the first request's sequence number (default 1)")  # fmt: skip
    p.add_argument("--load", action="append", default=[], metavar="ADDR:FILE",
                   help="put FILE into the primary's RAM at ADDR first (a VM's image or "
                   "device tree, to share with it); repeatable")  # fmt: skip
    p.add_argument("--notification", action="store_true",
                   help="send it as a notification (the RM answers none from a VM)")  # fmt: skip
    add_persona(p)
    add_json(p)
    p.set_defaults(func=cmd_rm)
