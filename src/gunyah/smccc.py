"""The Arm SMC Calling Convention (DEN0028) as a pure codec.

Function identifiers, owners, standard return codes, the well-known IDs and
the call-UID <-> UUID rule. Nothing here knows about Gunyah: that is `abi`.
"""

from __future__ import annotations

import struct
import uuid
from dataclasses import dataclass
from typing import Any

from .bitfield import Bitfield, Field, flag

MASK32 = 0xFFFF_FFFF
MASK64 = 0xFFFF_FFFF_FFFF_FFFF

# A function ID (DEN0028 section 2.5; include/linux/arm-smccc.h ARM_SMCCC_*_SHIFT).
FUNCTION_ID = Bitfield(
    "function ID",
    32,
    Field("function", 0, 16),
    flag("sve_hint", 16),  # SMCCC 1.3: no live SVE state; does not change the call
    Field("res0", 17, 7, reserved=True),  # must be zero; a call with any set is unknown
    Field("owner", 24, 6),
    flag("smc64", 30),  # the SMC64/HVC64 convention
    flag("fast", 31),  # a fast call; yielding otherwise
)
OWNER_MASK = FUNCTION_ID["owner"].top

# Owner numbers (bits 29:24).
OWNER_ARCH = 0
OWNER_CPU = 1
OWNER_SIP = 2
OWNER_OEM = 3
OWNER_STANDARD = 4
OWNER_STANDARD_HYP = 5
OWNER_VENDOR_HYP = 6
OWNER_TRUSTED_APP = 48
OWNER_TRUSTED_APP_END = 49
OWNER_TRUSTED_OS = 50
OWNER_TRUSTED_OS_END = 63

_OWNER_NAMES = {
    OWNER_ARCH: "arm-architecture",
    OWNER_CPU: "cpu-service",
    OWNER_SIP: "sip-service",
    OWNER_OEM: "oem-service",
    OWNER_STANDARD: "standard-secure-service",
    OWNER_STANDARD_HYP: "standard-hypervisor-service",
    OWNER_VENDOR_HYP: "vendor-hypervisor-service",
}


def owner_name(owner: int) -> str:
    """Name of an owner number; every value 0..63 has one (ranges included)."""
    if owner in _OWNER_NAMES:
        return _OWNER_NAMES[owner]
    if OWNER_TRUSTED_APP <= owner <= OWNER_TRUSTED_APP_END:
        return "trusted-application"
    if OWNER_TRUSTED_OS <= owner <= OWNER_TRUSTED_OS_END:
        return "trusted-os"
    if 0 <= owner <= OWNER_MASK:
        return "reserved"
    raise ValueError(f"owner {owner} is outside 0..63")


# Standard return codes (DEN0028 "return codes"; arm-smccc.h SMCCC_RET_*).
RET_SUCCESS = 0
RET_NOT_SUPPORTED = -1
RET_NOT_REQUIRED = -2
RET_INVALID_PARAMETER = -3
RETURN_CODES = {
    RET_SUCCESS: "SUCCESS",
    RET_NOT_SUPPORTED: "NOT_SUPPORTED",
    RET_NOT_REQUIRED: "NOT_REQUIRED",
    RET_INVALID_PARAMETER: "INVALID_PARAMETER",
}

# SMCCC_VERSION answers: major in bits 30:16, minor in 15:0 (bit 31 zero: a
# negative answer is an error code).
VERSION = Bitfield("SMCCC version", 32, Field("minor", 0, 16), Field("major", 16, 15))


def smccc_version(major: int, minor: int) -> int:
    return VERSION.encode({"major": major, "minor": minor})


VERSION_1_0 = smccc_version(1, 0)
VERSION_1_1 = smccc_version(1, 1)
VERSION_1_2 = smccc_version(1, 2)
VERSION_1_3 = smccc_version(1, 3)


def to_signed(value: int, bits: int) -> int:
    """Two's-complement reading of a register value of the given width."""
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def return_code_name(value: int, bits: int = 64) -> str | None:
    """The standard return code a register value spells, if any."""
    return RETURN_CODES.get(to_signed(value, bits))


def make_function_id(
    *, fast: bool, smc64: bool, owner: int, function: int, sve_hint: bool = False
) -> int:
    """Encode a function ID; out-of-range fields are refused, never masked."""
    return FUNCTION_ID.encode(
        {"fast": fast, "smc64": smc64, "owner": owner, "function": function, "sve_hint": sve_hint}
    )


def fast32(owner: int, function: int) -> int:
    """A fast call's ID in the SMC32/HVC32 convention."""
    return make_function_id(fast=True, smc64=False, owner=owner, function=function)


