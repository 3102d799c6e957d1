"""The resource manager's RPC as a guest meets it, declared once: the header
of every message, the message IDs and the RM error codes
(quic/gunyah-resource-manager bf31a9a: include/rm-rpc.h, include/rm_types.h,
include/*_message.h, src/rpc/rm-rpc.c; docs/abi.md section 9).

A message is at most 240 bytes: an 8-byte header, then up to 232 bytes of
payload. A longer request or reply goes as a first message of its type that
counts the continuations to follow (at most 62), then the continuations.
A reply's payload starts with the RM error word.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..bitfield import Bitfield, Field

MESSAGE_SIZE = 240  # RM_RPC_MESSAGE_SIZE, the queues' message size
HEADER_SIZE = 8
MAX_CONTENT = MESSAGE_SIZE - HEADER_SIZE  # 232
MAX_FRAGMENTS = 62
MAX_MSG_SIZE = MAX_CONTENT * (MAX_FRAGMENTS + 1)  # a whole request or reply
API_VERSION = 1
HEADER_WORDS = HEADER_SIZE // 4

# byte 0 and byte 1 of the header (read_rpc_header)
VERSION_BYTE = Bitfield("rm_rpc_version", 8, Field("api_version", 0, 4),
                        Field("header_words", 4, 4))  # fmt: skip
TYPE_BYTE = Bitfield("rm_rpc_type", 8, Field("msg_type", 0, 2), Field("fragments", 2, 6))

TYPE_CONTINUATION, TYPE_REQUEST, TYPE_REPLY, TYPE_NOTIFICATION = 0, 1, 2, 3
MSG_TYPES = {
    TYPE_CONTINUATION: "continuation",
    TYPE_REQUEST: "request",
    TYPE_REPLY: "reply",
    TYPE_NOTIFICATION: "notification",
}

# Message IDs by name (include/*_message.h); the top byte names the service
# (0x51 memory, 0x56 VM management), 0x..1.... a notification.
MESSAGE_IDS: dict[str, int] = {
    "MEM_DONATE": 0x51000010, "MEM_ACCEPT": 0x51000011, "MEM_LEND": 0x51000012,
    "MEM_SHARE": 0x51000013, "MEM_RELEASE": 0x51000014, "MEM_RECLAIM": 0x51000015,
    "MEM_NOTIFY": 0x51000017, "MEM_APPEND": 0x51000018, "MEM_QCOM_LOOKUP_SGL": 0x5100001A,
    "FW_SET_VM_FIRMWARE": 0x51000021,
    "NOTIFY_MEM_SHARED": 0x51100011, "NOTIFY_MEM_RELEASED": 0x51100012,
    "NOTIFY_MEM_ACCEPTED": 0x51100013, "NOTIFY_MEM_RECALL": 0x51100014,
    "VM_ALLOCATE": 0x56000001, "VM_DEALLOCATE": 0x56000002, "VM_START": 0x56000004,
    "VM_STOP": 0x56000005, "VM_RESET": 0x56000006, "VM_CONFIG_IMAGE": 0x56000009,
    "VM_AUTH_IMAGE": 0x5600000A, "VM_INIT": 0x5600000B,
    "VM_GET_ID": 0x56000010, "VM_LOOKUP_URI": 0x56000011, "VM_LOOKUP_GUID": 0x56000012,
    "VM_LOOKUP_NAME": 0x56000013, "VM_GET_OWNER": 0x56000015, "VM_GET_STATE": 0x56000017,
    "VM_GET_CRASH_MSG": 0x56000019, "VM_GET_HYP_RESOURCES": 0x56000020,
    "VM_GET_HYP_CAPIDS": 0x56000021, "VM_GET_HYP_IRQS": 0x56000022,
    "VM_GET_VMID": 0x56000024, "VM_GET_PEERS": 0x56000025,
    "VM_SET_TIME_BASE": 0x56000030, "VM_SET_CONTEXT": 0x56000031,
    "VM_SET_FIRMWARE_MEM": 0x56000032,
    "VM_IRQ_ACCEPT": 0x56000050, "VM_IRQ_LEND": 0x56000051, "VM_IRQ_RELEASE": 0x56000052,
    "VM_IRQ_RECLAIM": 0x56000053, "VM_IRQ_NOTIFY": 0x56000054, "VM_IRQ_UNMAP": 0x56000055,
    "VM_SET_STATUS": 0x56000080, "VM_CONSOLE_OPEN": 0x56000081,
    "VM_CONSOLE_CLOSE": 0x56000082, "VM_CONSOLE_WRITE": 0x56000083,
    "VM_CONSOLE_FLUSH": 0x56000084, "VM_EXIT": 0x56000085, "VM_SET_CRASH_MSG": 0x56000086,
    "VM_HOST_GET_TYPE": 0x560000A0, "IPA_RESERVE": 0x560000B0, "IPA_UNRESERVE": 0x560000B1,
    "NOTIFY_VM_EXITED": 0x56100001, "NOTIFY_VM_SHUTDOWN": 0x56100002,
    "NOTIFY_VM_STATUS": 0x56100008, "NOTIFY_VM_IRQ_LENT": 0x56100011,
    "NOTIFY_VM_IRQ_RELEASED": 0x56100012, "NOTIFY_VM_IRQ_ACCEPTED": 0x56100013,
    "NOTIFY_VM_CONSOLE_CHARS": 0x56100080,
}  # fmt: skip
MESSAGE_NAMES = {v: k for k, v in MESSAGE_IDS.items()}

# RM error codes (include/rm_types.h), and what each says to a user
ERRORS: dict[int, tuple[str, str]] = {
    0x0: ("OK", "success"),
    0x1: ("NOMEM", "the resource manager ran out of memory"),
    0x2: ("NORESOURCE", "no such resource, or none left (an unknown VMID, for one)"),
    0x3: ("DENIED", "the caller may not do this"),
    0x4: ("MSG_INVALID", "the request is malformed: a payload of the wrong size"),
    0x5: ("BUSY", "the resource is busy; try again"),
    0x6: ("ARGUMENT_INVALID", "an argument in the request is invalid"),
    0x7: ("HANDLE_INVALID", "the handle (a memparcel or IRQ handle) names nothing"),
    0x8: ("VALIDATE_FAILED", "the request failed validation"),
    0x9: ("MAP_FAILED", "mapping the memory failed"),
    0xA: ("MEM_INVALID", "the memory named is invalid"),
    0xB: ("MEM_INUSE", "the memory is in use"),
    0xC: ("MEM_RELEASED", "the memory was already released"),
    0xD: ("VMID_INVALID", "the VMID names no VM"),
    0xE: ("LOOKUP_FAILED", "the lookup found nothing"),
    0xF: ("IRQ_INVALID", "the IRQ is invalid"),
    0x10: ("IRQ_INUSE", "the IRQ is in use"),
    0x11: ("IRQ_RELEASED", "the IRQ was already released"),
    0x12: ("IN_USE", "in use"),
    0x13: ("IRQ_NOT_MAPPED", "the IRQ is not mapped"),
    0x14: ("VM_STATE", "the VM is not in a state that allows this"),
    0xFFFFFFFF: ("UNIMPLEMENTED", "the resource manager does not implement this message"),
}  # fmt: skip
ERROR_CODES = {name: code for code, (name, _) in ERRORS.items()}
OK = 0x0
ERROR_NORESOURCE = ERROR_CODES["NORESOURCE"]
ERROR_MSG_INVALID = ERROR_CODES["MSG_INVALID"]
ERROR_UNIMPLEMENTED = ERROR_CODES["UNIMPLEMENTED"]

# VM states (include/vm_mgnt.h vm_state_t), as VM_GET_STATE and VM_STATUS carry them
VM_STATES: dict[int, str] = {
    0: "NONE", 1: "INIT", 2: "READY", 3: "RUNNING", 4: "PAUSED", 5: "LOAD", 6: "AUTH",
    8: "INIT_FAILED", 9: "EXITED", 10: "RESETTING", 11: "RESET",
}  # fmt: skip
VM_STATE = {name: code for code, name in VM_STATES.items()}
# OS states (os_state_t), the second byte of a VM's status
OS_STATES: dict[int, str] = {
    0: "NONE", 1: "EARLY_BOOT", 2: "BOOT", 3: "INIT", 4: "RUN", 5: "SHUTDOWN", 6: "HALTED",
    7: "CRASHED",
}  # fmt: skip
# VM_EXITED's exit types (exit_type_t) and the exit codes of its reason word (exit_code_t)
EXIT_TYPES: dict[int, str] = {
    0: "VM_EXIT", 1: "PLATFORM_OFF", 2: "PLATFORM_RESET", 3: "PSCI_SYSTEM_RESET2",
    4: "WATCHDOG_BITE", 5: "SOFTWARE_ERROR", 6: "ASYNC_HW_ERROR", 7: "VM_STOP_FORCED",
}  # fmt: skip
EXIT_TYPE = {name: code for code, name in EXIT_TYPES.items()}
EXIT_CODES: dict[int, str] = {
    0: "NORMAL", 1: "SOFTWARE_ERROR", 2: "UNKNOWN_ERROR", 3: "BUS_ERROR", 4: "DEVICE_ERROR",
}  # fmt: skip
# VM_GET_HYP_RESOURCES entry types (include/vm_resource_msg.h resource_type_t)
RESOURCE_TYPES: dict[int, str] = {
    0: "DOORBELL_SRC", 1: "DOORBELL", 2: "MSG_QUEUE_SEND", 3: "MSG_QUEUE_RECV",
    4: "VIRTUAL_CPU", 5: "VIRTUAL_PM", 6: "VIRTIO_MMIO", 7: "VRTC", 8: "WATCHDOG",
}  # fmt: skip

_HEADER = struct.Struct("<BBHI")


class MalformedHeader(ValueError):
    """Not a header the resource manager accepts: it drops such a message."""


@dataclass(frozen=True)
class Header:
    msg_type: int
    fragments: int
    seq: int
    msg_id: int
    api_version: int = API_VERSION
    header_words: int = HEADER_WORDS

    def encode(self) -> bytes:
        return _HEADER.pack(
            VERSION_BYTE.encode({"api_version": self.api_version,
                                 "header_words": self.header_words}),
            TYPE_BYTE.encode({"msg_type": self.msg_type, "fragments": self.fragments}),
            self.seq,
            self.msg_id,
        )

    @classmethod
    def decode(cls, data: bytes) -> Header:
        """The header of a message of at least 8 bytes, as read_rpc_header
        reads it (any fields, valid or not)."""
        if len(data) < HEADER_SIZE:
            raise MalformedHeader(f"{len(data)} bytes: shorter than the 8-byte header")
        b0, b1, seq, msg_id = _HEADER.unpack_from(data)
        v, t = VERSION_BYTE.decode(b0), TYPE_BYTE.decode(b1)
        return cls(int(t["msg_type"]), int(t["fragments"]), seq, msg_id,
                   int(v["api_version"]), int(v["header_words"]))  # fmt: skip

    @property
    def valid(self) -> bool:
        """What the resource manager checks before anything else."""
        return (self.api_version == API_VERSION and self.header_words == HEADER_WORDS
                and self.fragments <= MAX_FRAGMENTS)  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": MSG_TYPES[self.msg_type],
            "fragments": self.fragments,
            "seq": self.seq,
            "message_id": self.msg_id,
            "message": message_name(self.msg_id),
            "api_version": self.api_version,
            "header_words": self.header_words,
        }


def message_name(msg_id: int) -> str | None:
    return MESSAGE_NAMES.get(msg_id)


def message_id(text: str) -> int:
    """A message ID from its name (VM_GET_VMID, case-insensitive) or its
    number in hex, with or without 0x (kernel logs print it bare: 51000015);
    ValueError naming the choices otherwise."""
    key = text.strip().upper()
    if key in MESSAGE_IDS:
        return MESSAGE_IDS[key]
    try:
        value = int(text.replace("_", ""), 16)
    except ValueError:
        raise ValueError(f"{text!r} is neither a message name (e.g. VM_GET_VMID) "
                         "nor a number") from None  # fmt: skip
    if not 0 <= value <= 0xFFFFFFFF:
        raise ValueError(f"{text!r}: a message ID is 32 bits")
    return value


def error_code(text: str) -> int:
    """An RM error from its name, or its number as a kernel log prints it
    (decimal, -1 for UNIMPLEMENTED) or in hex with 0x."""
    key = text.strip().upper()
    if key in ERROR_CODES:
        return ERROR_CODES[key]
    try:
        value = int(text.replace("_", ""), 0)
    except ValueError:
        raise ValueError(f"{text!r} is neither an RM error name nor a number") from None
    if not -(1 << 31) <= value <= 0xFFFFFFFF:
        raise ValueError(f"{text!r}: an RM error is 32 bits")
    return value & 0xFFFFFFFF


def describe(msg_id: int, error: int | None = None) -> dict[str, Any]:
    """What a message ID (and the RM error of its reply) mean, as `decode` says."""
    service = {0x51: "memory", 0x56: "VM management"}.get(msg_id >> 24)
    known = ERRORS.get(error) if error is not None else None
    return {
        "message_id": msg_id,
        "message": message_name(msg_id),
        "service": service,
        "notification": bool(msg_id >> 20 & 1),
        "error": error,
        "error_name": known[0] if known else None,
        "error_means": known[1] if known else None,
    }


def frame(msg_type: int, seq: int, msg_id: int, payload: bytes) -> list[bytes]:
    """The messages that carry one request, reply or notification: the first
    of its type counting the continuations, then each continuation."""
    if len(payload) > MAX_MSG_SIZE:
        raise ValueError(f"{len(payload)} bytes: more than the {MAX_MSG_SIZE} an RPC carries")
    chunks = [payload[i : i + MAX_CONTENT] for i in range(0, len(payload), MAX_CONTENT)] or [b""]
    n = len(chunks) - 1
    return [Header(msg_type if i == 0 else TYPE_CONTINUATION, n, seq, msg_id).encode() + c
            for i, c in enumerate(chunks)]  # fmt: skip


Derive = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True)
class Layout:
    """One payload's shape, declared once: fixed little-endian fields, then,
    where `entry` is given, as many entries as the field `count` says (in
    entries, or in bytes when `count_bytes`). The resource manager encodes
    with it and `decode_reply` decodes with it; `derive` adds what a field's
    bits mean."""

    fields: tuple[tuple[str, str], ...]
    entry: tuple[tuple[str, str], ...] = ()
    count: str = ""
    count_bytes: bool = False
    derive: Derive | None = None

    @property
    def head(self) -> struct.Struct:
        return struct.Struct("<" + "".join(code for _, code in self.fields))

    @property
    def item(self) -> struct.Struct:
        return struct.Struct("<" + "".join(code for _, code in self.entry))

    def encode(self, values: Mapping[str, int] | None = None,
               entries: Sequence[Mapping[str, int]] = ()) -> bytes:  # fmt: skip
        """The payload; fields not given are 0, and the count is the entries'."""
        given = dict(values or {})
        if self.count:
            n = len(entries)
            given[self.count] = n * self.item.size if self.count_bytes else n
        out = bytearray(self.head.pack(*(given.get(name, 0) for name, _ in self.fields)))
        for e in entries:
            out += self.item.pack(*(e.get(name, 0) for name, _ in self.entry))
        return bytes(out)

    def decode(self, data: bytes) -> dict[str, Any] | None:
        """The fields (and entries) of a payload of exactly this shape, or None."""
        head = self.head
        if len(data) < head.size:
            return None
        names = [n for n, _ in self.fields]
        d: dict[str, Any] = dict(zip(names, head.unpack_from(data), strict=True))
        rest = data[head.size :]
        if not self.count:
            if rest:
                return None
        else:
            item, n = self.item, d[self.count]
            if self.count_bytes:
                if n % item.size:
                    return None
                n //= item.size
            if len(rest) != n * item.size:
                return None
            keys = [k for k, _ in self.entry]
            d["entries"] = [dict(zip(keys, item.unpack_from(rest, i * item.size), strict=True))
                            for i in range(n)]  # fmt: skip
        for key in list(d):
            table = NAMED_VALUES.get(key)
            if table is not None:
                d[key + "_name"] = table.get(d[key])
        for e in d.get("entries", []):
            for key in list(e):
                table = NAMED_VALUES.get(key)
                if table is not None:
                    e[key + "_name"] = table.get(e[key])
        return self.derive(d) if self.derive else d


