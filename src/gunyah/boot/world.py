"""A secondary VM's vCPU run by the EL2 shim itself: the world switch's host side.

Why: on the unicorn engine a secondary has no interrupt controller, no timer
and no real exception model; under `gunyah boot` the shim can run it on the
calling physical CPU at EL1 instead, behind its own stage 2, as the real
hypervisor runs a proxy-scheduled vCPU inside its owner's vcpu_run
(quic/gunyah-hypervisor: hyp/vm/vcpu_run/src/vcpu_run.c). docs/boot.md
section 12 has the whole design; in short:

* **Stage 2** (`GuestTables`): when a VM starts, the host builds its tables
  in the shim's pool (layout.py's "secondaries' stage 2" region): 40-bit
  IPAs from level 0, each mapping of the VM (the parcels the RM gave it) as
  2 MiB blocks where IPA and physical address allow, else 4 KiB pages, with
  the parcel's rights (boot/stage2.py's descriptors). Only the primary's RAM
  below the shim is ever mapped; the VMMIO window and everything else fault
  to EL2. Each VM gets its own 8-bit VMID (the primary keeps 0); the first
  run of a VM on a VMID invalidates that VMID's TLB entries, so a VMID a
  dead VM held serves nothing stale.
* **State** (`ShimSecondary`): each vCPU's whole context (struct
  vcpu_context) lives in a slot of the shim's memory. The shim loads it at
  the switch in and saves it at the switch out; between runs the host reads
  and edits it, which is how `VcpuBackend` sees the vCPU.
* **Running** (`Channel.run_world`): inside the primary's vcpu_run call, the
  host names the context and the VM's VTTBR in the calling CPU's mailbox
  and bumps `run_seq`; the shim, still waiting for that call's answer, runs
  the vCPU until its next exception from EL1 and sets `exit_seq`. A trap
  comes back as its syndrome; a physical interrupt (routed to EL2 only
  while the secondary runs) as None, the "ready" a host interrupt gives.
"""

from __future__ import annotations

import mmap
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ..abi.errors import Error
from ..model import vmmio
from ..model.psci import mpidr_of
from ..model.vcpu_run import PSTATE_DAIF, PSTATE_EL1H
from ..model.vgic import VGic
from ..model.vmmio import Syndrome
from ..model.vms import HypError, Mapping
from . import layout
from .stage2 import BLOCK, ENTRIES, PAGE, block_descriptor, page_descriptor

TABLE = 3  # a table descriptor at levels 0 to 2
CONTEXT = layout.VCPU_CONTEXT
CONTEXT_WORDS = layout.VCPU_CONTEXT_SIZE // 8
SYSREG = {name: layout.VCPU_CONTEXT_SYSREGS + n for n, name in enumerate(layout.EL1_SYSREGS)}
X, PC, PSTATE = layout.VCPU_CONTEXT_X, layout.VCPU_CONTEXT_PC, layout.VCPU_CONTEXT_PSTATE
EXIT = layout.VCPU_CONTEXT_EXIT
ESR, FAR, HPFAR = CONTEXT.offset("esr"), CONTEXT.offset("far"), CONTEXT.offset("hpfar")
VMPIDR = CONTEXT.offset("vmpidr")
FLAGS, ICH_LR = CONTEXT.offset("flags"), CONTEXT.offset("ich_lr")
PPI_VTIMER = 27  # the virtual timer's on the virt machine (hw/arm/virt.c ARCH_TIMER_VIRT_IRQ)
PPI_PTIMER = 30  # the EL1 physical timer's (hw/arm/virt.c ARCH_TIMER_NS_EL1_IRQ)
# A vCPU's EL1 timers: its control register, compare value, PPI and the flag
# the shim sets when it fired in a run
TIMERS = (("cntv_ctl_el0", "cntv_cval_el0", PPI_VTIMER, layout.RUN_VTIMER_FIRED),
          ("cntp_ctl_el0", "cntp_cval_el0", PPI_PTIMER, layout.RUN_PTIMER_FIRED))  # fmt: skip
CNT_ENABLE, CNT_IMASK, CNT_ISTATUS = 1, 2, 4  # CNTV_CTL_EL0 (Arm ARM)
MASK64 = vmmio.MASK64

