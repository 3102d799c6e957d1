"""The resource manager's side of the RPC: reassembling requests from
messages, dropping what it drops, answering what it answers
(quic/gunyah-resource-manager bf31a9a: src/rpc/rm-rpc.c do_recv,
src/resource-manager.c msg_callback, src/vm_mgnt/vm_mgnt.c), with the
answers the QEMU build gave its primary VM (docs/abi.md section 9).

`receive` takes one message from the VM and returns the messages to send
back: the notifications the request caused before its reply, the reply,
then those that follow it. Messages nobody asked for (a VM's power-off)
wait in `outbox`. Given a hypervisor (`hyp.Hyp`) and a parcel service, it
hosts secondary VMs (`vm_mgnt`). Nothing a message holds makes it raise or
keep more than one request's bytes (at most 63 x 232).
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..abi import rm
from ..abi.devicetree import PRIMARY_VM_ID
from .hyp import Hyp
from .memparcel import Parcels as ParcelService
from .vm_mgnt import Parcels, VmManager

VMID_RM = 0xFF  # the owner the primary VM reports (VM_GET_OWNER)
HOST_TYPE = 0x01000164  # VM_HOST_GET_TYPE: AArch64 (0x64), Gunyah with RM (1 << 8), version 1
VM_STATE_RUNNING = 3
ID_GUID, ID_URI, ID_NAME, ID_SIGN_AUTH = 0, 1, 2, 3
VM_MAX_NAME_LEN = 80  # include/rm_types.h


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
    crash_msg: bytes = b""


HLOS = Vm(PRIMARY_VM_ID, b"HLOS")  # the primary VM, as the QEMU build's RM sets it up


class Known(Protocol):
    """What the queries read of any VM the RM knows (`Vm`, `vm_mgnt.GuestVm`)."""

    @property
    def vmid(self) -> int: ...
    @property
    def name(self) -> bytes: ...
    @property
    def owner(self) -> int: ...
    @property
    def state(self) -> int: ...
    @property
    def os_state(self) -> int: ...
    @property
    def app_status(self) -> int: ...
    @property
    def guid(self) -> bytes: ...
    @property
    def sign_auth(self) -> bytes: ...
    @property
    def crash_msg(self) -> bytes: ...


@dataclass
class _Partial:
    msg_type: int
    msg_id: int
    seq: int
    fragments: int
    remaining: int
    data: bytearray = field(default_factory=bytearray)


Reply = tuple[int, bytes]  # the RM error, and the payload after it


def _word(name: str, value: int) -> Callable[[bytes], Reply]:
    """A request that takes no payload (MSG_INVALID with one) and answers a word."""
    layout = rm.REPLIES[name][0]
    answer = layout.encode({layout.fields[0][0]: value})

    def handle(payload: bytes) -> Reply:
        return (rm.ERROR_MSG_INVALID, b"") if payload else (rm.OK, answer)

    return handle


class ResourceManager:
    """The RM as one client VM meets it over its pair of queues."""

    def __init__(self, client: Vm = HLOS, vms: tuple[Vm, ...] = (), hyp: Hyp | None = None,
                 parcels: Parcels | None = None) -> None:  # fmt: skip
        self.client = client
        self.vms: dict[int, Known] = {v.vmid: v for v in (client, *vms)}
        self._partial: _Partial | None = None
        self.outbox: deque[bytes] = deque()  # notifications no request caused
        self.on_outbox: Callable[[], None] | None = None  # told when the outbox fills
        self._notified = 0  # the sequence number of the client's next notification
        self._before: list[bytes] | None = None  # a request's notifications, while it runs
        self._after: list[bytes] = []
        # requests without a payload answered with one 32-bit word (vm_mgnt.c)
        words = {
            "VM_GET_VMID": client.vmid,
            "VM_HOST_GET_TYPE": HOST_TYPE,
            "VM_GET_OWNER": client.owner,
        }
        self.handlers: dict[int, Callable[[bytes], Reply]] = {
            rm.MESSAGE_IDS[name]: _word(name, value) for name, value in words.items()
        }
        self.handlers[rm.MESSAGE_IDS["VM_GET_STATE"]] = self._get_state
        self.handlers[rm.MESSAGE_IDS["VM_GET_ID"]] = self._get_id
        self.handlers[rm.MESSAGE_IDS["VM_GET_PEERS"]] = self._get_peers
        self.handlers[rm.MESSAGE_IDS["VM_LOOKUP_NAME"]] = self._lookup_name
        self.handlers[rm.MESSAGE_IDS["VM_GET_CRASH_MSG"]] = self._get_crash_msg
        self.vm_mgnt: VmManager | None = None
        if hyp is not None and parcels is not None:
            self.vm_mgnt = VmManager(client.vmid, self.vms, hyp, parcels, self.notify)
            self.handlers.update(self.vm_mgnt.handlers())
            self._serve_parcels(parcels)

    def _ready(self, vmid: int) -> bool:
        return getattr(self.vms.get(vmid), "state", None) == rm.VM_STATE["READY"]

    def _serve_parcels(self, parcels: Parcels) -> None:
        """The MEM_* requests, answered by the parcel service for the client;
        the notifications it asks for go out after the reply to the VMs that
        have a link to this RM (only the client here: the others are dropped)."""
        if not isinstance(parcels, ParcelService):
            return
        parcels.vm_exists = self.vms.__contains__  # which VMs exist, and which are READY
        parcels.vm_ready = self._ready
        caller = self.client.vmid

        def serve(handler: Callable[[int, bytes], tuple[int, bytes, list[tuple[int, int, bytes]]]]
                  ) -> Callable[[bytes], Reply]:  # fmt: skip
            def answer(payload: bytes) -> Reply:
                error, data, notes = handler(caller, payload)
                for target, msg_id, note in notes:
                    if target == caller:
                        self.notify(msg_id, note, after=True)
                return error, data

            return answer

        for msg_id, handler in parcels.handlers().items():
            self.handlers[msg_id] = serve(handler)

    def notify(self, msg_id: int, payload: bytes, after: bool = False) -> None:
        """A notification to the client, numbered by the RM's own counter: with
        the reply to the request being answered (before it, or after it), or
        in the outbox when no request is."""
        messages = rm.frame(rm.TYPE_NOTIFICATION, self._notified, msg_id, payload)
        self._notified = (self._notified + 1) & 0xFFFF
        if self._before is None:
            self.outbox.extend(messages)
            if self.on_outbox is not None:
                self.on_outbox()
        else:
            (self._after if after else self._before).extend(messages)

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
        self._before, self._after = [], []
        try:
            error, data = self.answer(msg_id, payload)
            before, after = self._before, self._after
        finally:
            self._before, self._after = None, []
        reply = rm.frame(rm.TYPE_REPLY, seq, msg_id, struct.pack("<I", error) + data)
        return before + reply + after

    def answer(self, msg_id: int, payload: bytes) -> Reply:
        """A request's RM error and reply payload."""
        handler = self.handlers.get(msg_id)
        return handler(payload) if handler is not None else (rm.ERROR_UNIMPLEMENTED, b"")

    # -- VM management: vm_mgnt.c ------------------------------------------------
    def _queried(self, payload: bytes) -> Known | int:
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
        if not self._query_allowed(vm):
            return rm.ERROR_CODES["DENIED"], b""
        status = {"vm_state": vm.state, "os_state": vm.os_state, "app_status": vm.app_status}
        return rm.OK, rm.encode_reply("VM_GET_STATE", status)

    def _get_id(self, payload: bytes) -> Reply:
        vm = self._queried(payload)
        if isinstance(vm, int):
            return vm, b""
        if rm.VM_STATES.get(vm.state) not in ("READY", "RUNNING", "PAUSED"):
            return rm.ERROR_CODES["VM_STATE"], b""
        if not self._query_allowed(vm):
            return rm.ERROR_NORESOURCE, b""
        entries = [(ID_GUID, vm.guid)]
        if vm.name:
            entries.append((ID_NAME, vm.name))
        uri: bytes = getattr(vm, "uri", b"")
        if uri:
            entries.append((ID_URI, uri))
        entries.append((ID_SIGN_AUTH, vm.sign_auth))
        out = bytearray(struct.pack("<I", len(entries)))
        for kind, value in entries:
            out += struct.pack("<HH", kind, len(value)) + value + bytes(-len(value) % 4)
        return rm.OK, bytes(out)

    def _get_peers(self, payload: bytes) -> Reply:
        """The VMs the client is a peer of: the ones it allocated, until each
        one's reset completes (vm_register_peers, vm_deregister_all_peers)."""
        if payload:
            return rm.ERROR_MSG_INVALID, b""
        peers = self.vm_mgnt.peers_of(self.client.vmid) if self.vm_mgnt else []
        return rm.OK, rm.encode_reply("VM_GET_PEERS", None, [{"vmid": v} for v in peers])

    def _query_allowed(self, vm: Known) -> bool:
        """is_vm_query_allowed: the VM itself, its owner, or a peer."""
        me = self.client.vmid
        return me in (vm.vmid, vm.owner) or me in getattr(vm, "peers", ())

    def _lookup_name(self, payload: bytes) -> Reply:
        """VM_LOOKUP_NAME: u16 length, u16 0, the name padded to 4 with zeros;
        the VMs the caller may ask about that bear it, by VMID. An empty
        request has no buffer at all (rm-rpc.c allocates none for 0 bytes):
        ARGUMENT_INVALID before any length check."""
        if not payload:
            return rm.ERROR_CODES["ARGUMENT_INVALID"], b""
        if len(payload) < 4:
            return rm.ERROR_MSG_INVALID, b""
        n = int.from_bytes(payload[:2], "little")
        if n > VM_MAX_NAME_LEN - 1:
            return rm.ERROR_CODES["ARGUMENT_INVALID"], b""
        if 4 + n + (-n % 4) != len(payload) or any(payload[4 + n :]):
            return rm.ERROR_MSG_INVALID, b""
        name = payload[4 : 4 + n]
        found = [{"vmid": vmid} for vmid, vm in sorted(self.vms.items())
                 if self._query_allowed(vm) and vm.name == name]  # fmt: skip
        return rm.OK, rm.encode_reply("VM_LOOKUP_NAME", None, found)

    def _get_crash_msg(self, payload: bytes) -> Reply:
        """VM_GET_CRASH_MSG: for the VM's owner only; u16 length, u16 0, the
        message padded to 4."""
        if len(payload) != 4:
            return rm.ERROR_MSG_INVALID, b""
        vm = self.vms.get(int.from_bytes(payload[:2], "little"))
        if vm is None or vm.owner != self.client.vmid:
            return rm.ERROR_CODES["VMID_INVALID"], b""
        msg = vm.crash_msg
        return rm.OK, struct.pack("<HH", len(msg), 0) + msg + bytes(-len(msg) % 4)
