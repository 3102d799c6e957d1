"""Named hypervisor configurations the model can play.

A persona is data: which UID it gives, what `hypervisor_identify` says, and
which of the Gunyah dispatcher's paths it has. Each names the verdict a
correct guest reaches against it (ABI.md section 5), so a persona is also a
test case for guests.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from . import abi, smccc

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
PERSONAS_BY_NAME = {p.name: p for p in PERSONAS}
DEFAULT_PERSONA = "gunyah"


def get_persona(name: str) -> Persona:
    try:
        return PERSONAS_BY_NAME[name]
    except KeyError:
        known = ", ".join(PERSONAS_BY_NAME)
        raise ValueError(f"unknown persona {name!r}; known personas: {known}") from None
