"""Memory parcels on the wire, declared once: the requests MEM_SHARE, MEM_LEND,
MEM_DONATE, MEM_APPEND, MEM_ACCEPT, MEM_RELEASE, MEM_RECLAIM and MEM_NOTIFY,
their replies, and the notifications MEM_SHARED, MEM_RELEASED, MEM_ACCEPTED and
MEM_RECALL (quic/gunyah-resource-manager bf31a9a: include/memparcel_msg.h for
the layouts and constants, include/memparcel.h for MAX_LIST_ENTRIES,
src/rpc/rm-rpc.c rm_rpc_read_list and src/memparcel/memparcel.c
memparcel_read_lists for how the lists are read; docs/abi.md section 9).

A request carries up to three lists (ACL, SGL, attributes), each a u16 count,
a u16 the RM does not read (MEM_ACCEPT keeps its map VMID in the SGL's), then
the entries. Reading follows the RM's order: a list the payload has no bytes
left for is empty; a count above 512 is NORESOURCE before its bytes are
looked at; a list the bytes cannot hold, 1 to 3 stray bytes, or bytes left
over after the last list are MSG_INVALID. A decoder never allocates more than
the bytes it was given hold, and a malformed payload raises `RequestError`
carrying the RM error the real one answers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, NamedTuple

from . import rm

# message IDs (include/memparcel_msg.h), from the one table in abi/rm.py
MEM_DONATE = rm.MESSAGE_IDS["MEM_DONATE"]
MEM_ACCEPT = rm.MESSAGE_IDS["MEM_ACCEPT"]
MEM_LEND = rm.MESSAGE_IDS["MEM_LEND"]
MEM_SHARE = rm.MESSAGE_IDS["MEM_SHARE"]
MEM_RELEASE = rm.MESSAGE_IDS["MEM_RELEASE"]
MEM_RECLAIM = rm.MESSAGE_IDS["MEM_RECLAIM"]
MEM_NOTIFY = rm.MESSAGE_IDS["MEM_NOTIFY"]
MEM_APPEND = rm.MESSAGE_IDS["MEM_APPEND"]
NOTIFY_MEM_SHARED = rm.MESSAGE_IDS["NOTIFY_MEM_SHARED"]
NOTIFY_MEM_RELEASED = rm.MESSAGE_IDS["NOTIFY_MEM_RELEASED"]
NOTIFY_MEM_ACCEPTED = rm.MESSAGE_IDS["NOTIFY_MEM_ACCEPTED"]
NOTIFY_MEM_RECALL = rm.MESSAGE_IDS["NOTIFY_MEM_RECALL"]

MEM_TYPE_NORMAL, MEM_TYPE_IO = 0, 1
RIGHTS_X, RIGHTS_W, RIGHTS_R = 0x1, 0x2, 0x4
RIGHTS_RX, RIGHTS_RW, RIGHTS_RWX = 0x5, 0x6, 0x7
VALID_RIGHTS = frozenset((RIGHTS_R, RIGHTS_RX, RIGHTS_RW, RIGHTS_RWX))  # mem_rights_valid

CREATE_FLAG_SANITIZE, CREATE_FLAG_APPEND = 0x1, 0x2
APPEND_FLAG_DONE = 0x1
ACCEPT_FLAG_VALIDATE_SANITIZED = 0x1
ACCEPT_FLAG_VALIDATE_ACL_ATTR = 0x2
ACCEPT_FLAG_VALIDATE_LABEL = 0x4
ACCEPT_FLAG_MAP_OTHER = 0x8
ACCEPT_FLAG_MAP_CONTIGUOUS = 0x10
ACCEPT_FLAG_SANITIZE = 0x20
ACCEPT_FLAG_DONE = 0x80
ACCEPT_RESP_FLAG_INCOMPLETE = 0x1
RELEASE_FLAG_SANITIZE = 0x1
RECLAIM_FLAG_SANITIZE = 0x1
NOTIFY_FLAG_SHARED, NOTIFY_FLAG_RELEASED, NOTIFY_FLAG_ACCEPTED, NOTIFY_FLAG_RECALL = 1, 2, 4, 8

TRANS_DONATE, TRANS_LEND, TRANS_SHARE = 0, 1, 2
TRANS_NAMES = {TRANS_DONATE: "donate", TRANS_LEND: "lend", TRANS_SHARE: "share"}
# the message that makes a parcel of each kind (memparcel.c memparcel_create)
CREATE_MESSAGES = {MEM_DONATE: TRANS_DONATE, MEM_LEND: TRANS_LEND, MEM_SHARE: TRANS_SHARE}

ATTR_NORMAL, ATTR_DEVICE, ATTR_UNCACHED, ATTR_CACHED = 0, 1, 2, 3
VALID_ATTRS = frozenset((ATTR_NORMAL, ATTR_DEVICE, ATTR_UNCACHED, ATTR_CACHED))

MAX_LIST_ENTRIES = 512  # include/memparcel.h: the most entries one list may count
INVALID_HANDLE = 0xFFFFFFFF  # MEMPARCEL_INVALID_HANDLE, never handed out
PAGE_SIZE = 0x1000
ADDR_LIMIT = 1 << 44  # include/vm_memory.h: util_bit(32 + PAGE_BITS)

U16, U32 = 0xFFFF, 0xFFFFFFFF


class AclEntry(NamedTuple):
    """acl_entry_t: u16 vmid, u8 rights, u8 reserved."""

    vmid: int
    rights: int


class SglEntry(NamedTuple):
    """sgl_entry_t: u64 ipa, u64 size."""

    ipa: int
    size: int


class AttrEntry(NamedTuple):
    """attr_entry_t: u16 attr, u16 vmid."""

    attr: int
    vmid: int


class RequestError(ValueError):
    """A request the RM refuses before it looks at any parcel; `error` is the
    RM error it answers."""

    def __init__(self, error: int, why: str) -> None:
        super().__init__(why)
        self.error = error


_COUNT = struct.Struct("<HH")
_ACL = struct.Struct("<HBx")
_SGL = struct.Struct("<QQ")
_ATTR = struct.Struct("<HH")
_VMID = struct.Struct("<Hxx")  # vmid_entry_t
_SIZE = struct.Struct("<Q")


class _List(NamedTuple):
    entries: list[tuple[int, ...]]
    word: int  # the count word's upper half (MEM_ACCEPT's map VMID), 0 when absent
    present: bool


def _read_list(data: bytes, at: int, entry: struct.Struct) -> tuple[_List, int]:
    """One list from data[at:], as rm_rpc_read_list reads it: (the list, where
    the next starts)."""
    left = len(data) - at
    if left == 0:
        return _List([], 0, False), at
    if left < _COUNT.size:
        raise RequestError(rm.ERROR_MSG_INVALID, f"{left} stray bytes where a list count goes")
    count, word = _COUNT.unpack_from(data, at)
    if count > MAX_LIST_ENTRIES:
        raise RequestError(rm.ERROR_NORESOURCE,
                           f"a list of {count} entries: more than {MAX_LIST_ENTRIES}")  # fmt: skip
    at += _COUNT.size
    size = count * entry.size
    if left - _COUNT.size < size:
        raise RequestError(rm.ERROR_MSG_INVALID,
                           f"a list of {count} entries in {left - _COUNT.size} bytes")  # fmt: skip
    entries = list(entry.iter_unpack(data[at : at + size]))
    return _List(entries, word, True), at + size


def _read_lists(data: bytes, at: int, *kinds: struct.Struct) -> list[_List]:
    """Lists in order, every byte used (memparcel_read_lists)."""
    out = []
    for kind in kinds:
        lst, at = _read_list(data, at, kind)
        out.append(lst)
    if at != len(data):
        raise RequestError(rm.ERROR_MSG_INVALID, f"{len(data) - at} bytes after the last list")
    return out


def _write_list(entry: struct.Struct, items: tuple[tuple[int, ...], ...], word: int = 0) -> bytes:
    return _COUNT.pack(len(items), word) + b"".join(entry.pack(*i) for i in items)


def _need(data: bytes, size: int, what: str) -> None:
    if len(data) < size:
        raise RequestError(rm.ERROR_MSG_INVALID, f"{what} of {len(data)} bytes: "
                           f"shorter than its {size}-byte fixed part")  # fmt: skip


# -- requests ------------------------------------------------------------------------
_CREATE = struct.Struct("<BxBxI")  # memparcel_create_req_t up to its lists
CREATE_MIN = 20  # sizeof(memparcel_create_req_t)


@dataclass(frozen=True)
class CreateRequest:
    """MEM_SHARE, MEM_LEND and MEM_DONATE: one layout, the message says which."""

    mem_type: int
    flags: int
    label: int
    acl: tuple[AclEntry, ...]
    sgl: tuple[SglEntry, ...]
    attrs: tuple[AttrEntry, ...] = ()

    def encode(self) -> bytes:
        return (_CREATE.pack(self.mem_type, self.flags, self.label)
                + _write_list(_ACL, self.acl) + _write_list(_SGL, self.sgl)
                + _write_list(_ATTR, self.attrs))  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> CreateRequest:
        _need(data, CREATE_MIN, "a create request")
        mem_type, flags, label = _CREATE.unpack_from(data)
        acl, sgl, attr = _read_lists(data, _CREATE.size, _ACL, _SGL, _ATTR)
        return cls(mem_type, flags, label, tuple(AclEntry(*e) for e in acl.entries),
                   tuple(SglEntry(*e) for e in sgl.entries),
                   tuple(AttrEntry(*e) for e in attr.entries))  # fmt: skip


_APPEND = struct.Struct("<IB3x")
APPEND_MIN = 12  # sizeof(memparcel_append_req_t)


@dataclass(frozen=True)
class AppendRequest:
    """MEM_APPEND: more of the SGL of a parcel made with the append flag."""

    handle: int
    flags: int
    sgl: tuple[SglEntry, ...]

    def encode(self) -> bytes:
        return _APPEND.pack(self.handle, self.flags) + _write_list(_SGL, self.sgl)

    @classmethod
    def decode(cls, data: bytes) -> AppendRequest:
        _need(data, APPEND_MIN, "a MEM_APPEND")
        handle, flags = _APPEND.unpack_from(data)
        (sgl,) = _read_lists(data, _APPEND.size, _SGL)
        return cls(handle, flags, tuple(SglEntry(*e) for e in sgl.entries))


_ACCEPT = struct.Struct("<IBBBxI")
ACCEPT_MIN = 24  # sizeof(memparcel_accept_req_t)


@dataclass(frozen=True)
class AcceptRequest:
    """MEM_ACCEPT: the acceptor names the parcel and what it expects of it; an
    SGL gives the IPAs to map at (none: the RM's choice, said in the reply)."""

    handle: int
    mem_type: int
    trans_type: int
    flags: int
    label: int
    acl: tuple[AclEntry, ...] = ()
    sgl: tuple[SglEntry, ...] = ()
    map_vmid: int = 0
    attrs: tuple[AttrEntry, ...] = ()

    def encode(self) -> bytes:
        head = _ACCEPT.pack(self.handle, self.mem_type, self.trans_type, self.flags, self.label)
        return (head + _write_list(_ACL, self.acl) + _write_list(_SGL, self.sgl, self.map_vmid)
                + _write_list(_ATTR, self.attrs))  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> AcceptRequest:
        _need(data, ACCEPT_MIN, "a MEM_ACCEPT")
        handle, mem_type, trans_type, flags, label = _ACCEPT.unpack_from(data)
        acl, sgl, attr = _read_lists(data, _ACCEPT.size, _ACL, _SGL, _ATTR)
        # the RM reads the map VMID where the SGL's count word would be; with no
        # SGL that is past the payload, read here as 0
        return cls(handle, mem_type, trans_type, flags, label,
                   tuple(AclEntry(*e) for e in acl.entries),
                   tuple(SglEntry(*e) for e in sgl.entries), sgl.word,
                   tuple(AttrEntry(*e) for e in attr.entries))  # fmt: skip


_HANDLE_FLAGS = struct.Struct("<IB3x")  # memparcel_release_req_t, memparcel_reclaim_req_t


@dataclass(frozen=True)
class HandleRequest:
    """MEM_RELEASE and MEM_RECLAIM: a handle and flags. The RM reads the first
    8 bytes and ignores any after them."""

    handle: int
    flags: int = 0

    def encode(self) -> bytes:
        return _HANDLE_FLAGS.pack(self.handle, self.flags)

    @classmethod
    def decode(cls, data: bytes) -> HandleRequest:
        _need(data, _HANDLE_FLAGS.size, "a MEM_RELEASE or MEM_RECLAIM")
        return cls(*_HANDLE_FLAGS.unpack_from(data))


_NOTIFY = struct.Struct("<IB3xI")  # memparcel_notify_req_t


@dataclass(frozen=True)
class NotifyRequest:
    """MEM_NOTIFY: one of the four flags, the parcel's mem-info tag, and for
    SHARED and RECALL the VMs to tell (a u16 count, u16 reserved, then u16
    vmid + u16 reserved each). The RM reads that list only after the parcel
    checks, so it is kept as bytes and read by `vmids`."""

    handle: int
    flags: int
    mem_info_tag: int
    tail: bytes = b""

    @classmethod
    def with_vmids(cls, handle: int, flags: int, tag: int, vmids: tuple[int, ...]) -> NotifyRequest:
        return cls(handle, flags, tag,
                   _COUNT.pack(len(vmids), 0) + b"".join(_VMID.pack(v) for v in vmids))  # fmt: skip

    def encode(self) -> bytes:
        return _NOTIFY.pack(self.handle, self.flags, self.mem_info_tag) + self.tail

    @classmethod
    def decode(cls, data: bytes) -> NotifyRequest:
        _need(data, _NOTIFY.size, "a MEM_NOTIFY")
        handle, flags, tag = _NOTIFY.unpack_from(data)
        return cls(handle, flags, tag, bytes(data[_NOTIFY.size :]))

    def vmids(self) -> list[int]:
        """The VM list as get_vmid_list reads it: MSG_INVALID without its count,
        ARGUMENT_INVALID for a count of 0, MSG_INVALID for fewer entries than
        counted (bytes after them are ignored)."""
        if len(self.tail) < _COUNT.size:
            raise RequestError(rm.ERROR_MSG_INVALID, "MEM_NOTIFY without its VMID count")
        (count, _) = _COUNT.unpack_from(self.tail)
        if count == 0:
            raise RequestError(rm.ERROR_CODES["ARGUMENT_INVALID"], "MEM_NOTIFY of no VMs")
        end = _COUNT.size + count * _VMID.size
        if len(self.tail) < end:
            raise RequestError(rm.ERROR_MSG_INVALID, f"{count} VMIDs counted, fewer sent")
        return [v for (v,) in _VMID.iter_unpack(self.tail[_COUNT.size : end])]


# -- replies (the payload after the RM error word) -----------------------------------
_HANDLE = struct.Struct("<I")  # memparcel_handle_resp_t


def encode_handle(handle: int) -> bytes:
    """The reply to MEM_SHARE, MEM_LEND and MEM_DONATE."""
    return _HANDLE.pack(handle)


def decode_handle(data: bytes) -> int:
    if len(data) != _HANDLE.size:
        raise ValueError(f"a handle reply of {len(data)} bytes, not 4")
    return int(_HANDLE.unpack(data)[0])


_ACCEPT_RESP = struct.Struct("<HBx")  # memparcel_accept_sgl_resp_t after its error word


@dataclass(frozen=True)
class AcceptReply:
    """MEM_ACCEPT's reply when the request gave no SGL: where the RM mapped the
    parcel (flags bit 0: more to come)."""

    sgl: tuple[SglEntry, ...]
    flags: int = 0

    def encode(self) -> bytes:
        return _ACCEPT_RESP.pack(len(self.sgl), self.flags) + b"".join(
            _SGL.pack(*e) for e in self.sgl)  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> AcceptReply:
        if len(data) < _ACCEPT_RESP.size:
            raise ValueError(f"a MEM_ACCEPT reply of {len(data)} bytes")
        count, flags = _ACCEPT_RESP.unpack_from(data)
        if len(data) != _ACCEPT_RESP.size + count * _SGL.size:
            raise ValueError(f"a MEM_ACCEPT reply counting {count} entries in {len(data)} bytes")
        return cls(tuple(SglEntry(*e) for e in _SGL.iter_unpack(data[_ACCEPT_RESP.size :])),
                   flags)  # fmt: skip


# -- notifications -------------------------------------------------------------------
_SHARED = struct.Struct("<IBBBxH2xII")  # memparcel_shared_notif_t up to its lists


@dataclass(frozen=True)
class SharedNotification:
    """MEM_SHARED, sent to the VMs the owner names in MEM_NOTIFY: the parcel's
    description, its SGL as region sizes only (u64 each; the owner's IPAs are
    not told), at most 512 of them (memparcel_notify_shared)."""

    handle: int
    mem_type: int
    trans_type: int
    flags: int
    owner: int
    label: int
    mem_info_tag: int
    acl: tuple[AclEntry, ...]
    sizes: tuple[int, ...]
    attrs: tuple[AttrEntry, ...] = ()

    def encode(self) -> bytes:
        return (_SHARED.pack(self.handle, self.mem_type, self.trans_type, self.flags, self.owner,
                             self.label, self.mem_info_tag)
                + _write_list(_ACL, self.acl) + _write_list(_SIZE, tuple((s,) for s in self.sizes))
                + _write_list(_ATTR, self.attrs))  # fmt: skip

    @classmethod
    def decode(cls, data: bytes) -> SharedNotification:
        if len(data) < _SHARED.size:
            raise ValueError(f"a MEM_SHARED of {len(data)} bytes")
        handle, mem_type, trans_type, flags, owner, label, tag = _SHARED.unpack_from(data)
        try:
            acl, sizes, attr = _read_lists(data, _SHARED.size, _ACL, _SIZE, _ATTR)
        except RequestError as e:
            raise ValueError(f"a MEM_SHARED whose lists do not fit: {e}") from None
        return cls(handle, mem_type, trans_type, flags, owner, label, tag,
                   tuple(AclEntry(*e) for e in acl.entries),
                   tuple(s for (s,) in sizes.entries),
                   tuple(AttrEntry(*e) for e in attr.entries))  # fmt: skip


_OWNER = struct.Struct("<IH2xI")  # memparcel_owner_notif_t


@dataclass(frozen=True)
class OwnerNotification:
    """MEM_RELEASED and MEM_ACCEPTED, sent to a parcel's owner: which VM let go
    of (or took) which parcel."""

    handle: int
    vmid: int
    mem_info_tag: int = 0

    def encode(self) -> bytes:
        return _OWNER.pack(self.handle, self.vmid, self.mem_info_tag)

    @classmethod
    def decode(cls, data: bytes) -> OwnerNotification:
        if len(data) != _OWNER.size:
            raise ValueError(f"an owner notification of {len(data)} bytes, not 12")
        return cls(*_OWNER.unpack(data))


_RECALL = struct.Struct("<II")  # memparcel_recall_notif_t


@dataclass(frozen=True)
class RecallNotification:
    """MEM_RECALL: the owner asks the named VMs to release a parcel."""

    handle: int
    mem_info_tag: int = 0

    def encode(self) -> bytes:
        return _RECALL.pack(self.handle, self.mem_info_tag)

    @classmethod
    def decode(cls, data: bytes) -> RecallNotification:
        if len(data) != _RECALL.size:
            raise ValueError(f"a MEM_RECALL of {len(data)} bytes, not 8")
        return cls(*_RECALL.unpack(data))


# -- what a tool shows ---------------------------------------------------------------
def decode_reply(msg_id: int, payload: bytes) -> dict[str, Any] | None:
    """The fields of a MEM_* reply's payload (after the error word), or None
    where the message has none or the payload is not its shape."""
    try:
        if msg_id in CREATE_MESSAGES:
            return {"handle": decode_handle(payload)}
        if msg_id == MEM_ACCEPT and payload:
            reply = AcceptReply.decode(payload)
            return {"sgl": [e._asdict() for e in reply.sgl],
                    "incomplete": bool(reply.flags & ACCEPT_RESP_FLAG_INCOMPLETE)}  # fmt: skip
    except ValueError:
        return None
    return None


def decode_notification(msg_id: int, payload: bytes) -> dict[str, Any] | None:
    """The fields of a MEM_SHARED, MEM_RELEASED, MEM_ACCEPTED or MEM_RECALL, or
    None where the payload is not its shape."""
    try:
        if msg_id == NOTIFY_MEM_SHARED:
            n = SharedNotification.decode(payload)
            return {"handle": n.handle, "mem_type": n.mem_type,
                    "trans_type": TRANS_NAMES.get(n.trans_type, n.trans_type),
                    "sanitized": bool(n.flags & 1), "owner": n.owner, "label": n.label,
                    "mem_info_tag": n.mem_info_tag, "acl": [a._asdict() for a in n.acl],
                    "sizes": list(n.sizes), "attrs": [a._asdict() for a in n.attrs]}  # fmt: skip
        if msg_id in (NOTIFY_MEM_RELEASED, NOTIFY_MEM_ACCEPTED):
            o = OwnerNotification.decode(payload)
            return {"handle": o.handle, "vmid": o.vmid, "mem_info_tag": o.mem_info_tag}
        if msg_id == NOTIFY_MEM_RECALL:
            r = RecallNotification.decode(payload)
            return {"handle": r.handle, "mem_info_tag": r.mem_info_tag}
    except ValueError:
        return None
    return None
