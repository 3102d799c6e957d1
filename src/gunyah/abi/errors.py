"""Gunyah's error codes, once: the hypervisor's `error` enumeration
(quic/gunyah-hypervisor 36ca3a2: hyp/core/base/types.tc, extended by each
interface that adds its own: hyp/interfaces/object/templates/object.tc.tmpl,
virq/virq.tc, cspace/templates/cspace.tc.tmpl, hyp/ipc/msgqueue/msgqueue.tc,
log/log.tc, allocator/allocator.tc, memdb/memdb.tc, memextent/memextent.tc,
pgtable/pgtable.tc), and the short name and Linux errno the seed-era
driver's gh_remap_error() gives the codes it knows (docs/abi.md section 4).
"""

from __future__ import annotations

import errno
from dataclasses import dataclass
from enum import IntEnum


class Error(IntEnum):
    """Every code the hypervisor's `error` enumeration names, by its name there."""

    OK = 0
    UNIMPLEMENTED = -1
    RETRY = -2
    ARGUMENT_INVALID = 1
    ARGUMENT_SIZE = 2
    ARGUMENT_ALIGNMENT = 3
    NOMEM = 10
    NORESOURCES = 11
    ADDR_OVERFLOW = 20
    ADDR_UNDERFLOW = 21
    ADDR_INVALID = 22
    DENIED = 30
    BUSY = 31
    IDLE = 32
    OBJECT_STATE = 33
    OBJECT_CONFIG = 34
    OBJECT_CONFIGURED = 35
    FAILURE = 36
    VIRQ_BOUND = 40
    VIRQ_NOT_BOUND = 41
    CSPACE_CAP_NULL = 50
    CSPACE_CAP_REVOKED = 51
    CSPACE_WRONG_OBJECT_TYPE = 52
    CSPACE_INSUFFICIENT_RIGHTS = 53
    CSPACE_FULL = 54
    MSGQUEUE_EMPTY = 60
    MSGQUEUE_FULL = 61
    STRING_TRUNCATED = 90
    STRING_REACHED_END = 91
    STRING_INVALID_FORMAT = 92
    STRING_MISSING_PLACEHOLDER = 93
    STRING_MISSING_ARGUMENT = 94
    ALLOCATOR_RANGE_OVERLAPPING = 100
    ALLOCATOR_MEM_INUSE = 101
    MEMDB_EMPTY = 110
    MEMDB_NOT_OWNER = 111
    MEMEXTENT_MAPPINGS_FULL = 120
    MEMEXTENT_TYPE = 121
    EXISTING_MAPPING = 200


@dataclass(frozen=True)
class GunyahError:
    """A code as the seed-era Linux driver names and remaps it."""

    code: int
    name: str  # the seed-era header's short name (GH_ERROR_*)
    linux_errno: int  # negative, as the kernel returns it


_E = errno
_SEED_ERA: tuple[tuple[Error, str, int], ...] = (
    (Error.OK, "OK", 0),
    (Error.UNIMPLEMENTED, "UNIMPLEMENTED", -_E.EINVAL),
    (Error.RETRY, "RETRY", -_E.EINVAL),
    (Error.ARGUMENT_INVALID, "ARG_INVAL", -_E.EINVAL),
    (Error.ARGUMENT_SIZE, "ARG_SIZE", -_E.EINVAL),
    (Error.ARGUMENT_ALIGNMENT, "ARG_ALIGN", -_E.EINVAL),
    (Error.NOMEM, "NOMEM", -_E.ENOMEM),
    (Error.NORESOURCES, "NORESOURCES", -_E.EINVAL),
    (Error.ADDR_OVERFLOW, "ADDR_OVFL", -_E.EINVAL),
    (Error.ADDR_UNDERFLOW, "ADDR_UNFL", -_E.EINVAL),
    (Error.ADDR_INVALID, "ADDR_INVAL", -_E.EINVAL),
    (Error.DENIED, "DENIED", -_E.EACCES),
    (Error.BUSY, "BUSY", -_E.EBUSY),
    (Error.IDLE, "IDLE", -_E.EBUSY),
    (Error.FAILURE, "FAILURE", -_E.EINVAL),
    (Error.VIRQ_BOUND, "IRQ_BOUND", -_E.EPERM),
    (Error.VIRQ_NOT_BOUND, "IRQ_UNBOUND", -_E.EPERM),
    (Error.CSPACE_CAP_NULL, "CSPACE_CAP_NULL", -_E.EACCES),
    (Error.CSPACE_CAP_REVOKED, "CSPACE_CAP_REVOKED", -_E.EACCES),
    (Error.CSPACE_WRONG_OBJECT_TYPE, "CSPACE_WRONG_OBJ_TYPE", -_E.EACCES),
    (Error.CSPACE_INSUFFICIENT_RIGHTS, "CSPACE_INSUF_RIGHTS", -_E.EACCES),
    (Error.CSPACE_FULL, "CSPACE_FULL", -_E.EACCES),
    (Error.MSGQUEUE_EMPTY, "MSGQUEUE_EMPTY", -_E.EPERM),
    (Error.MSGQUEUE_FULL, "MSGQUEUE_FULL", -_E.EPERM),
)
GUNYAH_ERRORS: tuple[GunyahError, ...] = tuple(
    GunyahError(int(code), name, err) for code, name, err in _SEED_ERA
)
ERRORS_BY_CODE = {e.code: e for e in GUNYAH_ERRORS}
ERRORS_BY_NAME = {e.name: e for e in GUNYAH_ERRORS}
ERROR_OK = Error.OK
ERROR_UNIMPLEMENTED = Error.UNIMPLEMENTED
_CODES = frozenset(int(e) for e in Error)


def error_name(code: int) -> str:
    """Name of a Gunyah error code: the seed-era driver's short name where it
    has one, else the hypervisor's; an unknown code keeps its number."""
    known = ERRORS_BY_CODE.get(code)
    if known is not None:
        return known.name
    return Error(code).name if code in _CODES else f"unknown({code})"


def linux_errno(code: int) -> int:
    """gh_remap_error(): unnamed codes fall to the default branch, -EINVAL."""
    known = ERRORS_BY_CODE.get(code)
    return known.linux_errno if known else -_E.EINVAL
