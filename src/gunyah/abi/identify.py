"""hypervisor_identify's result: X0 = API info, X1..X3 = API flags 0..2
(quic/gunyah-hypervisor hyp/interfaces/api/api.tc), and the Linux driver's banner."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import smccc
from ..bitfield import Bitfield, Field, flag

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
# The features API flags 0 names, lowest bit first: the one list of their
# names (a persona's build, a declaration's `feature`, the decoder's output)
FEATURES = tuple(f.name for f in sorted(FLAGS[0].fields.values(), key=lambda f: f.lsb) if f.flag)


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
