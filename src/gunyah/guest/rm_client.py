"""The client's side of the RPC, over a model's message queues: what a
guest's driver does to ask the resource manager something (send the
request's messages, poll the receive queue, put the reply together), done
from Python so that `gunyah rm` can explore the RPC without a guest."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

from ..abi import hvc, rm
from ..abi.calls import native_imm
from ..abi.devicetree import RM_LINK
from ..abi.msgqueue import PUSH
from ..conduit import FlatMemory
from ..model import Hypervisor

TX_CAP, RX_CAP = RM_LINK.tx_cap, RM_LINK.rx_cap
SEND = native_imm(hvc.BY_NAME["msgqueue_send"].number)
RECEIVE = native_imm(hvc.BY_NAME["msgqueue_receive"].number)
MAX_POLLS = 4 * (rm.MAX_FRAGMENTS + 1)  # more than any one reply's messages


@dataclass(frozen=True)
class Exchange:
    request: rm.Header
    payload: bytes
    sends: list[tuple[int, int]]  # (X0 error, X1 not_full) of each msgqueue_send
    messages: list[bytes]  # what the receive queue gave back
    reply: rm.Header | None
    error: int | None  # the RM error word
    data: bytes  # the reply's payload after it

    @property
    def note(self) -> str | None:
        """Why there is no reply, where there is none."""
        if self.reply is not None:
            return None
        if any(e for e, _ in self.sends):
            return "msgqueue_send failed: this persona has no queue to a resource manager"
        return "no reply: the resource manager dropped the request"

    def to_dict(self) -> dict[str, Any]:
        meaning = rm.describe(self.request.msg_id, self.error)
        decoded = None if self.reply is None else rm.decode_reply(self.reply.msg_id, self.data)
        return {
            "request": {**self.request.to_dict(), "payload": self.payload.hex()},
            "sends": [{"error": e, "not_full": n} for e, n in self.sends],
            "messages": [m.hex() for m in self.messages],
            "notifications": [{**h.to_dict(), "payload": p.hex(),
                               "decoded": rm.decode_reply(h.msg_id, p)}
                              for h, p in notifications(self.messages)],  # fmt: skip
            "reply": None if self.reply is None else self.reply.to_dict(),
            "rm_error": self.error,
            "rm_error_name": meaning["error_name"],
            "rm_error_means": meaning["error_means"],
            "payload": self.data.hex(),
            "decoded": decoded,
            "note": self.note,
        }


def exchange(hyp: Hypervisor, msg_id: int, payload: bytes = b"", seq: int = 1,
             msg_type: int = rm.TYPE_REQUEST) -> Exchange:  # fmt: skip
    """Send one request (framed into as many messages as it needs) on the
    VM's send queue and take the reply from its receive queue."""
    memory = FlatMemory(rm.MESSAGE_SIZE)
    hyp.attach_memory(memory)
    try:
        sends = []
        for message in rm.frame(msg_type, seq, msg_id, payload):
            memory.data[: len(message)] = message
            regs = hyp.call(TX_CAP, len(message), 0, PUSH, 0, imm=SEND)
            sends.append((regs[0], regs[1]))
        messages = _receive(hyp, memory)
    finally:
        hyp.attach_memory(None)
    reply, error, data = _assemble(messages, seq, msg_id)
    return Exchange(rm.Header(msg_type, 0, seq, msg_id), payload, sends, messages, reply,
                    error, data)  # fmt: skip


def _assemble(messages: list[bytes], seq: int,
              msg_id: int) -> tuple[rm.Header | None, int | None, bytes]:  # fmt: skip
    """The reply to request (seq, msg_id) among the messages (notifications
    may come before it): its header, RM error and payload."""
    for i, message in enumerate(messages):
        try:
            first = rm.Header.decode(message)
        except rm.MalformedHeader:
            continue
        if (first.msg_type, first.seq, first.msg_id) != (rm.TYPE_REPLY, seq, msg_id):
            continue
        parts = messages[i : i + first.fragments + 1]
        body = b"".join(m[rm.HEADER_SIZE :] for m in parts)
        if len(body) < 4:
            return first, None, body
        (error,) = struct.unpack_from("<I", body)
        return first, error, body[4:]
    return None, None, b""


def notifications(messages: list[bytes]) -> list[tuple[rm.Header, bytes]]:
    """The notifications among the messages, each whole (header, payload)."""
    out = []
    for i, message in enumerate(messages):
        try:
            h = rm.Header.decode(message)
        except rm.MalformedHeader:
            continue
        if h.msg_type == rm.TYPE_NOTIFICATION:
            parts = messages[i : i + h.fragments + 1]
            out.append((h, b"".join(m[rm.HEADER_SIZE :] for m in parts)))
    return out


def receive_all(hyp: Hypervisor) -> list[bytes]:
    """Every message waiting in the VM's receive queue (notifications the RM
    sent without a request: a VM's end), oldest first."""
    memory = FlatMemory(rm.MESSAGE_SIZE)
    hyp.attach_memory(memory)
    try:
        return _receive(hyp, memory)
    finally:
        hyp.attach_memory(None)


def _receive(hyp: Hypervisor, memory: FlatMemory) -> list[bytes]:
    """Poll the receive queue into `memory` until it is empty (or MAX_POLLS)."""
    messages = []
    for _ in range(MAX_POLLS):
        regs = hyp.call(RX_CAP, 0, rm.MESSAGE_SIZE, 0, imm=RECEIVE)
        if regs[0] != 0:
            break
        messages.append(bytes(memory.data[: regs[1]]))
    return messages
