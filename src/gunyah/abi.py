"""Gunyah's identification ABI as data, each fact declared once.

Sources (see ABI.md beside the project's reference notes):
quic/gunyah-hypervisor hyp/interfaces/smccc/smccc.tc (call classes, UID),
hyp/interfaces/api/api.tc (API info and flags), hyp/core/base/types.tc and
the seed-era Linux include/linux/gunyah.h (errors and their errno).
Decoders keep unknown values visible as numbers; nothing is dropped.
"""

from __future__ import annotations

import errno
import uuid
from dataclasses import dataclass
from importlib import resources
from typing import Any

from . import smccc
from .bitfield import Bitfield, Field, flag

# ---------------------------------------------------------------------------
# Vendor-hypervisor function numbers (smccc.tc: smccc_vendor_hyp_function_id).
VENDOR_HYP_FUNCTION = Bitfield(
    "vendor-hypervisor function", 16, Field("number", 0, 14), Field("call_class", 14, 2)
)
NUMBER_MASK = VENDOR_HYP_FUNCTION["number"].top

CLASS_PLATFORM_CALL = 0b00
CLASS_HYPERCALL = 0b10
CLASS_SERVICE = 0b11
CALL_CLASSES = {
    CLASS_PLATFORM_CALL: "platform-call",
    0b01: "reserved",
    CLASS_HYPERCALL: "hypercall",
    CLASS_SERVICE: "service",
}

SERVICE_CALL_COUNT = 0x3F00
SERVICE_CALL_UID = 0x3F01
SERVICE_REVISION = 0x3F03
SERVICES = {
    SERVICE_CALL_COUNT: "CALL_COUNT",
    SERVICE_CALL_UID: "CALL_UID",
    SERVICE_REVISION: "REVISION",
}

# Native ABI: hvc #0x6000 + call number (docs/api/gunyah_api.md).
NATIVE_HVC_BASE = 0x6000
NATIVE_HVC_LAST = 0x61FF
NATIVE_CALL_COUNT = NATIVE_HVC_LAST - NATIVE_HVC_BASE + 1


def _load_catalogue() -> dict[int, str]:
    text = resources.files(__package__).joinpath("data/hypercalls.tsv").read_text("ascii")
    table: dict[int, str] = {}
    for line in text.splitlines()[1:]:
        if line.strip():
            num, name = line.split("\t")
            table[int(num, 16)] = name
    return table


HYPERCALLS: dict[int, str] = _load_catalogue()
"""Native call number -> name, from the hypervisor's .hvc interface files."""

HYPERCALL_NUMBERS = {name: num for num, name in HYPERCALLS.items()}
HYP_IDENTIFY_NUMBER = HYPERCALL_NUMBERS["hypervisor_identify"]


def vendor_hyp_function(call_class: int, number: int) -> int:
    """The 16-bit function number of a vendor-hypervisor call."""
    return VENDOR_HYP_FUNCTION.encode({"call_class": call_class, "number": number})


def hypercall_id(number: int) -> int:
    """SMCCC ID of native call N: fast, 64-bit, vendor hypervisor, class 0b10."""
    return smccc.fast64(smccc.OWNER_VENDOR_HYP, vendor_hyp_function(CLASS_HYPERCALL, number))


def service_id(number: int) -> int:
    """SMCCC ID of a service: fast, 32-bit, vendor hypervisor, class 0b11."""
    return smccc.fast32(smccc.OWNER_VENDOR_HYP, vendor_hyp_function(CLASS_SERVICE, number))


HYP_IDENTIFY = hypercall_id(HYP_IDENTIFY_NUMBER)  # 0xC6008000
CALL_UID = service_id(SERVICE_CALL_UID)  # 0x8600FF01
REVISION = service_id(SERVICE_REVISION)  # 0x8600FF03


def native_imm(number: int) -> int:
    """The HVC immediate of native call N."""
    if not 0 <= number < NATIVE_CALL_COUNT:
        raise ValueError(f"native call number {number:#x} is outside 0..0x1ff")
    return NATIVE_HVC_BASE + number