NAMED_VALUES: dict[str, dict[int, str]] = {
    "vm_state": VM_STATES,
    "os_state": OS_STATES,
    "exit_type": EXIT_TYPES,
    "resource_type": RESOURCE_TYPES,
}


def _host_type(d: dict[str, Any]) -> dict[str, Any]:
    value = d["host_type"]
    return {"host_type": value, "arch": value & 0xFF, "hypervisor": value >> 8 & 0xFF,
            "version": value >> 24}  # fmt: skip


def _exit_reason(d: dict[str, Any]) -> dict[str, Any]:
    """The first reason word: exit flags in bits 15:0, the exit code in 31:16
    (vm_mgnt.c vm_mgnt_send_exited)."""
    words = [e["word"] for e in d.pop("entries")]
    d["reason"] = words
    if words:
        d["exit_flags"] = words[0] & 0xFFFF
        d["exit_code"] = words[0] >> 16
        d["exit_code_name"] = EXIT_CODES.get(words[0] >> 16)
    return d


def _vmids(d: dict[str, Any]) -> dict[str, Any]:
    return {"vmids": [e["vmid"] for e in d["entries"]]}


def _peers(d: dict[str, Any]) -> dict[str, Any]:
    return {"peers": [e["vmid"] for e in d["entries"]]}


