"""The resource manager's side of the RPC: reassembling requests from
messages, dropping what it drops, answering what it answers
(quic/gunyah-resource-manager bf31a9a: src/rpc/rm-rpc.c do_recv,
src/resource-manager.c msg_callback, src/vm_mgnt/vm_mgnt.c), with the
answers the QEMU build gave its primary VM (docs/abi.md section 9).

`receive` takes one message from the VM and returns the messages of the
reply, if any. Nothing a message holds makes it raise or keep more than one
request's bytes (at most 63 x 232).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from ..abi import rm
from ..abi.devicetree import PRIMARY_VM_ID

VMID_RM = 0xFF  # the owner the primary VM reports (VM_GET_OWNER)
HOST_TYPE = 0x01000164  # VM_HOST_GET_TYPE: AArch64 (0x64), Gunyah with RM (1 << 8), version 1
VM_STATE_RUNNING = 3
ID_GUID, ID_URI, ID_NAME, ID_SIGN_AUTH = 0, 1, 2, 3


@dataclass(frozen=True)
class Vm:
    """What the resource manager knows of a VM that queries can read."""

    vmid: int
    name: bytes = b""
    owner: int = VMID_RM
    state: int = VM_STATE_RUNNING
    os_state: int = 0
    app_status: int = 0
    guid: bytes = bytes(16)
    sign_auth: bytes = b"N/A"  # platform_get_sign_authority_string: no signer


HLOS = Vm(PRIMARY_VM_ID, b"HLOS")  # the primary VM, as the QEMU build's RM sets it up


@dataclass
class _Partial:
    msg_type: int
    msg_id: int
    seq: int
    fragments: int
    remaining: int
    data: bytearray = field(default_factory=bytearray)


Reply = tuple[int, bytes]  # the RM error, and the payload after it


def _word(value: int) -> Callable[[bytes], Reply]:
    """A request that takes no payload (MSG_INVALID with one) and answers a word."""
    answer = struct.pack("<I", value)

    def handle(payload: bytes) -> Reply:
        return (rm.ERROR_MSG_INVALID, b"") if payload else (rm.OK, answer)

    return handle


class ResourceManager:
    """The RM as one client VM meets it over its pair of queues."""

    def __init__(self, client: Vm = HLOS, vms: tuple[Vm, ...] = ()) -> None:
        self.client = client
        self.vms = {v.vmid: v for v in (client, *vms)}
        self._partial: _Partial | None = None
        # requests without a payload answered with one 32-bit word (vm_mgnt.c)
        words = {
            "VM_GET_VMID": client.vmid,
            "VM_HOST_GET_TYPE": HOST_TYPE,
            "VM_GET_OWNER": client.owner,
            "VM_GET_PEERS": 0,  # a count of peers, none following: the only VM there is
        }
        self.handlers: dict[int, Callable[[bytes], Reply]] = {
            rm.MESSAGE_IDS[name]: _word(value) for name, value in words.items()
        }
        self.handlers[rm.MESSAGE_IDS["VM_GET_STATE"]] = self._get_state
        self.handlers[rm.MESSAGE_IDS["VM_GET_ID"]] = self._get_id

    # -- transport: rm-rpc.c do_recv --------------------------------------------
    def receive(self, message: bytes) -> list[bytes]:
        """One message from the client; the reply's messages (none where the
        RM drops the message or waits for its continuations)."""
        if len(message) < rm.HEADER_SIZE or len(message) > rm.MESSAGE_SIZE:
            return []  # too short for a header; the queue never delivers longer
        hdr = rm.Header.decode(message)
        if not hdr.valid:
            return []
        body = message[rm.HEADER_SIZE :]
        if hdr.msg_type != rm.TYPE_CONTINUATION:
            self._partial = None  # a new message drops one still being put together
            if hdr.fragments:
                self._partial = _Partial(hdr.msg_type, hdr.msg_id, hdr.seq, hdr.fragments,
                                         hdr.fragments, bytearray(body))  # fmt: skip
                return []
            return self._complete(hdr.msg_type, hdr.msg_id, hdr.seq, body)
        p = self._partial
        if p is None or (hdr.msg_id, hdr.seq, hdr.fragments) != (p.msg_id, p.seq, p.fragments):
            return []
        p.data += body
        p.remaining -= 1
        if p.remaining:
            return []
        self._partial = None
        return self._complete(p.msg_type, p.msg_id, p.seq, bytes(p.data))

    def _complete(self, msg_type: int, msg_id: int, seq: int, payload: bytes) -> list[bytes]:
        """resource-manager.c msg_callback: requests only; a notification goes
        to a handler that knows none from a VM."""
        if msg_type != rm.TYPE_REQUEST:
            return []
        error, data = self.answer(msg_id, payload)
        return rm.frame(rm.TYPE_REPLY, seq, msg_id, struct.pack("<I", error) + data)

    def answer(self, msg_id: int, payload: bytes) -> Reply:
        """A request's RM error and reply payload."""
        handler = self.handlers.get(msg_id)
        return handler(payload) if handler is not None else (rm.ERROR_UNIMPLEMENTED, b"")

    # -- VM management: vm_mgnt.c ------------------------------------------------
    def _queried(self, payload: bytes) -> Vm | int:
        """The VM a 4-byte query names (its low 16 bits; 0 the caller), or the error."""
        if len(payload) != 4:
            return rm.ERROR_MSG_INVALID
        vmid = int.from_bytes(payload[:2], "little") or self.client.vmid
        vm = self.vms.get(vmid)
        return vm if vm is not None else rm.ERROR_NORESOURCE

    def _get_state(self, payload: bytes) -> Reply:
        vm = self._queried(payload)
        if isinstance(vm, int):
            return vm, b""
        return rm.OK, struct.pack("<BBH", vm.state, vm.os_state, vm.app_status)

    def _get_id(self, payload: bytes) -> Reply:
        vm = self._queried(payload)
        if isinstance(vm, int):
            return vm, b""
        entries = [(ID_GUID, vm.guid)]
        if vm.name:
            entries.append((ID_NAME, vm.name))
        entries.append((ID_SIGN_AUTH, vm.sign_auth))
        out = bytearray(struct.pack("<I", len(entries)))
        for kind, value in entries:
            out += struct.pack("<HH", kind, len(value)) + value + bytes(-len(value) % 4)
        return rm.OK, bytes(out)
