"""Gunyah error codes (hyp/core/base/types.tc) and the Linux errno the
seed-era gh_remap_error() gives each (docs/abi.md section 4)."""

from __future__ import annotations

import errno
from dataclasses import dataclass


@dataclass(frozen=True)
class GunyahError:
    code: int
    name: str
    linux_errno: int  # negative, as the kernel returns it


_E = errno
GUNYAH_ERRORS: tuple[GunyahError, ...] = (
    GunyahError(0, "OK", 0),
    GunyahError(-1, "UNIMPLEMENTED", -_E.EINVAL),
    GunyahError(-2, "RETRY", -_E.EINVAL),
    GunyahError(1, "ARG_INVAL", -_E.EINVAL),
    GunyahError(2, "ARG_SIZE", -_E.EINVAL),
    GunyahError(3, "ARG_ALIGN", -_E.EINVAL),
    GunyahError(10, "NOMEM", -_E.ENOMEM),
    GunyahError(11, "NORESOURCES", -_E.EINVAL),
    GunyahError(20, "ADDR_OVFL", -_E.EINVAL),
    GunyahError(21, "ADDR_UNFL", -_E.EINVAL),
    GunyahError(22, "ADDR_INVAL", -_E.EINVAL),
    GunyahError(30, "DENIED", -_E.EACCES),
    GunyahError(31, "BUSY", -_E.EBUSY),
    GunyahError(32, "IDLE", -_E.EBUSY),
    GunyahError(36, "FAILURE", -_E.EINVAL),
    GunyahError(40, "IRQ_BOUND", -_E.EPERM),
    GunyahError(41, "IRQ_UNBOUND", -_E.EPERM),
    GunyahError(50, "CSPACE_CAP_NULL", -_E.EACCES),
    GunyahError(51, "CSPACE_CAP_REVOKED", -_E.EACCES),
    GunyahError(52, "CSPACE_WRONG_OBJ_TYPE", -_E.EACCES),
    GunyahError(53, "CSPACE_INSUF_RIGHTS", -_E.EACCES),
    GunyahError(54, "CSPACE_FULL", -_E.EACCES),
    GunyahError(60, "MSGQUEUE_EMPTY", -_E.EPERM),
    GunyahError(61, "MSGQUEUE_FULL", -_E.EPERM),
)
ERRORS_BY_CODE = {e.code: e for e in GUNYAH_ERRORS}
ERRORS_BY_NAME = {e.name: e for e in GUNYAH_ERRORS}
ERROR_OK = 0
ERROR_UNIMPLEMENTED = -1


def error_name(code: int) -> str:
    """Name of a Gunyah error code; an unknown code keeps its number."""
    known = ERRORS_BY_CODE.get(code)
    return known.name if known else f"unknown({code})"


def linux_errno(code: int) -> int:
    """gh_remap_error(): unnamed codes fall to the default branch, -EINVAL."""
    known = ERRORS_BY_CODE.get(code)
    return known.linux_errno if known else -_E.EINVAL
