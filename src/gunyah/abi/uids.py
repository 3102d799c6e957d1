"""Known call UIDs (docs/abi.md section 1), and a call UID's four words decoded."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from .. import smccc


# Known call UIDs (docs/abi.md section 1). Words are what W0..W3 carry.
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
        "geniezone",
        "GenieZone",
        uuid.UUID("7e134ed0-3b82-488d-8cee-69c19211dbe7"),
        False,
        "AOSP packages/modules/Virtualization: libhyp hypervisor/geniezone.rs, "
        "GeniezoneHypervisor::UUID",
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