@dataclass(frozen=True)
class VendorHypCall:
    """Bits 15:0 of a vendor-hypervisor function ID, Gunyah's reading."""

    call_class: int
    number: int

    @classmethod
    def decode(cls, function: int) -> VendorHypCall:
        f = VENDOR_HYP_FUNCTION.decode(function)
        return cls(int(f["call_class"]), int(f["number"]))

    @property
    def class_name(self) -> str:
        return CALL_CLASSES[self.call_class]

    @property
    def name(self) -> str | None:
        if self.call_class == CLASS_HYPERCALL:
            return HYPERCALLS.get(self.number)
        if self.call_class == CLASS_SERVICE:
            return SERVICES.get(self.number)
        return None

    @property
    def accepted_form(self) -> str | None:
        """The one form Gunyah takes this class in (smccc_hypercalls.c)."""
        return {CLASS_HYPERCALL: "fast 64-bit", CLASS_SERVICE: "fast 32-bit"}.get(self.call_class)

    def accepted(self, fast: bool, smc64: bool) -> bool:
        """Gunyah takes hypercalls only as fast 64-bit, services only as fast 32-bit."""
        if self.call_class == CLASS_HYPERCALL:
            return fast and smc64
        if self.call_class == CLASS_SERVICE:
            return fast and not smc64
        return False

    def to_dict(self) -> dict[str, Any]:
        return {
            "class": {"value": self.call_class, "name": self.class_name},
            "number": self.number,
            "name": self.name,
        }


# ---------------------------------------------------------------------------
# hypervisor_identify: X0 = API info, X1..X3 = API flags 0..2 (api.tc).
API_INFO = Bitfield(
    "API info",
    64,
    Field("api_version", 0, 14),  # the API document's 0x1FFF mask is wrong: the code wins
    flag("big_endian", 14),
    flag("is_64bit", 15),
    Field("reserved", 16, 40, reserved=True),  # bits 55:16, zero
    Field("variant", 56, 8),
)
API_VERSION_DOC_MASK = 0x1FFF  # what docs/api/gunyah_api.md says
API_V1 = 1

VARIANT_UNKNOWN = 0x00
VARIANT_GUNYAH = 0x48
VARIANT_QUALCOMM = 0x51
VARIANTS = {
    VARIANT_UNKNOWN: "unknown",
    VARIANT_GUNYAH: "gunyah",
    VARIANT_QUALCOMM: "qualcomm",
}

# The three flags words (api.tc: api_flags_0, _1, _2); a set bit no field
# names is reported as unknown with its position.
FLAGS = (
    Bitfield(
        "API flags 0",
        64,
        flag("partition-cspace", 0),
        flag("doorbell", 1),
        flag("msgqueue", 2),
        flag("vic", 3),
        flag("vpm", 4),
        flag("vcpu", 5),
        flag("memextent", 6),
        flag("trace-ctrl", 7),
        flag("watchdog", 8),
        flag("virtio-mmio", 9),
        flag("prng", 10),
        flag("vcpu-run", 11),
        # bit 16 is declared reserved_16 in api.tc; nothing says what a set
        # bit 16 would mean, so it is reported as an unknown bit
        Field("scheduler", 28, 4),
    ),
    Bitfield("API flags 1", 64, flag("sve", 0)),
    Bitfield("API flags 2", 64),
)
SCHEDULERS = {0: "trivial", 1: "fprr"}


# The Linux driver's banner: pr_info("Running under Gunyah hypervisor %llx/v%u\n").
BANNER_PREFIX = "Running under Gunyah hypervisor "


def banner(variant: int, api_version: int) -> str:
    return f"{BANNER_PREFIX}{variant:x}/v{api_version}"


def variant_name(value: int) -> str:
    return VARIANTS.get(value, "unknown")


def scheduler_name(value: int) -> str:
    return SCHEDULERS.get(value, "unknown")


def encode_api_info(
    *, version: int, big_endian: bool, is_64bit: bool, variant: int, reserved: int = 0
) -> int:
    """The API info word; `reserved` is bits 55:16 in place."""
    res = API_INFO["reserved"]
    if reserved & ~res.mask:
        raise ValueError(f"reserved bits {reserved:#x} fall outside bits {res.msb}:{res.lsb}")
    return API_INFO.encode({"api_version": version, "big_endian": big_endian,
                            "is_64bit": is_64bit, "variant": variant,
                            "reserved": reserved >> res.lsb})  # fmt: skip


def encode_flags0(features: list[str] | tuple[str, ...], scheduler: int) -> int:
    return FLAGS[0].encode({**dict.fromkeys(features, True), "scheduler": scheduler})