def fast64(owner: int, function: int) -> int:
    """A fast call's ID in the SMC64/HVC64 convention."""
    return make_function_id(fast=True, smc64=True, owner=owner, function=function)


@dataclass(frozen=True)
class FunctionId:
    """A decoded 32-bit SMCCC function ID; `raw` keeps every bit."""

    raw: int
    fast: bool
    smc64: bool
    owner: int
    res0: int
    sve_hint: bool
    function: int

    @classmethod
    def decode(cls, value: int) -> FunctionId:
        if not 0 <= value <= MASK32:
            raise ValueError(f"function ID {value:#x} does not fit in 32 bits")
        return cls(raw=value, **FUNCTION_ID.decode(value))  # type: ignore[arg-type]

    def encode(self) -> int:
        fields = {n: getattr(self, n) for n in FUNCTION_ID.fields}
        return FUNCTION_ID.encode(fields)

    @property
    def valid(self) -> bool:
        """Bits 23:17 must be zero; a call with any set is unknown (-1)."""
        return self.res0 == 0

    @property
    def owner_name(self) -> str:
        return owner_name(self.owner)

    @property
    def canonical(self) -> int:
        """The ID with the SVE hint cleared: the hint does not change the call."""
        return self.raw & ~FUNCTION_ID["sve_hint"].mask

    @property
    def width(self) -> int:
        return 64 if self.smc64 else 32


# Well-known calls, keyed by (owner, function number). Names follow the
# specifications: DEN0028 (Arm architecture calls and the general service
# queries at 0xff00..0xff03), DEN0022 (PSCI, include/uapi/linux/psci.h),
# DEN0098 (TRNG), DEN0057 (PV time), and KVM's vendor calls (arm-smccc.h).
FUNC_CALL_COUNT = 0xFF00
FUNC_CALL_UID = 0xFF01
FUNC_REVISION = 0xFF03
GENERAL_QUERIES = {
    FUNC_CALL_COUNT: "CALL_COUNT",
    FUNC_CALL_UID: "CALL_UID",
    FUNC_REVISION: "REVISION",
}

ARCH_CALLS = {
    0x0000: "SMCCC_VERSION",
    0x0001: "SMCCC_ARCH_FEATURES",
    0x0002: "SMCCC_ARCH_SOC_ID",
    0x3FFF: "SMCCC_ARCH_WORKAROUND_3",
    0x7FFF: "SMCCC_ARCH_WORKAROUND_2",
    0x8000: "SMCCC_ARCH_WORKAROUND_1",
}

# The standard secure service's calls, the one table of their numbers
# (include/uapi/linux/psci.h PSCI_0_2_FN_*, PSCI_1_0_FN_*, PSCI_1_1_FN_*;
# include/linux/arm-smccc.h ARM_SMCCC_TRNG_*): `psci` and `model.trng` read them here.
STANDARD_SECURE_CALLS = {
    0x0000: "PSCI_VERSION",
    0x0001: "PSCI_CPU_SUSPEND",
    0x0002: "PSCI_CPU_OFF",
    0x0003: "PSCI_CPU_ON",
    0x0004: "PSCI_AFFINITY_INFO",
    0x0005: "PSCI_MIGRATE",
    0x0006: "PSCI_MIGRATE_INFO_TYPE",
    0x0007: "PSCI_MIGRATE_INFO_UP_CPU",
    0x0008: "PSCI_SYSTEM_OFF",
    0x0009: "PSCI_SYSTEM_RESET",
    0x000A: "PSCI_FEATURES",
    0x000B: "PSCI_CPU_FREEZE",
    0x000C: "PSCI_CPU_DEFAULT_SUSPEND",
    0x000D: "PSCI_NODE_HW_STATE",
    0x000E: "PSCI_SYSTEM_SUSPEND",
    0x000F: "PSCI_SET_SUSPEND_MODE",
    0x0010: "PSCI_STAT_RESIDENCY",
    0x0011: "PSCI_STAT_COUNT",
    0x0012: "PSCI_SYSTEM_RESET2",
    0x0013: "PSCI_MEM_PROTECT",
    0x0014: "PSCI_MEM_PROTECT_CHECK_RANGE",
    0x0050: "TRNG_VERSION",
    0x0051: "TRNG_FEATURES",
    0x0052: "TRNG_GET_UUID",
    0x0053: "TRNG_RND",
}

STANDARD_HYP_CALLS = {
    0x0020: "PV_TIME_FEATURES",
    0x0021: "PV_TIME_ST",
}

WELL_KNOWN: dict[int, dict[int, str]] = {
    OWNER_ARCH: ARCH_CALLS,
    OWNER_STANDARD: STANDARD_SECURE_CALLS,
    OWNER_STANDARD_HYP: STANDARD_HYP_CALLS,
}

