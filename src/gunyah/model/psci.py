"""PSCI as the model serves it, and the vCPU power states it acts on.

Two sets, each one table from which both dispatch and PSCI_FEATURES derive,
as the hypervisors register their handlers:

* Gunyah's (quic/gunyah-hypervisor hyp/vm/psci/psci.ev, docs/abi.md section 7):
  PSCI 1.1; SMC64 forms only where PSCI_FUNCTION registers both widths;
  MIGRATE* and the rest unregistered, so they take the dispatcher's default
  (-1); FEATURES answers 0 for SMCCC_VERSION and CPU_SUSPEND's feature word
  is 2 (platform-coordinated, extended StateID: psci_cpu_suspend_32_features).
* KVM's (arch/arm64/kvm/psci.c kvm_psci_1_x_call): PSCI 1.1 with
  MIGRATE_INFO_TYPE, without CPU_DEFAULT_SUSPEND; every answer sets X0..X3,
  a negative code in all 64 bits.

A handler reads its arguments from r[1..3] (already at the call's width) and
writes r[0]; the dispatcher around it decides which registers go back at
which width. Calls that act return an `Action` for whatever runs the vCPUs.
CPU_SUSPEND and CPU_DEFAULT_SUSPEND return at once with SUCCESS, as a wake-up
would: the model has no interrupts to wait for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .. import psci, smccc
from ..conduit import Action

Handler = Callable[["PowerState", list[int], int], Action | None]


def mpidr_of(index: int) -> int:
    """The MPIDR affinity QEMU's virt machine gives vCPU `index` (8 per cluster)."""
    return psci.MPIDR.encode({"aff0": index % 8, "aff1": index // 8})


@dataclass
class PowerState:
    """Which of the VM's vCPUs are on; vCPU 0 starts on, the rest off."""

    cpus: int = 1
    on: list[bool] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not 1 <= self.cpus <= 64:
            raise ValueError(f"a VM has 1 to 64 vCPUs, not {self.cpus}")
        self.on = [i == 0 for i in range(self.cpus)]

    def index(self, mpidr: int) -> int | None:
        target = mpidr & psci.MPIDR_AFFINITY_MASK
        for i in range(self.cpus):
            if mpidr_of(i) == target:
                return i
        return None


def _version(s: PowerState, r: list[int], cpu: int) -> None:
    r[0] = psci.VERSION_1_1


def _suspend(s: PowerState, r: list[int], cpu: int) -> None:
    r[0] = psci.SUCCESS


def _cpu_off(s: PowerState, r: list[int], cpu: int) -> Action:
    s.on[cpu] = False
    return Action("cpu_off", cpu)


def _cpu_on(s: PowerState, r: list[int], cpu: int) -> Action | None:
    target = s.index(r[1])
    if target is None:
        r[0] = psci.INVALID_PARAMETERS
        return None
    if s.on[target]:
        r[0] = psci.ALREADY_ON
        return None
    s.on[target] = True
    r[0] = psci.SUCCESS
    return Action("cpu_on", target, entry=r[2], context=r[3])


def _affinity_info(s: PowerState, r: list[int], cpu: int) -> None:
    target = s.index(r[1])
    if r[2] != 0 or target is None:
        r[0] = psci.INVALID_PARAMETERS
    else:
        r[0] = psci.AFFINITY_ON if s.on[target] else psci.AFFINITY_OFF


MPIDR_HWID_BITMASK = 0xFF00FFFFFF  # arch/arm64/include/asm/cputype.h


def _kvm_affinity_info(s: PowerState, r: list[int], cpu: int) -> None:
    """KVM's AFFINITY_INFO (arch/arm64/kvm/psci.c, kvm_psci_vcpu_affinity_info):
    levels 0..3, ON if any vCPU the affinity names runs, OFF if they all are
    off, INVALID_PARAMETERS for another level or an affinity naming none."""
    target, level = r[1], r[2]
    if target & ~MPIDR_HWID_BITMASK or level > 3:
        r[0] = psci.INVALID_PARAMETERS
        return
    mask = MPIDR_HWID_BITMASK & ~((1 << (level * 8)) - 1)
    target &= mask
    matching = [i for i in range(s.cpus) if mpidr_of(i) & mask == target]
    if not matching:
        r[0] = psci.INVALID_PARAMETERS
    else:
        r[0] = psci.AFFINITY_ON if any(s.on[i] for i in matching) else psci.AFFINITY_OFF


def _kvm_cpu_on(s: PowerState, r: list[int], cpu: int) -> Action | None:
    """KVM's CPU_ON refuses an MPIDR with bits outside the affinity fields."""
    if r[1] & ~MPIDR_HWID_BITMASK:
        r[0] = psci.INVALID_PARAMETERS
        return None
    return _cpu_on(s, r, cpu)


def _migrate_info_type(s: PowerState, r: list[int], cpu: int) -> None:
    r[0] = psci.TOS_MP


# SYSTEM_OFF, SYSTEM_RESET and a valid SYSTEM_RESET2 do not return: the
# registers stay as the guest left them.
def _system_off(s: PowerState, r: list[int], cpu: int) -> Action:
    return Action("system_off", cpu)


def _system_reset(s: PowerState, r: list[int], cpu: int) -> Action:
    return Action("system_reset", cpu)


def _system_reset2(s: PowerState, r: list[int], cpu: int) -> Action | None:
    reset_type = r[1] & smccc.MASK32
    if not psci.RESET_TYPE.get(reset_type, "vendor") and reset_type != psci.RESET_WARM:
        r[0] = psci.INVALID_PARAMETERS
        return None
    return Action("system_reset", cpu, reset_type=reset_type, cookie=r[2])


@dataclass(frozen=True)
class Entry:
    handler: Handler | None  # None: FEATURES itself, answered by the set
    smc64: bool = False  # registered in the SMC64 convention too
    feature_word: int = 0  # what PSCI_FEATURES answers for it


@dataclass(frozen=True)
class PsciSet:
    name: str
    functions: dict[int, Entry]
    whole_id: bool  # FEATURES matches the whole ID (KVM) or its fields (Gunyah)

    def registered(self, function: int, smc64: bool) -> Entry | None:
        entry = self.functions.get(function)
        if entry is None or (smc64 and not entry.smc64):
            return None
        return entry

    def features(self, function_id: int) -> int:
        """PSCI_FEATURES(function_id): a registered call's feature word, 0 for
        SMCCC_VERSION, NOT_SUPPORTED otherwise."""
        if function_id == smccc.SMCCC_VERSION:
            return 0
        f = smccc.FunctionId.decode(function_id & smccc.MASK32)
        if f.owner != smccc.OWNER_STANDARD or not f.fast or not f.valid:
            return psci.NOT_SUPPORTED
        if self.whole_id and function_id != f.canonical:
            return psci.NOT_SUPPORTED
        entry = self.registered(f.function, f.smc64)
        return entry.feature_word if entry is not None else psci.NOT_SUPPORTED


GUNYAH = PsciSet(
    "gunyah",
    {
        psci.VERSION: Entry(_version),
        psci.CPU_SUSPEND: Entry(_suspend, smc64=True, feature_word=2),
        psci.CPU_OFF: Entry(_cpu_off),
        psci.CPU_ON: Entry(_cpu_on, smc64=True),
        psci.AFFINITY_INFO: Entry(_affinity_info, smc64=True),
        psci.SYSTEM_OFF: Entry(_system_off),
        psci.SYSTEM_RESET: Entry(_system_reset),
        psci.FEATURES: Entry(None),
        psci.CPU_DEFAULT_SUSPEND: Entry(_suspend, smc64=True),
        psci.SYSTEM_RESET2: Entry(_system_reset2, smc64=True),
    },
    whole_id=False,
)

KVM = PsciSet(
    "kvm",
    {
        psci.VERSION: Entry(_version),
        psci.CPU_SUSPEND: Entry(_suspend, smc64=True),
        psci.CPU_OFF: Entry(_cpu_off),
        psci.CPU_ON: Entry(_kvm_cpu_on, smc64=True),
        psci.AFFINITY_INFO: Entry(_kvm_affinity_info, smc64=True),
        psci.MIGRATE_INFO_TYPE: Entry(_migrate_info_type),
        psci.SYSTEM_OFF: Entry(_system_off),
        psci.SYSTEM_RESET: Entry(_system_reset),
        psci.FEATURES: Entry(None),
        psci.SYSTEM_RESET2: Entry(_system_reset2, smc64=True),
    },
    whole_id=True,
)

def _set_suspend_mode(s: PowerState, r: list[int], cpu: int) -> None:
    """psci_pc: only platform-coordinated mode (hyp/vm/psci_pc/src/psci_pc.c)."""
    r[0] = psci.SUCCESS if r[1] == psci.MODE_PC else psci.INVALID_PARAMETERS


# The build for QEMU serves PSCI as psci_pc, which also registers
# SET_SUSPEND_MODE (measured: PSCI_FEATURES(0x8400000F) = 0), where
# hyp/vm/psci alone leaves it unregistered (docs/abi.md section 7).
GUNYAH_PC = PsciSet(
    "gunyah-pc",
    {**GUNYAH.functions, psci.SET_SUSPEND_MODE: Entry(_set_suspend_mode)},
    whole_id=False,
)

SETS = {"gunyah": GUNYAH, "gunyah-pc": GUNYAH_PC, "kvm": KVM}


def handler_for(psci_set: PsciSet, function: int, smc64: bool) -> Handler | None:
    """The handler of a PSCI call in this set, None where it is not registered."""
    entry = psci_set.registered(function, smc64)
    if entry is None:
        return None
    if entry.handler is not None:
        return entry.handler

    def features(s: PowerState, r: list[int], cpu: int) -> None:
        r[0] = psci_set.features(r[1] & smccc.MASK32)

    return features
