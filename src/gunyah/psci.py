"""PSCI (Arm DEN0022) as a pure codec: function numbers, return codes, the
version word and the SYSTEM_RESET2 reset types. PSCI calls are fast calls of
the standard secure service owner (4); their names are in
`smccc.STANDARD_SECURE_CALLS`. Nothing here knows who serves them: that is
`model.psci`."""

from __future__ import annotations

from .bitfield import Bitfield, Field, flag
from .smccc import OWNER_STANDARD, fast32, fast64, to_signed

# Function numbers (bits 15:0 of the ID; include/uapi/linux/psci.h PSCI_0_2_FN_*).
VERSION = 0x00
CPU_SUSPEND = 0x01
CPU_OFF = 0x02
CPU_ON = 0x03
AFFINITY_INFO = 0x04
MIGRATE = 0x05
MIGRATE_INFO_TYPE = 0x06
MIGRATE_INFO_UP_CPU = 0x07
SYSTEM_OFF = 0x08
SYSTEM_RESET = 0x09
FEATURES = 0x0A
CPU_DEFAULT_SUSPEND = 0x0C
SYSTEM_SUSPEND = 0x0E
SET_SUSPEND_MODE = 0x0F
SYSTEM_RESET2 = 0x12
MODE_PC = 0  # SET_SUSPEND_MODE: platform-coordinated


def fn32(function: int) -> int:
    """A PSCI call's SMC32/HVC32 function ID (0x84000000 + N)."""
    return fast32(OWNER_STANDARD, function)


def fn64(function: int) -> int:
    """A PSCI call's SMC64/HVC64 function ID (0xC4000000 + N)."""
    return fast64(OWNER_STANDARD, function)


# Return codes (DEN0022 section 5.2.2; psci.h PSCI_RET_*).
SUCCESS = 0
NOT_SUPPORTED = -1
INVALID_PARAMETERS = -2
DENIED = -3
ALREADY_ON = -4
ON_PENDING = -5
INTERNAL_FAILURE = -6
NOT_PRESENT = -7
DISABLED = -8
INVALID_ADDRESS = -9
RETURN_CODES = {
    SUCCESS: "SUCCESS",
    NOT_SUPPORTED: "NOT_SUPPORTED",
    INVALID_PARAMETERS: "INVALID_PARAMETERS",
    DENIED: "DENIED",
    ALREADY_ON: "ALREADY_ON",
    ON_PENDING: "ON_PENDING",
    INTERNAL_FAILURE: "INTERNAL_FAILURE",
    NOT_PRESENT: "NOT_PRESENT",
    DISABLED: "DISABLED",
    INVALID_ADDRESS: "INVALID_ADDRESS",
}


def return_code_name(value: int, bits: int = 64) -> str | None:
    """The PSCI return code a register value spells, if any (PSCI's -2 is
    INVALID_PARAMETERS where SMCCC's is NOT_REQUIRED)."""
    return RETURN_CODES.get(to_signed(value, bits))


# PSCI_VERSION's answer: major in bits 30:16, minor in 15:0 (psci.h
# PSCI_VERSION_MAJOR_MASK 0xffff0000 keeps bit 31, which is zero in a version).
VERSION_WORD = Bitfield("PSCI version", 32, Field("minor", 0, 16), Field("major", 16, 15))


def version(major: int, minor: int) -> int:
    return VERSION_WORD.encode({"major": major, "minor": minor})


VERSION_1_1 = version(1, 1)

# AFFINITY_INFO answers (psci.h PSCI_0_2_AFFINITY_LEVEL_*).
AFFINITY_ON = 0
AFFINITY_OFF = 1

# MIGRATE_INFO_TYPE: "Trusted OS is multiprocessor or absent, no migration".
TOS_MP = 2

# SYSTEM_RESET2's reset type (DEN0022 5.15): bit 31 set is a vendor type,
# architectural type 0 is SYSTEM_WARM_RESET; other architectural types are
# reserved.
RESET_TYPE = Bitfield("SYSTEM_RESET2 type", 32, Field("type", 0, 31), flag("vendor", 31))
RESET_WARM = 0

# An MPIDR's affinity fields, the ones PSCI compares (arm64 MPIDR_HWID_BITMASK).
MPIDR = Bitfield(
    "MPIDR",
    64,
    Field("aff0", 0, 8),
    Field("aff1", 8, 8),
    Field("aff2", 16, 8),
    Field("aff3", 32, 8),
)
MPIDR_AFFINITY_MASK = sum(MPIDR[name].mask for name in ("aff0", "aff1", "aff2", "aff3"))
