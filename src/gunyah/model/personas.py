"""Named hypervisor configurations the model can play.

A persona is data: the services its VM has (by the names they register in
model.services), the quirks of how it answers, which UID it gives and what
`hypervisor_identify` says. Each names the verdict a correct guest reaches
against it (docs/abi.md section 5), so a persona is also a test case for
guests. Adding one is one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .. import abi, smccc
from ..abi.identify import FEATURES as API_FLAGS0_FEATURES
from .services import check_services

Dispatch = Literal["gunyah", "kvm", "none"]

# The services of a Gunyah build as the public sources describe it, of the
# QEMU build as measured (PSCI as psci_pc, with TRNG), and of KVM
GUNYAH_SERVICES = ("arch", "std-hyp", "vendor-hyp", "psci")
QEMU_BUILD_SERVICES = ("arch", "std-hyp", "vendor-hyp", "psci-pc", "trng")
KVM_SERVICES = ("arch-kvm", "kvm", "psci-kvm")

FULL_BUILD_FEATURES = API_FLAGS0_FEATURES  # every feature API flags 0 names
QEMU_BUILD_FEATURES = tuple(f for f in FULL_BUILD_FEATURES if f != "watchdog")
SCHEDULER_FPRR = 1
# What the debug build's trace_update_class_flags(0, 0) reads back: the classes
# set at boot (hyp/misc/trace_standard/src/trace.c, log.c, memdb_gpt, psci,
# vgic: ERROR, DEBUG, USER, LOG_BUFFER, INFO, MEMDB, PSCI, VGIC, VGIC_DEBUG).
# Derived from the source, not measured.
DEBUG_TRACE_FLAGS = 0x700E7
# TRNG_GET_UUID of QEMU's TRNG through the QEMU build (measured;
# docs/real-gunyah.md section 5, TRNG)
QEMU_TRNG_UUID = (0x45546E21, 0x92A1433D, 0xA2EA5FE2, 0x16397D4E)
# KVM_FEATURES bitmaps (include/linux/arm-smccc.h, ARM_SMCCC_KVM_FUNC_*): KVM
# offers the call itself; pKVM's protected guests also HYP_MEMINFO, MEM_SHARE
# and MEM_UNSHARE (arch/arm64/kvm/hyp/nvhe/pkvm.c, kvm_handle_pvm_hvc64)
KVM_FEATURES_ONLY = 1 << smccc.FUNC_KVM_FEATURES
PKVM_FEATURES = KVM_FEATURES_ONLY | 1 << 2 | 1 << 3 | 1 << 4


@dataclass(frozen=True)
class Persona:
    name: str
    description: str
    expected_verdict: str
    services: tuple[str, ...] = GUNYAH_SERVICES
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
    # quirks
    native: bool = True  # hvc #0x6000.. answers (the native table)
    rm: bool = True  # the VM has queues to a resource manager (model.rm_vm)
    # KVM's way with SMCCC: any HVC immediate is an SMCCC call (handle_hvc in
    # Linux arch/arm64/kvm/handle_exit.c; an SMC with one answers -1), reserved
    # ID bits are not checked, an unknown call answers X0..X3 = -1, 0, 0, 0
    kvm_smccc: bool = False
    dirty_upper: int = 0  # ORed into bits 63:32 of every 32-bit call's X0..X3
    # a secondary VM's power-off never reaches the RM: no VM_EXITED, vcpu_run's
    # exited bit stays 0 (the real one's race, docs/real-gunyah.md section 14)
    loses_vm_exited: bool = False
    notes: tuple[str, ...] = field(default=())
    trng_uuid: tuple[int, int, int, int] | None = None  # TRNG served, with this UUID
    cores: int = 8  # physical CPUs the hypervisor runs on (vcpu_set_affinity)
    trace_flags: int = DEBUG_TRACE_FLAGS
    # KVM-style dispatch: the vendor calls KVM_FEATURES lists (bit N for function
    # N; None: no KVM_FEATURES at all)
    kvm_features: int | None = KVM_FEATURES_ONLY
    # the real hypervisor it stands for, and where its facts come from
    build: str = "the gunyah persona with the one fact above changed, to test guests"

    def __post_init__(self) -> None:
        check_services(self.services)  # each registered, no two answering one call

    @property
    def dispatch(self) -> Dispatch:
        """Whose dispatcher this is, in a word: Gunyah's, KVM's, or none at all."""
        if not self.services and not self.native:
            return "none"
        return "kvm" if self.kvm_smccc else "gunyah"

    @property
    def resource_manager(self) -> str | None:
        """How the persona's VM reaches a resource manager, or None (no queues)."""
        if not self.rm:
            return None
        return "VMID 3, queues cap 0/1; answers at once, raises the queues' interrupts"

    @property
    def features(self) -> frozenset[str]:
        """The features API flags 0 says the build has (native calls follow them)."""
        return frozenset(abi.HypIdentify.decode(self.api_info, *self.flags).features)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "expected_verdict": self.expected_verdict,
            "dispatch": self.dispatch,
            "uid": list(self.uid) if self.uid else None,
            "api_info": self.api_info,
            "flags": list(self.flags),
            "build": self.build,
            "resource_manager": self.resource_manager,
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


# KVM and the hypervisors like it: its services and SMCCC ways, no native
# calls, no resource manager
KVM_QUIRKS: dict[str, Any] = {
    "services": KVM_SERVICES, "kvm_smccc": True, "native": False, "rm": False,
}  # fmt: skip

