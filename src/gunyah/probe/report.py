"""What the probe found: evidence, and the verdict it adds up to."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from .views import NodeInfo

VERDICT_GUEST = "gunyah-guest"
VERDICT_HOST = "gunyah-host"
VERDICT_OTHER = "other-hypervisor"
VERDICT_NONE = "no-evidence"
GUNYAH_VERDICTS = (VERDICT_GUEST, VERDICT_HOST)
UNKNOWN = "unknown"  # how a hypervisor the system does not name is listed
# systemd-detect-virt's identifiers (src/basic/virt.c) for the hypervisors the
# probe names, and ours for those it does not know; anything else is vm-other
DETECT_VIRT_IDS = {
    "KVM": "kvm", "pKVM": "pkvm", "GenieZone": "geniezone", "Xen": "xen", "QEMU": "qemu",
    "VMware": "vmware", "VirtualBox": "oracle", "Hyper-V": "microsoft",
    "Amazon EC2 (Nitro/KVM)": "amazon", "Google Compute Engine (KVM)": "google",
    "Parallels": "parallels", "Bochs": "bochs", "kvm": "kvm", "xen": "xen",
}  # fmt: skip


@dataclass(frozen=True)
class Evidence:
    """One thing the probe looked at: where, what it found, what it means."""

    source: str
    status: str  # "found", "absent", "unreadable", "malformed", "info"
    meaning: str
    supports: str | None = None  # the verdict this points to, if any
    value: Any = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass
class Report:
    root: str
    evidence: list[Evidence] = field(default_factory=list)
    read: dict[str, bytes] = field(default_factory=dict)  # what a capture keeps
    unreadable: dict[str, str] = field(default_factory=dict)
    nodes: dict[str, NodeInfo] = field(default_factory=dict)
    api_version: int | None = None
    variant: int | None = None
    other: list[str] = field(default_factory=list)
    x86: bool = False  # an x86 CPU: no Gunyah evidence can be true here
    known: list[dict[str, Any]] = field(default_factory=list)  # triage: known failures seen
    android: dict[str, str] = field(default_factory=dict)  # hypervisor.* properties, short keys
    driver: str | None = None  # Gunyah driver generation: "vendor" (gh_*) or "upstream"
    can_create: list[str] = field(default_factory=list)  # what could create VMs here
    in_the_way: list[str] = field(default_factory=list)  # and what stands in the way
    active: dict[str, Any] | None = None  # what --active answered (active.parse), if it ran

    @property
    def verdict(self) -> str:
        supports = {e.supports for e in self.evidence}
        if not self.x86:
            if VERDICT_HOST in supports:
                return VERDICT_HOST
            if VERDICT_GUEST in supports:
                return VERDICT_GUEST
        if VERDICT_OTHER in supports:
            return VERDICT_OTHER
        return VERDICT_NONE

    @property
    def hypervisors(self) -> list[str]:
        """The hypervisors named, or the unnamed hints where none is."""
        seen = list(dict.fromkeys(self.other))
        named = [n for n in seen if not n.startswith(UNKNOWN)]
        return named or seen

    @property
    def detect_virt(self) -> str:
        """One identifier in systemd-detect-virt's style: gunyah (a Gunyah guest,
        an Android host included: its kernel runs under Gunyah too), kvm, pkvm,
        geniezone, xen, ..., vm-other, or none."""
        v = self.verdict
        if v in GUNYAH_VERDICTS:
            return "gunyah"
        if v == VERDICT_OTHER:
            named = [n for n in self.hypervisors if not n.startswith(UNKNOWN)]
            return DETECT_VIRT_IDS.get(named[0], "vm-other") if named else "vm-other"
        return "none"

    @property
    def summary(self) -> str:
        v = self.verdict
        if v == VERDICT_HOST:
            return "Gunyah is here and this system can create VMs on it (/dev/gunyah)"
        if v == VERDICT_GUEST:
            told = ""
            if self.api_version is not None and self.variant is not None:
                told = f" (the kernel logged variant {self.variant:x}, API v{self.api_version})"
            return f"running as a guest of Gunyah{told}"
        if v == VERDICT_OTHER:
            names = ", ".join(self.hypervisors) or "type not told"
            return f"running under a hypervisor that is not Gunyah: {names}"
        return (
            "no evidence of Gunyah or of any other hypervisor: bare metal, or a "
            "hypervisor that shows nothing to its guests"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": self.root,
            "verdict": self.verdict,
            "detect_virt": self.detect_virt,
            "summary": self.summary,
            "api_version": self.api_version,
            "variant": self.variant,
            "hypervisors": self.hypervisors,
            "known_problems": self.known,
            "android": self.android,
            "driver_generation": self.driver,
            "can_create": self.can_create,
            "in_the_way": self.in_the_way,
            "active": self.active,
            "evidence": [e.to_dict() for e in self.evidence],
        }