STANDARD = Layout(())  # a reply that is its error word alone
VMID_WORD = Layout((("vmid", "I"),))
VM_STATUS = Layout((("vm_state", "B"), ("os_state", "B"), ("app_status", "H")))
HYP_RESOURCE = (  # include/vm_resource_msg.h rm_hyp_resource_resp: 44 bytes
    ("resource_type", "B"), ("res0", "B"), ("partner_vmid", "H"), ("handle", "I"),
    ("label", "I"), ("cap_id", "Q"), ("virq_handle", "I"), ("virq", "I"),
    ("base", "Q"), ("size", "Q"),
)  # fmt: skip

# Reply payloads after the error word, by message (vm_mgnt.c, vm_creation.c,
# vm_get_resources.c); where a reply has two shapes, each in turn.
REPLIES: dict[str, tuple[Layout, ...]] = {
    "VM_ALLOCATE": (VMID_WORD, STANDARD),  # a VMID it picked; nothing for a fixed one
    "VM_DEALLOCATE": (STANDARD,), "VM_START": (STANDARD,), "VM_STOP": (STANDARD,),
    "VM_RESET": (STANDARD,), "VM_CONFIG_IMAGE": (STANDARD,), "VM_INIT": (STANDARD,),
    "VM_GET_VMID": (VMID_WORD,),
    "VM_GET_OWNER": (Layout((("owner", "I"),)),),
    "VM_HOST_GET_TYPE": (Layout((("host_type", "I"),), derive=_host_type),),
    "VM_GET_STATE": (VM_STATUS,),
    "VM_GET_PEERS": (Layout((("count", "I"),), (("vmid", "I"),), "count", derive=_peers),),
    "VM_LOOKUP_NAME": (Layout((("count", "I"),), (("vmid", "I"),), "count", derive=_vmids),),
    "VM_GET_HYP_RESOURCES": (Layout((("count", "I"),), HYP_RESOURCE, "count"),),
}  # fmt: skip

