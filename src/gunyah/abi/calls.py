"""Gunyah's vendor-hypervisor calls: function numbers (class and number), the
services, the native `hvc #0x6000+N` ABI and the hypercall catalogue
(quic/gunyah-hypervisor hyp/interfaces/smccc/smccc.tc, docs/api/gunyah_api.md;
the calls themselves are declared in abi/hvc, see `gunyah.abi.hvc`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import smccc
from ..bitfield import Bitfield, Field
from .hvc import DECLARED

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


HYPERCALLS: dict[int, str] = {n: call.name for n, call in DECLARED.items()}
"""Native call number -> name, from the declarations."""

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


def native_number(imm: int) -> int | None:
    """The native call number an HVC immediate selects, if it selects one."""
    return imm - NATIVE_HVC_BASE if NATIVE_HVC_BASE <= imm <= NATIVE_HVC_LAST else None
