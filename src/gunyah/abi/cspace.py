"""Gunyah's capabilities as a guest meets them: object types, the rights of
each, and how a capability ID names a slot (quic/gunyah-hypervisor 36ca3a2:
hyp/core/cspace_twolevel, the `cap_rights_*` bitfields of each object's
interface, hyp/core/object_standard/templates/object.tc.tmpl).

A call that takes a capability looks it up in the calling VM's cspace with
the object type and the rights it needs. The errors come in a fixed order:
a malformed ID, then an empty slot, then the type, then the rights; a lookup
of "any" object checks the rights first and leaves the type to the caller.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import Error

# Object types with capabilities (first_class_object in each interface's build.conf)
OBJECT_TYPES = (
    "partition", "cspace", "addrspace", "memextent", "thread", "doorbell", "msgqueue",
    "vic", "vpm_group", "hwirq", "virtio_mmio", "vrtc", "watchdog",
)  # fmt: skip

GENERIC_RIGHTS = {"object_activate": 1 << 31}  # cap_rights_generic, every object type

# cap_rights_<type>: bit positions of each right
RIGHTS: dict[str, dict[str, int]] = {
    "partition": {"object_create": 0, "donate": 1},
    "cspace": {"cap_create": 0, "cap_delete": 1, "cap_copy": 2, "attach": 3, "cap_revoke": 4},
    "addrspace": {"attach": 0, "map": 1, "lookup": 2, "add_vmmio_range": 3},
    "memextent": {"map": 0, "derive": 1, "attach": 2, "lookup": 3, "donate": 4},
    "thread": {"power": 0, "affinity": 1, "priority": 2, "timeslice": 3, "yield_to": 4,
               "bind_virq": 5, "state": 6, "lifecycle": 7, "write_context": 8, "disable": 9},
    "doorbell": {"send": 0, "receive": 1, "bind": 2},
    "msgqueue": {"send": 0, "receive": 1, "bind_send": 2, "bind_receive": 3},
    "vic": {"bind_source": 0, "attach_vcpu": 1, "attach_vdevice": 2},
    "vpm_group": {"attach_vcpu": 0, "bind_virq": 1, "query": 2},
    "hwirq": {"bind_vic": 1},
    "virtio_mmio": {"bind_backend_virq": 0, "bind_frontend_virq": 1, "assert_virq": 2,
                    "config": 3},
    "vrtc": {"configure": 0, "attach_addrspace": 1, "set_time_base": 2},
    "watchdog": {},
}  # fmt: skip

# Errors a lookup gives (hyp/interfaces/cspace/templates/cspace.tc.tmpl,
# object.tc.tmpl), from the one enumeration
ERROR_ARGUMENT_INVALID = Error.ARGUMENT_INVALID
ERROR_CAP_NULL = Error.CSPACE_CAP_NULL
ERROR_CAP_REVOKED = Error.CSPACE_CAP_REVOKED
ERROR_WRONG_OBJECT_TYPE = Error.CSPACE_WRONG_OBJECT_TYPE
ERROR_INSUFFICIENT_RIGHTS = Error.CSPACE_INSUFFICIENT_RIGHTS
ERROR_OBJECT_STATE = Error.OBJECT_STATE

CAP_INVALID = (1 << 64) - 1  # CSPACE_CAP_INVALID

# Two-level cspace geometry. A capability ID is a 16-bit slot number (upper
# byte the table, lower byte the slot in it) multiplied and XORed with a
# per-cspace random value; debug builds (quality=debug, as the QEMU build
# measured) turn the randomisation off, so IDs are the slot numbers. The
# counts follow from the 2 KiB table and cspace allocations with 32-byte
# slots (cspace.tc): derived from the source's sizes, not measured.
SLOTS_PER_TABLE = 62
TABLES = 233


def rights_mask(object_type: str, names: tuple[str, ...]) -> int:
    """The rights word for these rights of an object type (or generic ones)."""
    mask = 0
    for name in names:
        if name in GENERIC_RIGHTS:
            mask |= GENERIC_RIGHTS[name]
        else:
            mask |= 1 << RIGHTS[object_type][name]
    return mask


def rights_names(object_type: str | None, mask: int) -> list[str]:
    """The names of the rights in a rights word: rights_mask read back."""
    named = {**{n: 1 << b for n, b in RIGHTS.get(object_type or "", {}).items()}, **GENERIC_RIGHTS}
    names = [n for n, bit in named.items() if mask & bit]
    rest = mask & ~sum(named.values())
    return names + ([f"{rest:#x}"] if rest else [])


@dataclass(frozen=True)
class Cap:
    """A valid capability: the object it names, its type and rights."""

    object_type: str
    rights: int
    obj: object = None


def decode_cap_id(cap_id: int) -> tuple[int, int] | None:
    """(table, slot) of a capability ID in a cspace without ID randomisation,
    or None where it names no slot (ARGUMENT_INVALID)."""
    if cap_id >> 16:
        return None
    table, slot = cap_id >> 8, cap_id & 0xFF
    if table >= TABLES or slot >= SLOTS_PER_TABLE:
        return None
    return table, slot