# Notification payloads (vm_mgnt_message.h, memparcel_msg.h)
NOTIFICATIONS: dict[str, Layout] = {
    "NOTIFY_VM_STATUS": Layout((("vmid", "H"), ("res0", "H"), ("vm_state", "B"),
                                ("os_state", "B"), ("app_status", "H"))),
    "NOTIFY_VM_EXITED": Layout((("vmid", "H"), ("exit_type", "H"), ("reason_size", "I")),
                               (("word", "I"),), "reason_size", count_bytes=True,
                               derive=_exit_reason),
    "NOTIFY_VM_SHUTDOWN": Layout((("reason", "I"),)),
    "NOTIFY_MEM_RELEASED": Layout((("handle", "I"), ("vmid", "H"), ("res0", "H"),
                                   ("mem_info_tag", "I"))),
    "NOTIFY_MEM_ACCEPTED": Layout((("handle", "I"), ("vmid", "H"), ("res0", "H"),
                                   ("mem_info_tag", "I"))),
}  # fmt: skip


def encode_reply(name: str, values: Mapping[str, int] | None = None,
                 entries: Sequence[Mapping[str, int]] = ()) -> bytes:  # fmt: skip
    """A reply's payload after the error word, in its first declared shape."""
    return REPLIES[name][0].encode(values, entries)