# A vCPU out of reset (Arm ARM: SCTLR_EL1's RES1 bits, MMU and caches off;
# the shim's SCTLR_EL1_RESET), at EL1h with D, A, I and F masked
SCTLR_EL1_RESET = 0x30D0_0800
RESET_PSTATE = PSTATE_DAIF | PSTATE_EL1H
MPIDR_RES1 = 1 << 31  # MPIDR_EL1 bit 31 reads as one
# PSTATE bits an exception taken to EL1 keeps or sets (Arm ARM, AArch64.TakeException)
PSR_NZCV, PSR_DIT, PSR_PAN, PSR_SSBS = 0xF << 28, 1 << 24, 1 << 22, 1 << 12
SCTLR_SPAN, SCTLR_DSSBS = 1 << 23, 1 << 44
# Stage-2 fault status codes whose IPA HPFAR_EL2 holds: translation, access
# flag and permission faults, levels 0 to 3 (Arm ARM, HPFAR_EL2)
HPFAR_VALID_FSC = range(0x04, 0x10)
HPFAR_FIPA = ((1 << 40) - 1) << 4  # FIPA: IPA bits 51:12 at bits 43:4 (40-bit IPAs here)

IPA_LIMIT = 1 << layout.GUEST_IPA_BITS
RUN_SECONDS = 60.0  # the longest one run waits for the shim (the primary's tick ends a spin)


class Mailboxes(Protocol):
    """Where a run is posted: the calling CPU's mailbox (boot/channel.py)."""

    def run_world(self, cpu: int, context: int, vttbr: int, flush: bool,
                  kick: int = 0) -> None: ...  # fmt: skip

    def set_wake_at(self, counter: int) -> None: ...


def _level_shift(level: int) -> int:
    return 12 + 9 * (3 - level)


class GuestTables:
    """The secondaries' stage-2 tables in the shim's pool (`pool`: the bytes
    of the region at physical `base`, `pages` tables of 4 KiB), each VM's
    pages its own until `release`."""

    def __init__(self, pool: memoryview, base: int = layout.GUEST_STAGE2_POOL,
                 pages: int = layout.GUEST_STAGE2_PAGES,
                 ram: tuple[int, int] = (layout.RAM_BASE, layout.SHIM_BASE)) -> None:  # fmt: skip
        self.words = pool.cast("B").cast("Q")
        self.base, self.pages, self.ram = base, pages, ram
        self.owner: dict[int, int] = {}  # pool page -> VMID

    def free(self) -> int:
        return self.pages - len(self.owner)

    def build(self, vmid: int, mappings: Sequence[Mapping]) -> int:
        """VM `vmid`'s tables for `mappings`; the root's physical address.
        HypError NOMEM (nothing kept) when the pool cannot hold them, or a
        mapping leaves the 40-bit IPA space or the primary's RAM."""
        tables: dict[tuple[int, int], list[int]] = {}  # (level, index of its range) -> words
        tables[(0, 0)] = [0] * ENTRIES
        ram_lo, ram_hi = self.ram
        leaves: list[tuple[int, int, int]] = []  # (level, ipa, descriptor)
        for m in mappings:
            if m.ipa < 0 or m.end > IPA_LIMIT:
                why = f"IPA {m.ipa:#x}+{m.size:#x} is past the 40-bit stage 2"
                raise HypError(Error.ADDR_OVERFLOW, why)
            if not (ram_lo <= m.phys and m.phys + m.size <= ram_hi):
                why = f"IPA {m.ipa:#x} maps {m.phys:#x}, outside the primary's RAM"
                raise HypError(Error.ADDR_INVALID, why)
            ipa, end = m.ipa, m.end
            while ipa < end:
                phys = m.phys + (ipa - m.ipa)
                if ipa % BLOCK == 0 and phys % BLOCK == 0 and end - ipa >= BLOCK:
                    leaves.append((2, ipa, block_descriptor(phys, m.rights)))
                    ipa += BLOCK
                else:
                    leaves.append((3, ipa, page_descriptor(phys, m.rights)))
                    ipa += PAGE
        for level, ipa, desc in leaves:
            for parent in range(level):  # the tables on its way, made as needed
                child = (parent + 1, ipa >> _level_shift(parent))
                tables.setdefault(child, [0] * ENTRIES)
            tables[(level, ipa >> _level_shift(level - 1))][ipa >> _level_shift(level) & 511] = desc
        if len(tables) > self.free():
            raise HypError(Error.NOMEM, f"VM {vmid:#x}'s stage 2 needs {len(tables)} tables; "
                           f"the shim's pool has {self.free()} free")  # fmt: skip
        free = (p for p in range(self.pages) if p not in self.owner)
        where = {key: next(free) for key in sorted(tables)}
        for (level, index), words in tables.items():
            if level < 3:  # point at the next level's tables
                for (child_level, child_index), page in where.items():
                    if child_level == level + 1 and child_index >> 9 == index:
                        words[child_index & 511] = self.address(page) | TABLE
        for key, page in where.items():
            self.owner[page] = vmid
            self.words[page * ENTRIES : (page + 1) * ENTRIES] = \
                memoryview(struct.pack(f"<{ENTRIES}Q", *tables[key])).cast("Q")  # fmt: skip
        return self.address(where[(0, 0)])

    def address(self, page: int) -> int:
        return self.base + page * PAGE

    def walk(self, root: int, ipa: int) -> int:
        """The leaf descriptor the tables at `root` give `ipa` (0: unmapped),
        read back as the hardware walks them (for tests and tracing)."""
        if not 0 <= ipa < IPA_LIMIT:
            return 0
        table = root
        for level in range(4):
            page = (table - self.base) // PAGE
            if not 0 <= page < self.pages:
                return 0
            desc = int(self.words[page * ENTRIES + (ipa >> _level_shift(level) & 511)])
            if not desc & 1:
                return 0
            if level == 3 or desc & 3 == 1:  # a page, or a block at level 1 or 2
                return desc
            table = desc & ((1 << 48) - 1) & ~(PAGE - 1)
        return 0

    def release(self, vmid: int) -> None:
        """The VM's tables back to the pool (zeroed: a free table maps nothing)."""
        for page in [p for p, v in self.owner.items() if v == vmid]:
            del self.owner[page]
            self.words[page * ENTRIES : (page + 1) * ENTRIES] = \
                memoryview(bytes(PAGE)).cast("Q")  # fmt: skip


