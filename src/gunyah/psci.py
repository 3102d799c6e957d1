"""PSCI (Arm DEN0022) as a pure codec: function numbers, return codes, the
version word and the SYSTEM_RESET2 reset types. PSCI calls are fast calls of
the standard secure service owner (4); their names are in
`smccc.STANDARD_SECURE_CALLS`. Nothing here knows who serves them: that is
`model.psci`."""

from __future__ import annotations

from .bitfield import Bitfield, Field, flag
from .smccc import OWNER_STANDARD, STANDARD_SECURE_CALLS, fast32, fast64, to_signed

# Function numbers (bits 15:0 of the ID), by the names the one table of the
# standard service's calls gives them (smccc.STANDARD_SECURE_CALLS)
_NUMBER = {name: number for number, name in STANDARD_SECURE_CALLS.items()}
VERSION = _NUMBER["PSCI_VERSION"]
CPU_SUSPEND = _NUMBER["PSCI_CPU_SUSPEND"]
CPU_OFF = _NUMBER["PSCI_CPU_OFF"]
CPU_ON = _NUMBER["PSCI_CPU_ON"]
AFFINITY_INFO = _NUMBER["PSCI_AFFINITY_INFO"]
MIGRATE = _NUMBER["PSCI_MIGRATE"]
MIGRATE_INFO_TYPE = _NUMBER["PSCI_MIGRATE_INFO_TYPE"]
MIGRATE_INFO_UP_CPU = _NUMBER["PSCI_MIGRATE_INFO_UP_CPU"]
SYSTEM_OFF = _NUMBER["PSCI_SYSTEM_OFF"]
SYSTEM_RESET = _NUMBER["PSCI_SYSTEM_RESET"]
FEATURES = _NUMBER["PSCI_FEATURES"]
CPU_DEFAULT_SUSPEND = _NUMBER["PSCI_CPU_DEFAULT_SUSPEND"]
SYSTEM_SUSPEND = _NUMBER["PSCI_SYSTEM_SUSPEND"]
SET_SUSPEND_MODE = _NUMBER["PSCI_SET_SUSPEND_MODE"]
SYSTEM_RESET2 = _NUMBER["PSCI_SYSTEM_RESET2"]
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