def encode_notification(name: str, values: Mapping[str, int] | None = None,
                        entries: Sequence[Mapping[str, int]] = ()) -> bytes:  # fmt: skip
    return NOTIFICATIONS[name].encode(values, entries)


def decode_reply(msg_id: int, payload: bytes) -> dict[str, Any] | None:
    """The fields of a known reply's payload (after the error word), or of a
    notification's, or None where the message or the payload's shape is not
    one known here."""
    name = message_name(msg_id)
    if name is None:
        return None
    if name in NOTIFICATIONS:
        return NOTIFICATIONS[name].decode(payload)
    for layout in REPLIES.get(name, ()):
        d = layout.decode(payload)
        if d is not None:
            return d
    if name == "VM_GET_ID" and len(payload) >= 4:
        return _decode_ids(payload)
    if name == "VM_GET_CRASH_MSG" and len(payload) >= 4:
        return _decode_crash_msg(payload)
    if msg_id >> 24 == 0x51:
        from . import memparcel  # it builds on this module

        return memparcel.decode_reply(msg_id, payload)
    return None


def _decode_crash_msg(payload: bytes) -> dict[str, Any] | None:
    """u16 length, u16 0, the message padded to 4 bytes (vm_mgnt.c)."""
    (n,) = struct.unpack_from("<H", payload)
    if len(payload) != 4 + n + (-n % 4):
        return None
    return {"crash_msg": payload[4 : 4 + n].decode("utf-8", "replace")}


ID_TYPES = {0: "guid", 1: "uri", 2: "name", 3: "sign_auth"}  # vm_mgnt.c, VM_GET_ID entries


def _decode_ids(payload: bytes) -> dict[str, Any] | None:
    (n,) = struct.unpack_from("<I", payload)
    at, entries = 4, []
    for _ in range(min(n, len(payload) // 4)):
        if at + 4 > len(payload):
            return None
        kind, size = struct.unpack_from("<HH", payload, at)
        value = payload[at + 4 : at + 4 + size]
        if len(value) != size:
            return None
        at += 4 + size + (-size % 4)
        text = value.hex() if kind == 0 else value.decode("ascii", "replace")
        entries.append({"type": ID_TYPES.get(kind, kind), "value": text})
    if len(entries) != n or at != len(payload):
        return None
    return {"ids": entries}