@dataclass(frozen=True)
class FlagBit:
    word: int
    bit: int

    def to_dict(self) -> dict[str, int]:
        return {"flags": self.word, "bit": self.bit}


@dataclass(frozen=True)
class HypIdentify:
    """A decoded hypervisor_identify result; `api_info` and `flags` are raw."""

    api_info: int
    flags: tuple[int, int, int]

    @classmethod
    def decode(cls, x0: int, x1: int = 0, x2: int = 0, x3: int = 0) -> HypIdentify:
        for name, v in (("X0", x0), ("X1", x1), ("X2", x2), ("X3", x3)):
            if not 0 <= v <= smccc.MASK64:
                raise ValueError(f"{name} = {v:#x} does not fit in 64 bits")
        return cls(x0, (x1, x2, x3))

    @property
    def api_version(self) -> int:
        return API_INFO.get(self.api_info, "api_version")

    @property
    def big_endian(self) -> bool:
        return bool(API_INFO.get(self.api_info, "big_endian"))

    @property
    def is_64bit(self) -> bool:
        return bool(API_INFO.get(self.api_info, "is_64bit"))

    @property
    def variant(self) -> int:
        return API_INFO.get(self.api_info, "variant")

    @property
    def reserved_bits(self) -> int:
        """Bits 55:16 of API info (in place), which the hypervisor defines as zero."""
        return API_INFO.reserved_value(self.api_info)

    @property
    def scheduler(self) -> int:
        return FLAGS[0].get(self.flags[0], "scheduler")

    @property
    def features(self) -> list[str]:
        return [name for layout, word in zip(FLAGS, self.flags, strict=True)
                for name in layout.set_flags(word)]  # fmt: skip

    @property
    def unknown_flag_bits(self) -> list[FlagBit]:
        """Set bits no field names (the scheduler field is named)."""
        return [FlagBit(i, bit) for i, (layout, word) in enumerate(zip(FLAGS, self.flags,
                strict=True)) for bit in layout.unknown_bits(word)]  # fmt: skip

    @property
    def linux_banner(self) -> str:
        """The line the Linux driver logs for this result."""
        return banner(self.variant, self.api_version)

    def to_dict(self) -> dict[str, Any]:
        return {
            "api_info": self.api_info,
            "api_version": self.api_version,
            "big_endian": self.big_endian,
            "is_64bit": self.is_64bit,
            "variant": {"value": self.variant, "name": variant_name(self.variant)},
            "reserved_bits": self.reserved_bits,
            "flags": list(self.flags),
            "features": self.features,
            "unknown_flag_bits": [b.to_dict() for b in self.unknown_flag_bits],
            "scheduler": {"value": self.scheduler, "name": scheduler_name(self.scheduler)},
        }


# ---------------------------------------------------------------------------
# Known call UIDs (ABI.md section 1). Words are what W0..W3 carry.
@dataclass(frozen=True)
class KnownUid:
    key: str
    name: str
    uuid: uuid.UUID
    is_gunyah: bool
    source: str

    @property
    def words(self) -> tuple[int, int, int, int]:
        return smccc.uuid_to_uid(self.uuid)


KNOWN_UIDS: tuple[KnownUid, ...] = (
    KnownUid(
        "gunyah",
        "Gunyah (standard build)",
        uuid.UUID("c1d58fcd-a453-5fdb-9265-ce36673d5f14"),
        True,
        "quic/gunyah-hypervisor: hyp/interfaces/smccc/smccc.tc",
    ),
    KnownUid(
        "gunyah-qualcomm",
        "Gunyah (Qualcomm build)",
        uuid.UUID("19bd54bd-0b37-571b-946f-609b54539de6"),
        True,
        "Linux Gunyah guest driver, gh_known_uuids",
    ),
    KnownUid(
        "kvm",
        "KVM",
        uuid.UUID("28b46fb6-2ec5-11e9-a9ca-4b564d003a74"),
        False,
        "include/linux/arm-smccc.h: ARM_SMCCC_VENDOR_HYP_UID_KVM",
    ),
    KnownUid(
        "xen",
        "Xen",
        uuid.UUID("a71812dc-c698-4369-9acf-79d18ddee667"),
        False,
        "xen/include/public/arch-arm/smccc.h: XEN_SMCCC_UID",
    ),
)
UIDS_BY_UUID = {k.uuid: k for k in KNOWN_UIDS}
UIDS_BY_KEY = {k.key: k for k in KNOWN_UIDS}
GUNYAH_UUIDS = frozenset(k.uuid for k in KNOWN_UIDS if k.is_gunyah)