# The open-source build for QEMU, as measured: its flags, services and TRNG
QEMU_BUILD: dict[str, Any] = {
    "flags": (abi.encode_flags0(QEMU_BUILD_FEATURES, SCHEDULER_FPRR), 0, 0),
    "services": QEMU_BUILD_SERVICES, "trng_uuid": QEMU_TRNG_UUID,
}  # fmt: skip

PERSONAS: tuple[Persona, ...] = (
    Persona(
        "gunyah",
        "The public Gunyah hypervisor build: standard UUID, API v1, little-endian, "
        "64-bit, variant 0x51, every feature of a full build, fprr scheduler.",
        "supported",
        build="Gunyah as its public sources describe it (quic/gunyah-hypervisor, docs/abi.md): a "
        "full feature set with the watchdog, PSCI as hyp/vm/psci; its native calls "
        "dispatched as the measured QEMU build dispatches them",
    ),
    Persona(
        "gunyah-qemu",
        "The open-source Gunyah hypervisor as built for QEMU (featureset gunyah-rm-qemu, "
        "debug), measured: no watchdog (flags 0x10000eff), PSCI as psci_pc, TRNG, the "
        "primary VM's capabilities to its resource manager.",
        "supported",
        **QEMU_BUILD,
        build="quic/gunyah-hypervisor 36ca3a2 with its resource manager bf31a9a, "
        "platform=qemu featureset=gunyah-rm-qemu quality=debug, booted in QEMU and measured "
        "call by call",
    ),
    Persona(
        "gunyah-qemu-lost-exit",
        "gunyah-qemu with the real one's lost VM_EXITED made certain: a secondary VM's "
        "power-off never reaches the resource manager, so a VMM that waits for VM_EXITED "
        "waits for ever and must recover with a forced VM_STOP.",
        "supported",
        **QEMU_BUILD,
        loses_vm_exited=True,
        build="gunyah-qemu with the race in vcpu_poweroff (docs/real-gunyah.md section 14) "
        "lost every time, to test a VMM's recovery",
    ),
    Persona(
        "qualcomm",
        "Qualcomm's Gunyah build: the Qualcomm UUID, otherwise as the public build.",
        "supported",
        uid=abi.UIDS_BY_KEY["gunyah-qualcomm"].words,
        build="a Qualcomm build as the seed's v8 driver knows it (its UID list); not measured",
    ),
    Persona(
        "kvm",
        "KVM/arm64: SMCCC 1.1, KVM's vendor UID and KVM_FEATURES; nothing Gunyah behind it. "
        "HVC's immediate is ignored (hvc #0x6000 is an SMCCC call); SMC's must be 0.",
        "not-gunyah",
        **KVM_QUIRKS,
        uid=abi.UIDS_BY_KEY["kvm"].words,
        smccc_version=smccc.VERSION_1_1,
        build="KVM/arm64 for the calls a guest makes at boot (Linux arch/arm64/kvm, "
        "include/linux/arm-smccc.h)",
    ),
    Persona(
        "pkvm",
        "pKVM as its protected guests see it: KVM's UID, SMCCC 1.1, KVM_FEATURES listing "
        "HYP_MEMINFO (answered: 4 KiB), MEM_SHARE and MEM_UNSHARE (not carried out here: -1).",
        "not-gunyah",
        **KVM_QUIRKS,
        uid=abi.UIDS_BY_KEY["kvm"].words,
        smccc_version=smccc.VERSION_1_1,
        kvm_features=PKVM_FEATURES,
        build="protected KVM's guest interface (Linux arch/arm64/kvm/hyp/nvhe/pkvm.c, "
        "kvm_handle_pvm_hvc64); not measured",
    ),
    Persona(
        "geniezone",
        "MediaTek's GenieZone as a guest identifies it: its vendor UID; its own guest "
        "calls (MEM_SHARE, the MMIO guard) are not modelled and answer -1.",
        "not-gunyah",
        **KVM_QUIRKS,
        uid=abi.UIDS_BY_KEY["geniezone"].words,
        smccc_version=smccc.VERSION_1_1,
        kvm_features=None,
        build="GenieZone's UID as Android's pvmfw checks it (AOSP "
        "packages/modules/Virtualization, libhyp geniezone.rs); the rest (SMCCC 1.1, PSCI) "
        "assumed, not measured",
    ),
    Persona(
        "xen",
        "Xen on Arm: its own vendor UID over SMCCC 1.1, PSCI; no Gunyah, no KVM calls.",
        "not-gunyah",
        **KVM_QUIRKS,
        uid=abi.UIDS_BY_KEY["xen"].words,
        smccc_version=smccc.VERSION_1_1,
        kvm_features=None,
        build="Xen's SMCCC handler (xen/arch/arm/vsmc.c answers the vendor CALL_UID with "
        "XEN_SMCCC_UID, whatever Linux's Xen guests do with it); not measured",
    ),
    Persona(
        "none",
        "No hypervisor service at all: every call returns -1 (NOT_SUPPORTED).",
        "not-gunyah",
        services=(),
        native=False,
        rm=False,
        uid=None,
        build="no hypervisor service",
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
        services=tuple(s for s in GUNYAH_SERVICES if s != "vendor-hyp"),
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
