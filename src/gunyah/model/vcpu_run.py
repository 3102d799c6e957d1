"""vcpu_run: the owner of a secondary VM runs its vCPU (proxy scheduling).

The hypercall (native `hvc #0x6065`, x0 the vCPU's cap, x1..x3 the resume
data) runs the vCPU on the caller's CPU until it blocks, and says why in a
state and three data words (quic/gunyah-hypervisor: hyp/vm/vcpu_run/src/
vcpu_run.c; docs/real-gunyah.md section 13). `SecondaryVcpu.run` is that call
once the capability lookup has found the vCPU: it returns (error, state,
data0, data1, data2), which the native table puts in x0, x1, x2..x4.

The guest itself runs on a backend (`VcpuBackend`: the unicorn engine, or
in `gunyah boot` the CPU itself, entered by the EL2 shim's world switch:
boot/world.py, docs/boot.md section 12) that stops where the hardware would
trap to EL2 and hands over the syndrome (`model.vmmio.Syndrome`). What the model does with it is
the hypervisor's (docs/real-gunyah.md section 17 gathers what the sources
decide beyond the measured table):

* a data abort with a valid ISS wholly inside the VM's VMMIO window blocks
  the vCPU: state 4 (read) or 5 (write), data = IPA, size, the stored value
  (addrspace/aarch64/src/vmmio.c); the next call's resume_data_0 is a read's
  value (`vmmio.Access.loaded`), and the access counts as emulated: the PC
  steps past it;
* any other abort (ISV clear, outside the window and the VM's memory,
  straddling the window's end) is injected into the guest as a synchronous
  external abort at its VBAR_EL1 (vcpu/aarch64/src/exception_inject.c); the
  debug build that was measured (docs/real-gunyah.md section 1) instead
  halts the vCPU with a fault when the abort comes from its own EL1h
  synchronous vector, as a guest without vectors does at once: state 6;
* HVC and SMC are the VM's own hypervisor calls (`hypervisor_identify`,
  PSCI) served by a trap handler; SYSTEM_OFF powers the VM off (state 2,
  data0 the exited bit), SYSTEM_RESET and SYSTEM_RESET2 give state 0x100
  with the reset type (bit 63 for SYSTEM_RESET, bit 62 for the 64-bit
  RESET2) and cookie (psci/src/psci_common.c);
* WFI blocks it: state 1, data (0, 1: woken from WFI) (vcpu/aarch64/src/
  wfi.c) until `wake` is called;
* an instruction budget without a trap, or `max_traps` traps served without
  one that blocks, ends the call in state 0 (ready), as a host interrupt
  ends the real one.

The vCPU's powered-off state before its VM starts: error 0, state 2, data 0.
After the VM's end, every call: state 2, data0 = 1 (exited).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from .. import smccc
from ..abi.devicetree import PRIMARY_VM_ID
from ..conduit import NUM_REGS, Action, Kind, TrapHandler
from . import vmmio
from .vgic import ICC_ASGI1R_EL1, ICC_SGI0R_EL1, ICC_SGI1R_EL1, VGic
from .vmmio import Syndrome

if TYPE_CHECKING:
    from .vms import Vm

# vcpu_run_state (hyp/interfaces/vcpu_run/vcpu_run.tc; 4 and 5 from
# hyp/mem/addrspace/aarch64/addrspace.tc; 0x100 from hyp/interfaces/psci/psci.tc)
READY = 0
EXPECTS_WAKEUP = 1
POWERED_OFF = 2
BLOCKED = 3
VMMIO_READ = 4
VMMIO_WRITE = 5
FAULT = 6
PSCI_SYSTEM_RESET = 0x100
STATES = {
    READY: "ready", EXPECTS_WAKEUP: "expects_wakeup", POWERED_OFF: "powered_off",
    BLOCKED: "blocked", VMMIO_READ: "addrspace_vmmio_read",
    VMMIO_WRITE: "addrspace_vmmio_write", FAULT: "fault", PSCI_SYSTEM_RESET: "psci_system_reset",
}  # fmt: skip

POWEROFF_EXITED = 1 << 0  # vcpu_run_poweroff_flags.exited
# vcpu_run_wakeup_from_state: unspecified 0 (vcpu_run.tc), wfi 1
# (vcpu/aarch64/vcpu_aarch64.tc), psci_cpu_suspend 2, psci_system_suspend 3 (psci.tc)
WAKEUP_FROM_UNSPECIFIED = 0
WAKEUP_FROM_WFI = 1
WAKEUP_FROM_PSCI_CPU_SUSPEND = 2
WAKEUP_FROM_PSCI_SYSTEM_SUSPEND = 3
# hyp/interfaces/psci/include/psci.h: what state 0x100's first word carries
PSCI_REQUEST_SYSTEM_RESET = 1 << 63
PSCI_REQUEST_SYSTEM_RESET2_64 = 1 << 62

ERROR_OK = 0
ERROR_BUSY = 31  # another caller is running this vCPU

# The RM's exit types for VM_EXITED (quic/gunyah-resource-manager: include/vm_mgnt.h)
EXIT_PLATFORM_OFF = 1
EXIT_PLATFORM_RESET = 2
EXIT_PSCI_SYSTEM_RESET2 = 3
EXIT_SOFTWARE_ERROR = 5
EXIT_VM_STOP_FORCED = 7

# The VMMIO window the RM registers for a VM (docs/real-gunyah.md section 12)
VMMIO_WINDOW = (0, 0x4000_0000)

SGI_REGISTERS = (ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1)
DEFAULT_BUDGET = 1_000_000  # instructions a call runs without a trap before "ready"
DEFAULT_MAX_TRAPS = 256  # traps served in the hypervisor a call before "ready"

# PSTATE.M for EL1 with SP_EL1, and the bits exception entry sets (D, A, I, F)
PSTATE_EL1H = 0b0101
PSTATE_EL1T = 0b0100
PSTATE_DAIF = 0xF << 6
SYNC_CURRENT_SP0 = 0x000  # vector offsets (Arm ARM: VBAR_ELx)
SYNC_CURRENT_SPX = 0x200
SYNC_LOWER_A64 = 0x400
VECTOR_BLOCK = 0x80


Result = tuple[int, int, int, int, int]


def vector_offset(pstate: int) -> int:
    """Where in the guest's vector table a synchronous exception taken to EL1
    from this PSTATE enters (Arm ARM: VBAR_EL1): EL1 with SP_EL0, with SP_EL1,
    or a lower EL in AArch64."""
    mode = pstate & 0xF
    if mode == PSTATE_EL1T:
        return SYNC_CURRENT_SP0
    return SYNC_CURRENT_SPX if mode == PSTATE_EL1H else SYNC_LOWER_A64


class VcpuBackend(Protocol):
    """What runs the guest's instructions: it stops where the hardware would
    trap to EL2 and leaves the PC where ELR_EL2 would be (on an abort's or a
    WFI's or an SMC's instruction; past an HVC's)."""

    def poweron(self, entry: int, context: int) -> None:
        """Reset the CPU to its power-on state: PC entry, X0 context, EL1h,
        interrupts masked, MMU off, every other register zero."""

    def enter(self, budget: int) -> Syndrome | None:
        """Run until a trap to EL2 (its syndrome) or `budget` instructions
        (None: the host's interrupt would have come)."""

    def write_regs(self, values: dict[int, int]) -> None:
        """Set Xn for each n: value (n < 31)."""

    def skip(self) -> None:
        """Step the PC past the instruction it is on (emulated)."""

    def exception_state(self) -> tuple[int, int, int]:
        """(PSTATE, VBAR_EL1, PC) now."""

    def inject(self, esr_el1: int, far: int, offset: int) -> None:
        """Take an exception to the guest's EL1: SPSR_EL1, ELR_EL1 (the PC),
        ESR_EL1, FAR_EL1 set; PSTATE EL1h with DAIF masked; PC = VBAR_EL1 +
        offset."""

    def sleep(self, wake: Callable[[], None]) -> None:
        """The vCPU now waits in WFI (vcpu_run says EXPECTS_WAKEUP): call
        `wake` when its own timer fires, where the backend can tell (a
        backend that cannot does nothing: its owner's next vcpu_run runs it
        again all the same)."""

    def kick(self) -> None:
        """An interrupt is now pending for the vCPU: where it runs at this
        moment on another CPU, end that run soon, so that its next run takes
        it (the hypervisor's IPI to the CPU it runs on). Nothing where it
        does not run, or nothing else runs at once."""


@dataclass
class SecondaryVm:
    """What the vCPUs of one secondary VM share: its ID and owner, its memory
    (IPA ranges), its VMMIO window, how it ended. `on_vm_exit(vmid, exit type,
    reason)` is the hypervisor telling the RM of the VM's end (rm-interface's
    `Hyp.on_vm_exit`)."""

    vmid: int
    owner: int
    memory: list[tuple[int, int]] = field(default_factory=list)  # (IPA, size)
    vmmio: list[tuple[int, int]] = field(default_factory=lambda: [VMMIO_WINDOW])
    vcpus: list[SecondaryVcpu] = field(default_factory=list)
    on_vm_exit: Callable[[int, int, int], bool | None] | None = None
    vgic: VGic | None = None  # its virtual GICv3, emulated here (model.vgic)
    # a wake-up raised in the owner during a run (another vCPU powered on or
    # woken): the run that raised it ends "ready" after that trap, so that
    # the owner takes its interrupt now, not at the run's end (_run)
    owner_news: bool = False
    exited: bool = False
    exit_type: int | None = None

    def in_vmmio(self, ipa: int, size: int) -> bool:
        """Whether every byte of [ipa, ipa+size) is VMMIO (vmmio.c: the range
        lookup from ipa must cover the whole access); ranges that touch
        cover it together."""
        pos, end = ipa, ipa + size
        for base, length in sorted(self.vmmio):
            if base <= pos < base + length:
                pos = base + length
            if pos >= end:
                return True
        return False

    def end(self, exit_type: int, reason: int = 0) -> None:
        """The VM's last vCPU has stopped: every vCPU halts, the RM is told
        (once), and from then on every vCPU is exited, unless the news was
        lost (`on_vm_exit` answered False): then the exited bit stays 0."""
        if self.exit_type is not None:
            return
        self.exit_type = exit_type
        for v in self.vcpus:
            v.powered_on = False
        told = self.on_vm_exit is None or self.on_vm_exit(self.vmid, exit_type, reason)
        self.exited = told is not False  # the exited bit: once the RM knows


    def stop(self) -> None:
        """Halted from outside (the RM's VM_STOP): every vCPU powered off and
        the VM exited, the RM not told (it stopped it, and says so itself)."""
        if self.exit_type is None:
            self.exit_type = EXIT_VM_STOP_FORCED
        for v in self.vcpus:
            v.powered_on = False
        self.exited = True


class SecondaryVcpu:
    """One vCPU of a secondary VM, run by its owner with vcpu_run.

    `handler` serves the guest's HVC and SMC (the VM's own hypervisor: its
    identify, its PSCI); `backend` runs its instructions."""

    def __init__(
        self,
        vm: SecondaryVm,
        index: int,
        backend: VcpuBackend,
        handler: TrapHandler,
        *,
        budget: int = DEFAULT_BUDGET,
        max_traps: int = DEFAULT_MAX_TRAPS,
        on_wakeup: Callable[[int], None] | None = None,
    ) -> None:
        if budget <= 0 or max_traps <= 0:
            raise ValueError("the budget and the trap limit must be positive")
        self.vm = vm
        self.index = index
        self.backend = backend
        self.handler = handler
        self.budget = budget
        self.max_traps = max_traps
        self.on_wakeup = on_wakeup  # the owner's wake-up virq, raised for this vCPU
        self.powered_on = False
        self.pending: vmmio.Access | None = None  # the vmmio access awaiting its resume
        self.in_wfi = False
        self.faulted = False
        # how it halted, for the call that ran it into the halt: its state and
        # data as do_vcpu_run_check saw them before the RM acted (0x100 with
        # the reset type and cookie, 6, or 2 with the exited bit the model's
        # RM has already set); later calls see the VM exited
        self.halt: tuple[int, int, int, int] | None = None
        self.last_state = READY
        self._lock = threading.Lock()
        vm.vcpus.append(self)

    @property
    def vmid(self) -> int:
        return self.vm.vmid

    @property
    def owner(self) -> int:
        return self.vm.owner

    @property
    def exited(self) -> bool:
        return self.vm.exited

    # -- what the hypervisor does to the vCPU from outside -----------------
    def poweron(self, entry: int, context: int) -> None:
        """vcpu_poweron (VM_START for vCPU 0, PSCI CPU_ON for the others)."""
        self.backend.poweron(entry, context)
        self.powered_on = True
        self.in_wfi = False
        self.pending = None
        self.last_state = READY
        if self.on_wakeup is not None:
            self.on_wakeup(self.index)
            self.vm.owner_news = True

    def wake(self) -> None:
        """An interrupt for the vCPU: a WFI it waits in completes."""
        if self.in_wfi:
            self.in_wfi = False
            self.backend.skip()
            if self.on_wakeup is not None:
                self.on_wakeup(self.index)
                self.vm.owner_news = True

    def interrupt_pending(self) -> None:
        """An interrupt its vGIC can deliver to it now: woken where it waits
        in WFI, kicked where it runs on another CPU (docs/boot.md section 15)."""
        self.wake()
        self.backend.kick()

    # -- the hypercall -----------------------------------------------------
    def run(self, resume0: int = 0, resume1: int = 0, resume2: int = 0) -> Result:
        """vcpu_run once the cap is looked up: (error, state, data0..2).
        resume0 is a pending vmmio read's value; the other words have no
        meaning for any state the model returns (vcpu_run_resume handlers
        exist only for 4 and 5). ERROR_BUSY while another caller runs it."""
        if not self._lock.acquire(blocking=False):
            return (ERROR_BUSY, 0, 0, 0, 0)
        try:
            self._resume(resume0)
            state, d0, d1, d2 = self._run()
            self.last_state = state
            return (ERROR_OK, state, d0 & vmmio.MASK64, d1 & vmmio.MASK64, d2 & vmmio.MASK64)
        finally:
            self._lock.release()

    def _resume(self, value: int) -> None:
        access, self.pending = self.pending, None
        if access is None or self.vm.exited:
            return
        wb = access.writeback(value)
        if wb is not None:
            self.backend.write_regs({wb[0]: wb[1]})
        self.backend.skip()

    def _blocked_state(self) -> tuple[int, int, int, int] | None:
        """do_vcpu_run_check for a vCPU that cannot run: the state its halt
        left (for the call that ran it into the halt), then exited, then the
        check handlers' states: vmmio, WFI, fault, off; None if it can run."""
        if self.halt is not None:
            halt, self.halt = self.halt, None
            return halt
        if self.vm.exited:
            return (POWERED_OFF, POWEROFF_EXITED, 0, 0)
        if self.pending is not None:
            a = self.pending
            return (VMMIO_WRITE if a.write else VMMIO_READ, a.ipa, a.size, a.value)
        if self.in_wfi:
            return (EXPECTS_WAKEUP, 0, WAKEUP_FROM_WFI, 0)
        if self.faulted:
            return (FAULT, 0, 0, 0)
        if not self.powered_on:
            return (POWERED_OFF, 0, 0, 0)
        return None

    def _run(self) -> tuple[int, int, int, int]:
        blocked = self._blocked_state()
        if blocked is not None:
            return blocked
        self.vm.owner_news = False
        for _ in range(self.max_traps):
            syndrome = self.backend.enter(self.budget)
            if syndrome is None:
                return (READY, 0, 0, 0)
            self._trap(syndrome)
            blocked = self._blocked_state()
            if blocked is not None:
                return blocked
            if self.vm.owner_news:  # the hypervisor's IPI would have it at once
                self.vm.owner_news = False
                return (READY, 0, 0, 0)
        return (READY, 0, 0, 0)

    # -- traps ---------------------------------------------------------------
    def _trap(self, s: Syndrome) -> None:
        ec = s.ec
        if ec in (vmmio.EC_HVC64, vmmio.EC_SMC64):
            self._call(s)
        elif ec == vmmio.EC_WFX:
            vgic = self.vm.vgic
            if vgic is not None and vgic.deliverable(self.index):
                self.backend.skip()  # an interrupt for it: the WFI completes at once
            else:
                self.in_wfi = True
                self.backend.sleep(self.wake)
        elif ec == vmmio.EC_DATA_ABORT_LOWER:
            access = vmmio.decode_access(s)
            vgic = self.vm.vgic
            if access is not None and vgic is not None and vgic.claims(access.ipa):
                self._emulate_vgic(vgic, access)
            elif access is not None and self.vm.in_vmmio(access.ipa, access.size):
                self.pending = access
            else:
                self._abort(s, vmmio.EC_DATA_ABORT)
        elif ec == vmmio.EC_INST_ABORT_LOWER:
            self._abort(s, vmmio.EC_INST_ABORT)
        elif ec == vmmio.EC_SYSREG and self._sysreg(s):
            self.backend.skip()
        else:  # nothing else traps here; a backend that says otherwise
            self._halt_fault()

    def _sysreg(self, s: Syndrome) -> bool:
        """A trapped MSR the vGIC emulates (hyp/vm/vgic/src/sysregs.c): the SGI
        generation registers, whose writes trap while HCR_EL2.IMO/FMO are set;
        each other target that can now take its SGI is woken where it waits in
        WFI (vcpu_wakeup: its owner gets its wake-up interrupt) and kicked
        where it runs on another CPU. False for any other register: the vCPU
        then halts as before."""
        f = vmmio.SYSREG_ISS.decode(s.iss)
        reg = (f["Op0"], f["Op1"], f["CRn"], f["CRm"], f["Op2"])
        vgic = self.vm.vgic
        if vgic is None or f["Direction"] or reg not in SGI_REGISTERS:
            return False
        sent = vgic.generate_sgi(self.index, s.reg(int(f["Rt"])), reg == ICC_SGI1R_EL1)
        for v in sent:
            target = self.vm.vcpus[v] if v < len(self.vm.vcpus) else None
            if target is not None and target is not self and vgic.deliverable(v):
                target.interrupt_pending()
        return True

    def _emulate_vgic(self, vgic: VGic, access: vmmio.Access) -> None:
        """An access to the VM's vGIC: answered by the model as the
        hypervisor answers it (hyp/vm/vgic/src/vdevice.c), a load's value in
        its register as vdevice.c writes it back, and the vCPU goes on."""
        value = vgic.access(self.index, access.ipa, access.size, access.write, access.value)
        wb = None if access.write else access.writeback(value)
        if wb is not None:
            self.backend.write_regs({wb[0]: wb[1]})
        self.backend.skip()

    def _abort(self, s: Syndrome, ec_el1: int) -> None:
        """inject_inst_data_abort: a synchronous external abort to the guest's
        vector, or (debug build) a fault if it comes from that vector."""
        pstate, vbar, pc = self.backend.exception_state()
        mode = pstate & 0xF
        if mode == PSTATE_EL1H and (pc & ~(VECTOR_BLOCK - 1)) == vbar + SYNC_CURRENT_SPX:
            self._halt_fault()
            return
        offset = vector_offset(pstate)
        if mode not in (PSTATE_EL1H, PSTATE_EL1T):  # from EL0: the lower-EL classes
            ec_el1 -= 1
        iss = vmmio.DATA_ABORT_ISS.encode({"DFSC": vmmio.FSC_SYNC_EXTERNAL})
        il = vmmio.ESR.get(s.esr, "IL")
        esr = vmmio.ESR.encode({"EC": ec_el1, "IL": il, "ISS": iss})
        self.backend.inject(esr, s.far, offset)

    def _halt_fault(self) -> None:
        self.faulted = True
        self.halt = (FAULT, 0, 0, 0)
        self.vm.end(EXIT_SOFTWARE_ERROR)

    def _call(self, s: Syndrome) -> None:
        regs = [s.reg(i) for i in range(NUM_REGS)]
        kind: Kind = "hvc" if s.ec == vmmio.EC_HVC64 else "smc"
        imm = s.iss & 0xFFFF
        smc64 = bool(smccc.FUNCTION_ID.get(regs[0] & smccc.MASK32, "smc64"))
        action = self.handler.handle(regs, kind, imm, self.index, s.pc)
        if action is not None and action.kind in ("system_off", "system_reset", "cpu_off"):
            self._act(action, smc64)
            return
        self.backend.write_regs(dict(enumerate(regs)))
        if kind == "smc":
            self.backend.skip()  # a trapped SMC is emulated: the PC steps past it
        if action is not None:
            self._act(action, smc64)

    def _act(self, action: Action, smc64: bool) -> None:
        """What a PSCI call asks of the VM's vCPUs (psci_common.c)."""
        vm = self.vm
        if action.kind == "system_off":
            vm.end(EXIT_PLATFORM_OFF)
            self.halt = (POWERED_OFF, POWEROFF_EXITED if vm.exited else 0, 0, 0)
        elif action.kind == "system_reset":
            if action.reset_type is None:
                reset = (PSCI_REQUEST_SYSTEM_RESET, 0)
                exit_type = EXIT_PLATFORM_RESET
            else:
                width = PSCI_REQUEST_SYSTEM_RESET2_64 if smc64 else 0
                reset = (action.reset_type | width, action.cookie)
                exit_type = EXIT_PSCI_SYSTEM_RESET2
            self.halt = (PSCI_SYSTEM_RESET, *reset, 0)
            vm.end(exit_type)
        elif action.kind == "cpu_off":
            self.powered_on = False
        elif action.kind == "cpu_on" and 0 <= action.cpu < len(vm.vcpus):
            vm.vcpus[action.cpu].poweron(action.entry, action.context)



def secondary_hypervisor(
    persona: str = "gunyah-qemu",
    cpus: int = 1,
    vmid: int = 0x80,
    owner: int = PRIMARY_VM_ID,
    vm: Vm | None = None,
) -> TrapHandler:
    """The hypervisor as a secondary VM's own calls reach it: the persona's
    identify (a secondary's answers as the primary's: docs/real-gunyah.md
    section 12) and PSCI for `cpus` vCPUs, calls looked up in the secondary's
    own cspace (`vm`'s, the one the RM filled: the caps to the doorbells it
    receives; an empty one without it): none of the primary's capabilities,
    its queues to the RM among them."""
    from .hypervisor import Hypervisor
    from .vms import Vm

    hyp = Hypervisor(persona, cpus)
    hyp.vm = Vm(vmid, owner) if vm is None else vm
    if hyp.ctx is not None:
        hyp.ctx.vm = hyp.vm
    hyp.rm = None
    return hyp