@dataclass
class GuestVm:
    """One running secondary VM on the shim: its VTTBR and its vCPUs' slots."""

    vmid: int
    vttbr: int
    slots: list[int] = field(default_factory=list)
    flushed: bool = False  # its VMID's TLB entries invalidated once (by the first run)


class World:
    """The boot's secondaries on the shim (`Vms.backends`): their tables,
    their VMIDs and their context slots, each VM's until it goes."""

    def __init__(self, contexts: memoryview | bytearray, pool: memoryview | bytearray,
                 mailboxes: Mailboxes, cpu: Callable[[], int]) -> None:  # fmt: skip
        self.contexts = memoryview(contexts).cast("B").cast("Q")
        self.tables = GuestTables(memoryview(pool))
        self.mailboxes = mailboxes
        self.cpu = cpu  # the physical CPU whose call is being served
        self.kicks = 0  # CPUs whose runs the next run to start ends first (a bit each)
        # vCPUs waiting in WFI with their timer armed: when it fires (the
        # counter value) and what wakes them (docs/boot.md section 17)
        self.sleeping: dict[ShimSecondary, tuple[int, Callable[[], None]]] = {}
        self.vms: dict[int, GuestVm] = {}
        self._slots_free = list(range(len(self.contexts) // CONTEXT_WORDS))
        self._maps: list[mmap.mmap] = []

    @classmethod
    def over_ram(cls, ram_fd: int, mailboxes: Mailboxes, cpu: Callable[[], int]) -> World:
        """The boot's: the shim's context slots and pool, mapped from the
        guest's RAM file."""
        ctx = mmap.mmap(ram_fd, layout.VCPU_CONTEXTS * layout.VCPU_CONTEXT_SIZE,
                        offset=layout.VCPU_CONTEXTS_BASE - layout.RAM_BASE)  # fmt: skip
        pool = mmap.mmap(ram_fd, layout.GUEST_STAGE2_PAGES * PAGE,
                         offset=layout.GUEST_STAGE2_POOL - layout.RAM_BASE)  # fmt: skip
        world = cls(memoryview(ctx), memoryview(pool), mailboxes, cpu)
        world._maps = [ctx, pool]
        return world

    def hw_vmid(self, vmid: int) -> int:
        """A hardware VMID for RM VMID `vmid`: its low 8 bits when free and
        not the primary's 0, else the first free one."""
        taken = {vm.vttbr >> 48 for vm in self.vms.values()} | {layout.PRIMARY_HW_VMID}
        want = vmid % layout.HW_VMIDS
        if want not in taken:
            return want
        free = [n for n in range(1, layout.HW_VMIDS) if n not in taken]
        if not free:
            raise HypError(Error.NOMEM, "every hardware VMID is taken")
        return free[0]

    def start(self, vmid: int, mappings: Sequence[Mapping], vcpus: Sequence[int],
              vgic: VGic | None = None) -> dict[int, ShimSecondary]:  # fmt: skip
        """The backends of VM `vmid`'s vCPUs (by index), its stage 2 built,
        each delivering `vgic`'s interrupts through its list registers (docs/
        boot.md section 12); HypError (nothing kept) when the shim has no room."""
        self.release(vmid)
        if len(vcpus) > len(self._slots_free):
            raise HypError(Error.NOMEM, f"VM {vmid:#x}: {len(vcpus)} vCPUs, "
                           f"{len(self._slots_free)} context slots free")  # fmt: skip
        hw = self.hw_vmid(vmid)
        root = self.tables.build(vmid, mappings)
        vm = GuestVm(vmid, root | hw << 48)
        self.vms[vmid] = vm
        backends = {}
        for index in vcpus:
            slot = self._slots_free.pop(0)
            vm.slots.append(slot)
            backends[index] = ShimSecondary(self, vm, slot, index, vgic)
        return backends

    def tick(self, counter: int) -> None:
        """The counter has come to `counter` (a CPU's REQ_TICK): each vCPU
        waiting in WFI whose timer fired by then has it taken as the shim
        takes it in a run (masked, its PPI pending in its vGIC) and is woken,
        which raises its wake-up interrupt in the owner."""
        due = [(v, wake) for v, (at, wake) in self.sleeping.items() if at <= counter]
        for v, _ in due:
            del self.sleeping[v]
        self.publish_wake_at()
        for v, wake in due:
            v.timers_fired(counter)
            wake()

    def publish_wake_at(self) -> None:
        """Every CPU's wake_at: the first waiting vCPU's timer, 0 if none."""
        self.mailboxes.set_wake_at(min((at for at, _ in self.sleeping.values()), default=0))

    def release(self, vmid: int) -> None:
        """VM `vmid` is gone: its tables, VMID and slots are free again (its
        VMID's TLB entries are invalidated by the next VM's first run on it)."""
        vm = self.vms.pop(vmid, None)
        if vm is None:
            return
        gone = [v for v in self.sleeping if v.vm is vm]
        for v in gone:
            del self.sleeping[v]
        if gone:
            self.publish_wake_at()
        self.tables.release(vmid)
        for slot in vm.slots:
            at = slot * CONTEXT_WORDS
            self.contexts[at : at + CONTEXT_WORDS] = memoryview(bytes(8 * CONTEXT_WORDS)).cast("Q")
            self._slots_free.append(slot)
        self._slots_free.sort()

    def close(self) -> None:
        for vmid in list(self.vms):
            self.release(vmid)
        self.contexts.release()
        self.tables.words.release()
        for m in self._maps:
            m.close()


class ShimSecondary:
    """vcpu_run's backend on the shim (model.vcpu_run.VcpuBackend): the vCPU's
    context in slot `slot`, run on the calling CPU."""

    def __init__(self, world: World, vm: GuestVm, slot: int, index: int,
                 vgic: VGic | None = None) -> None:  # fmt: skip
        self.world, self.vm, self.slot, self.index = world, vm, slot, index
        self.vgic = vgic  # its VM's, if it has one
        self.at = slot * CONTEXT_WORDS
        self.address = layout.VCPU_CONTEXTS_BASE + slot * layout.VCPU_CONTEXT_SIZE
        self.on_cpu: int | None = None  # the CPU it runs on now, if it runs
        # each EL1 timer the shim or the host masked when it fired: the
        # control register and compare value it was left with, until the
        # guest writes either (its IMASK is then the guest's own again)
        self.masked: dict[str, tuple[int, int]] = {}

    def _get(self, word: int) -> int:
        return int(self.world.contexts[self.at + word])

    def _set(self, word: int, value: int) -> None:
        self.world.contexts[self.at + word] = value & MASK64

    def sysreg(self, name: str) -> int:
        return self._get(SYSREG[name])

    # -- VcpuBackend --------------------------------------------------------
    def poweron(self, entry: int, context: int) -> None:
        w = self.world.contexts
        w[self.at : self.at + CONTEXT_WORDS] = memoryview(bytes(8 * CONTEXT_WORDS)).cast("Q")
        self._set(X, context)
        self._set(PC, entry)
        self._set(PSTATE, RESET_PSTATE)
        self._set(SYSREG["sctlr_el1"], SCTLR_EL1_RESET)
        self._set(VMPIDR, MPIDR_RES1 | mpidr_of(self.index))
        self.masked.clear()

    def enter(self, budget: int) -> Syndrome | None:
        """One run on the calling CPU (`budget` is not used: the CPU's own
        interrupts end a run that does not trap). With a vGIC, its
        interrupts for this vCPU go in the list registers and come back, as
        the run left them, at the exit; an EL1 timer that fired in the run
        (the shim masked it) is made pending as its PPI, 27 (virtual) or 30
        (physical), by emulation, no HW bit: the guest's handler sets a new
        compare value and unmasks it.
        A WFI traps (the model then waits: `sleep`)."""
        if self.world.sleeping.pop(self, None) is not None:  # it runs: no longer waits
            self.world.publish_wake_at()
        exit_kind = self._run_once()
        if exit_kind == layout.EXIT_REFUSED:
            raise RuntimeError(f"the shim refused to run vCPU slot {self.slot}")
        if exit_kind != layout.EXIT_SYNC:
            return None  # the host's interrupt: ready
        esr = self._get(ESR) & 0xFFFF_FFFF
        far = self._get(FAR)
        ec = vmmio.ESR.get(esr, "EC")
        ipa = None
        if ec in (vmmio.EC_DATA_ABORT_LOWER, vmmio.EC_INST_ABORT_LOWER) \
                and esr & 0x3F in HPFAR_VALID_FSC:  # fmt: skip
            ipa = (self._get(HPFAR) & HPFAR_FIPA) << 8 | far & (PAGE - 1)
        pc = self._get(PC)
        if ec == vmmio.EC_HVC64:
            pc -= 4  # ELR_EL2 is past an HVC
        regs = tuple(self.world.contexts[self.at + X : self.at + X + 31].tolist())
        return Syndrome(esr=esr, far=far, ipa=ipa, regs=regs, pc=pc & MASK64)

    def sleep(self, wake: Callable[[], None]) -> None:
        """It waits in WFI: if one of its EL1 timers is armed (ENABLE, IMASK
        clear) and it has a vGIC to take it, `wake` is called when the first
        fires (World.tick; the counter is the physical one: CNTVOFF 0)."""
        armed = [self.sysreg(cval) for ctl, cval, _, _ in TIMERS
                 if self.sysreg(ctl) & (CNT_ENABLE | CNT_IMASK) == CNT_ENABLE]  # fmt: skip
        if self.vgic is None or not armed:
            return
        self.world.sleeping[self] = (min(armed), wake)
        self.world.publish_wake_at()

    def timers_fired(self, counter: int) -> None:
        """Its EL1 timers armed to fire by `counter` fired while it did not
        run: masked, as the shim masks them in a run, and their PPIs pending
        in its vGIC."""
        for ctl, cval, ppi, _ in TIMERS:
            at = SYSREG[ctl]
            control = self._get(at)
            if control & (CNT_ENABLE | CNT_IMASK) != CNT_ENABLE or self.sysreg(cval) > counter:
                continue
            self._set(at, control | CNT_IMASK)
            self.masked[ctl] = ((control | CNT_IMASK) & ~CNT_ISTATUS, self.sysreg(cval))
            if self.vgic is not None:
                self.vgic.raise_irq(ppi, self.index)

    def _timer_levels(self, fired: int, vgic: VGic) -> None:
        """After a run: each EL1 timer that fired in it (the shim masked it)
        makes its PPI pending; each the guest has since turned off, moved on
        or masked itself lets it fall, as a level-sensitive timer's output
        does (the real hypervisor's arm_vm_timer checks the timer's level
        for its virq: arm_vm_timer_handle_virq_check_pending)."""
        for ctl, cval, ppi, flag in TIMERS:
            control, compare = self.sysreg(ctl), self.sysreg(cval)
            written = (control & ~CNT_ISTATUS, compare)  # ISTATUS: the hardware's, not written
            if fired & flag:
                self.masked[ctl] = written
                vgic.raise_irq(ppi, self.index)
                continue
            ours = self.masked.get(ctl)
            if ours is not None and ours != written:
                del self.masked[ctl]  # the guest wrote it since
                ours = None
            masked = control & CNT_IMASK and ours is None
            if not control & CNT_ENABLE or not control & CNT_ISTATUS or masked:
                self.masked.pop(ctl, None)
                vgic.lower_irq(ppi, self.index)

    def _run_once(self) -> int:
        """One switch into the vCPU and back; its EXIT_* (the vGIC's list
        registers loaded before and saved after)."""
        vm, vgic = self.vm, self.vgic
        flags = 0
        if vgic is not None:
            flags |= layout.RUN_VGIC
            for n, word in enumerate(vgic.load(self.index, layout.ICH_LRS)):
                self._set(ICH_LR + n, word)
        self._set(FLAGS, flags)
        cpu, world = self.world.cpu(), self.world
        kick, world.kicks = world.kicks & ~(1 << cpu), 0  # this CPU's own run is over
        self.on_cpu = cpu
        try:
            world.mailboxes.run_world(cpu, self.address, vm.vttbr, not vm.flushed, kick)
        finally:
            self.on_cpu = None
        vm.flushed = True
        if vgic is not None:
            vgic.save(self.index, [self._get(ICH_LR + n) for n in range(layout.ICH_LRS)])
            self._timer_levels(self._get(FLAGS), vgic)
        return self._get(EXIT)

    def kick(self) -> None:
        """News for this vCPU (an SGI): if it runs now on another CPU, the next
        run that starts on any CPU first ends that one (a Group 0 SGI from its
        shim: docs/boot.md section 15), so that its next run delivers it."""
        if self.on_cpu is not None:
            self.world.kicks |= 1 << self.on_cpu

    def write_regs(self, values: dict[int, int]) -> None:
        for n, v in values.items():
            if 0 <= n < 31:
                self._set(X + n, v)

    def skip(self) -> None:
        self._set(PC, self._get(PC) + 4)

    def exception_state(self) -> tuple[int, int, int]:
        return self._get(PSTATE), self.sysreg("vbar_el1"), self._get(PC)

    def inject(self, esr_el1: int, far: int, offset: int) -> None:
        """The exception entry the hardware makes (Arm ARM AArch64.TakeException,
        as the shim's own inject_external_abort): SPSR_EL1 and ELR_EL1 the
        state left, PSTATE EL1h with DAIF masked, NZCV, DIT and PAN kept,
        PAN set where SCTLR_EL1.SPAN is clear, SSBS from SCTLR_EL1.DSSBS."""
        pstate, pc = self._get(PSTATE), self._get(PC)
        sctlr = self.sysreg("sctlr_el1")
        new = (pstate & (PSR_NZCV | PSR_DIT | PSR_PAN)) | RESET_PSTATE
        if not sctlr & SCTLR_SPAN:
            new |= PSR_PAN
        if sctlr & SCTLR_DSSBS:
            new |= PSR_SSBS
        self._set(SYSREG["spsr_el1"], pstate)
        self._set(SYSREG["elr_el1"], pc)
        self._set(SYSREG["esr_el1"], esr_el1)
        self._set(SYSREG["far_el1"], far)
        self._set(PSTATE, new)
        self._set(PC, self.sysreg("vbar_el1") + offset)
