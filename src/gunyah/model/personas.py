"""Named hypervisor configurations the model can play.

A persona is data: which UID it gives, what `hypervisor_identify` says, and
which of the Gunyah dispatcher's paths it has. Each names the verdict a
correct guest reaches against it (ABI.md section 5), so a persona is also a
test case for guests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .. import abi, smccc

Dispatch = Literal["gunyah", "kvm", "none"]

FULL_BUILD_FEATURES = (
    "partition-cspace",
    "doorbell",
    "msgqueue",
    "vic",
    "vpm",
    "vcpu",
    "memextent",
    "trace-ctrl",
    "watchdog",
    "virtio-mmio",
    "prng",
    "vcpu-run",
)
SCHEDULER_FPRR = 1


@dataclass(frozen=True)
class Persona:
    name: str
    description: str
    expected_verdict: str
    dispatch: Dispatch = "gunyah"
    uid: tuple[int, int, int, int] | None = abi.KNOWN_UIDS[0].words
    api_info: int = abi.encode_api_info(
        version=abi.API_V1, big_endian=False, is_64bit=True, variant=abi.VARIANT_QUALCOMM
    )
    flags: tuple[int, int, int] = (
        abi.encode_flags0(FULL_BUILD_FEATURES, SCHEDULER_FPRR),
        0,
        0,
    )
    smccc_version: int = smccc.VERSION_1_3
    vendor_smccc: bool = True  # the vendor-hypervisor SMCCC range answers
    native: bool = True  # hvc #0x6000.. answers
    dirty_upper: int = 0  # ORed into bits 63:32 of every 32-bit call's X0..X3
    notes: tuple[str, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "expected_verdict": self.expected_verdict,
            "dispatch": self.dispatch,
            "uid": list(self.uid) if self.uid else None,
            "api_info": self.api_info,
            "flags": list(self.flags),
        }


def _info(**kw: Any) -> int:
    base: dict[str, Any] = {
        "version": abi.API_V1,
        "big_endian": False,
        "is_64bit": True,
        "variant": abi.VARIANT_QUALCOMM,
    }
    base.update(kw)
    return abi.encode_api_info(**base)


PERSONAS: tuple[Persona, ...] = (
    Persona(
        "gunyah",
        "The public Gunyah hypervisor build: standard UUID, API v1, little-endian, "
        "64-bit, variant 0x51, every feature of a full build, fprr scheduler.",
        "supported",
    ),
    Persona(
        "qualcomm",
        "Qualcomm's Gunyah build: the Qualcomm UUID, otherwise as the public build.",
        "supported",
        uid=abi.UIDS_BY_KEY["gunyah-qualcomm"].words,
    ),
    Persona(
        "kvm",
        "KVM/arm64: SMCCC 1.1, KVM's vendor UID and KVM_FEATURES; nothing Gunyah behind it.",
        "not-gunyah",
        dispatch="kvm",
        uid=abi.UIDS_BY_KEY["kvm"].words,
        smccc_version=smccc.VERSION_1_1,
    ),
    Persona(
        "none",
        "No hypervisor service at all: every call returns -1 (NOT_SUPPORTED).",
        "not-gunyah",
        dispatch="none",
        uid=None,
    ),
)
# Hypervisors a guest may meet that test how it handles the unusual and the
# broken; each names the mistake it exposes.
DIRTY_UPPER = 0xDEADBEEF
PERSONAS += (
    Persona(
        "gunyah-variant-h",
        "Variant 0x48 ('H', once \"Haven\"): still Gunyah, still API v1.",
        "supported",
        api_info=_info(variant=abi.VARIANT_GUNYAH),
    ),
    Persona(
        "unknown-variant",
        "A variant nobody defines (0x7a): a guest must show it as unknown, not refuse it.",
        "supported",
        api_info=_info(variant=0x7A),
    ),
    Persona(
        "api-v2",
        "API version 2: a v1 guest must refuse it.",
        "unsupported-api",
        api_info=_info(version=2),
    ),
    Persona(
        "api-version-bit13",
        "API version 0x2001: bit 13 is part of the version in the hypervisor's code, "
        "though the API document's 0x1fff mask would read it as 1.",
        "unsupported-api",
        api_info=_info(version=0x2001),
    ),
    Persona(
        "big-endian",
        "The API is big-endian: a little-endian guest must refuse it.",
        "unsupported-api",
        api_info=_info(big_endian=True),
    ),
    Persona(
        "api-32bit",
        "The API is 32-bit: a 64-bit guest must refuse it.",
        "unsupported-api",
        api_info=_info(is_64bit=False),
    ),
    Persona(
        "dirty-upper",
        f"Every 32-bit call's X0..X3 carry {DIRTY_UPPER:#x} in bits 63:32, which SMCCC "
        "leaves undefined: a guest that does not truncate the UID words fails here.",
        "supported",
        dirty_upper=DIRTY_UPPER,
    ),
    Persona(
        "legacy-uid-order",
        "Answers the UID words of an early Linux patch revision (another word and byte "
        "order): not a Gunyah UID.",
        "not-gunyah",
        uid=abi.LEGACY_GUNYAH_UID_WORDS,
    ),
    Persona(
        "future-flags",
        "Flag bits nobody names yet set in flags 0, 1 and 2: still supported, and every "
        "unknown bit must stay visible.",
        "supported",
        flags=(  # raw bits on purpose: no field of the layouts names them
            abi.encode_flags0(FULL_BUILD_FEATURES, SCHEDULER_FPRR) | 0x0000_0100_0000_1000,
            0x8000_0000_0000_0002,
            0x0000_0000_0000_0001,
        ),
    ),
    Persona(
        "api-reserved-bits",
        "API info bits 55:16, reserved as zero, are set: the fields a guest reads are "
        "unchanged, so it must not refuse.",
        "supported",
        api_info=_info() | 0x00A5_0000_0000_0000,
    ),
    Persona(
        "native-only",
        "The SMCCC vendor-hypervisor range answers -1; only hvc #0x6000 works: an SMCCC "
        "guest cannot identify Gunyah here.",
        "not-gunyah",
        vendor_smccc=False,
    ),
)
PERSONAS_BY_NAME = {p.name: p for p in PERSONAS}
DEFAULT_PERSONA = "gunyah"


def get_persona(name: str) -> Persona:
    try:
        return PERSONAS_BY_NAME[name]
    except KeyError:
        known = ", ".join(PERSONAS_BY_NAME)
        raise ValueError(f"unknown persona {name!r}; known personas: {known}") from None