# The IDs every identification path meets (docs/abi.md section 1), each built
# once from its fields; a test holds each to the value its source spells.
FUNC_SMCCC_VERSION = 0x0000
FUNC_ARCH_FEATURES = 0x0001
FUNC_KVM_FEATURES = 0x0000  # ARM_SMCCC_KVM_FUNC_FEATURES
SMCCC_VERSION = fast32(OWNER_ARCH, FUNC_SMCCC_VERSION)
SMCCC_ARCH_FEATURES = fast32(OWNER_ARCH, FUNC_ARCH_FEATURES)
SMCCC_ARCH_SOC_ID = fast32(OWNER_ARCH, 0x0002)
VENDOR_HYP_CALL_COUNT = fast32(OWNER_VENDOR_HYP, FUNC_CALL_COUNT)
VENDOR_HYP_CALL_UID = fast32(OWNER_VENDOR_HYP, FUNC_CALL_UID)
VENDOR_HYP_REVISION = fast32(OWNER_VENDOR_HYP, FUNC_REVISION)
STANDARD_HYP_CALL_UID = fast32(OWNER_STANDARD_HYP, FUNC_CALL_UID)
STANDARD_HYP_REVISION = fast32(OWNER_STANDARD_HYP, FUNC_REVISION)
KVM_FEATURES = fast32(OWNER_VENDOR_HYP, FUNC_KVM_FEATURES)


# Short owner prefixes for the general queries' names (VENDOR_HYP_CALL_UID ...),
# as Linux spells them (ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID).
_QUERY_PREFIX = {
    OWNER_ARCH: "ARCH",
    OWNER_CPU: "CPU",
    OWNER_SIP: "SIP",
    OWNER_OEM: "OEM",
    OWNER_STANDARD: "STD",
    OWNER_STANDARD_HYP: "STD_HYP",
    OWNER_VENDOR_HYP: "VENDOR_HYP",
}

# KVM's vendor-hypervisor calls (include/linux/arm-smccc.h, ARM_SMCCC_KVM_FUNC_*).
# Vendor-specific: the same numbers mean something else to another hypervisor.
KVM_VENDOR_CALLS = {
    0: "KVM_FEATURES",
    1: "KVM_PTP",
    2: "KVM_HYP_MEMINFO",
    3: "KVM_MEM_SHARE",
    4: "KVM_MEM_UNSHARE",
    127: "KVM_FEATURES_2",
}


def generic_name(fid: FunctionId) -> str | None:
    """The name SMCCC (not any one vendor) gives this call, if it gives one.

    Every call these tables name is a fast call; the Arm architecture calls and
    the general queries exist only in the 32-bit convention."""
    if not fid.fast:
        return None
    if fid.function in GENERAL_QUERIES and not fid.smc64:
        prefix = _QUERY_PREFIX.get(fid.owner, fid.owner_name.upper().replace("-", "_"))
        return f"{prefix}_{GENERAL_QUERIES[fid.function]}"
    if fid.owner == OWNER_ARCH and fid.smc64:
        return None
    table = WELL_KNOWN.get(fid.owner)
    if table is not None and fid.function in table:
        return table[fid.function]
    return None


# Call UID <-> UUID (docs/abi.md section 1): the 16 UUID bytes are the
# little-endian bytes of W0, W1, W2, W3 in that order.
def uid_to_uuid(words: tuple[int, int, int, int] | list[int]) -> uuid.UUID:
    if len(words) != 4:
        raise ValueError(f"a call UID is 4 words, got {len(words)}")
    for w in words:
        if not 0 <= w <= MASK32:
            raise ValueError(f"UID word {w:#x} does not fit in 32 bits")
    return uuid.UUID(bytes=struct.pack("<4I", *words))


def uuid_to_uid(value: uuid.UUID | str) -> tuple[int, int, int, int]:
    u = value if isinstance(value, uuid.UUID) else uuid.UUID(value)
    w0, w1, w2, w3 = struct.unpack("<4I", u.bytes)
    return (w0, w1, w2, w3)


def uid_is_unknown(words: tuple[int, ...] | list[int]) -> bool:
    """SMCCC: W0 = 0xffffffff means 'no UID' (NOT_SUPPORTED)."""
    return (words[0] & MASK32) == MASK32


def function_id_dict(fid: FunctionId) -> dict[str, Any]:
    """The SMCCC fields of a function ID as JSON-ready values."""
    return {
        "value": fid.raw,
        "fast": fid.fast,
        "smc64": fid.smc64,
        "owner": {"value": fid.owner, "name": fid.owner_name},
        "sve_hint": fid.sve_hint,
        "res0": fid.res0,
        "valid": fid.valid,
        "function": fid.function,
    }