# The UID words of one early revision of the Linux patches: another word and
# byte order, so a guest that compares against them never recognises Gunyah.
LEGACY_GUNYAH_UID_WORDS = (0x673D5F14, 0x9265CE36, 0xA4535FDB, 0xC1D58FCD)


@dataclass(frozen=True)
class CallUid:
    """A decoded call UID: the four 32-bit words and what they name."""

    words: tuple[int, int, int, int]

    @classmethod
    def decode(cls, w0: int, w1: int, w2: int, w3: int) -> CallUid:
        words = (w0, w1, w2, w3)
        for i, w in enumerate(words):
            if not 0 <= w <= smccc.MASK32:
                raise ValueError(f"W{i} = {w:#x} does not fit in 32 bits")
        return cls(words)

    @property
    def not_supported(self) -> bool:
        return smccc.uid_is_unknown(self.words)

    @property
    def uuid(self) -> uuid.UUID:
        return smccc.uid_to_uuid(self.words)

    @property
    def known(self) -> KnownUid | None:
        return None if self.not_supported else UIDS_BY_UUID.get(self.uuid)

    @property
    def is_gunyah(self) -> bool:
        return not self.not_supported and self.uuid in GUNYAH_UUIDS

    @property
    def hypervisor(self) -> str:
        if self.not_supported:
            return "none (CALL_UID not supported)"
        known = self.known
        return known.name if known else "unknown"

    def to_dict(self) -> dict[str, Any]:
        return {
            "words": list(self.words),
            "uuid": None if self.not_supported else str(self.uuid),
            "hypervisor": self.hypervisor,
        }


# ---------------------------------------------------------------------------
# Gunyah error codes (hyp/core/base/types.tc) and the Linux errno the
# seed-era gh_remap_error() gives each (ABI.md section 4).
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


def native_number(imm: int) -> int | None:
    """The native call number an HVC immediate selects, if it selects one."""
    return imm - NATIVE_HVC_BASE if NATIVE_HVC_BASE <= imm <= NATIVE_HVC_LAST else None


def describe_function_id(value: int) -> dict[str, Any]:
    """Everything known about a function ID, SMCCC fields plus Gunyah's reading."""
    fid = smccc.FunctionId.decode(value)
    out = smccc.function_id_dict(fid)
    name = smccc.generic_name(fid)
    if fid.owner == smccc.OWNER_VENDOR_HYP:
        # vendor-specific: each hypervisor's reading, Gunyah's first
        call = VendorHypCall.decode(fid.function)
        out["gunyah"] = {
            **call.to_dict(),
            "accepted": call.accepted(fid.fast, fid.smc64),
            "accepted_form": call.accepted_form,
        }
        kvm = smccc.KVM_VENDOR_CALLS.get(fid.function)
        out["kvm"] = kvm
        if name is None and call.name is not None:
            name = call.name
        elif name is None and kvm is not None:
            name = kvm
    out["name"] = name
    return out


def describe_results(function_id: int | None, imm: int, results: list[int]) -> dict[str, Any]:
    """What X0..X3 (already at the call's width) say, for the calls whose results
    this ABI defines: a call UID query, and hypervisor_identify by either path."""
    out: dict[str, Any] = {}
    if function_id is None:
        number = native_number(imm)
        if number == HYP_IDENTIFY_NUMBER and results[0] != smccc.MASK64:
            out["identify"] = HypIdentify.decode(*results[:4]).to_dict()
        return out
    fid = smccc.FunctionId.decode(function_id)
    if fid.function == smccc.FUNC_CALL_UID and not fid.smc64:
        if not smccc.uid_is_unknown(results) and all(r <= smccc.MASK32 for r in results[:4]):
            out["uid"] = CallUid.decode(*results[:4]).to_dict()
    elif fid.owner == smccc.OWNER_VENDOR_HYP and fid.fast and fid.smc64:
        call = VendorHypCall.decode(fid.function)
        if call.name == "hypervisor_identify" and results[0] != smccc.MASK64:
            out["identify"] = HypIdentify.decode(*results[:4]).to_dict()
    return out
