"""The world switch's host side (boot/world.py): a secondary VM's stage-2
tables in the shim's pool, its vCPU's context slot as vcpu_run's backend
sees it, and the syndromes a run brings back. The shim's half is checked
by the boots (tests/test_boot_vm.py)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi.errors import Error
from gunyah.boot import layout, stage2
from gunyah.boot.world import (
    CONTEXT_WORDS,
    ESR,
    EXIT,
    FAR,
    FLAGS,
    HPFAR,
    PC,
    PSTATE,
    SYSREG,
    GuestTables,
    World,
    X,
)
from gunyah.model import vmmio
from gunyah.model.vcpu_run import SYNC_CURRENT_SPX
from gunyah.model.vgic import LIST_REGISTERS
from gunyah.model.vms import RIGHT_R, RIGHT_W, RIGHT_X, RIGHTS_RWX, HypError, Mapping

BASE = 0x8000_0000  # our VMM's memory base (gunyah.vmm.devicetree DEFAULT_BASE)
RAM = (layout.RAM_BASE, layout.SHIM_BASE)
POOL = layout.GUEST_STAGE2_POOL


def _pool(pages: int = layout.GUEST_STAGE2_PAGES) -> GuestTables:
    return GuestTables(memoryview(bytearray(pages * 4096)), POOL, pages, RAM)


def test_the_layout_gives_the_switch_its_own_regions_and_the_records_the_shim_reads() -> None:
    regions = {r.name: r for r in layout.REGIONS}
    ctx, pool = regions["vcpu contexts"], regions["secondaries' stage 2"]
    assert ctx.start == layout.SHIM_MAILBOXES + layout.MAX_CPUS * layout.MAILBOX_SIZE
    assert ctx.end <= layout.STAGE2_BASE and pool.end == layout.RAM_BASE + layout.RAM_SIZE
    assert layout.VCPU_CONTEXTS == 28 and layout.GUEST_STAGE2_PAGES == 30
    assert 8 * layout.VCPU_CONTEXT.words <= layout.VCPU_CONTEXT_SIZE and ctx.start % 4096 == 0
    # Q0..Q31 16-byte aligned for LDP/STP of Q registers; X0..X30 first, as start.S
    # copies them; PC and PSTATE next
    assert (8 * layout.VCPU_CONTEXT_Q) % 16 == 0 and layout.VCPU_CONTEXT.offset("q") == 76
    # the virtual CPU interface's state, loaded and saved with RUN_VGIC: four
    # list registers (QEMU's cortex-a57 has ICH_VTR_EL2.ListRegs 3), as the vGIC fills
    ich = [layout.VCPU_CONTEXT.offset(f) for f in ("flags", "ich_vmcr", "ich_ap0r", "ich_ap1r",
                                                     "ich_lr")]  # fmt: skip
    assert ich == [39, 40, 41, 42, 43] and layout.ICH_LRS == LIST_REGISTERS == 4
    assert (X, PC, PSTATE, EXIT) == (0, 31, 32, 33)
    # every EL1 register the brief of the switch names, and the timers
    assert set(layout.EL1_SYSREGS) >= {
        "sctlr_el1",
        "ttbr0_el1",
        "ttbr1_el1",
        "tcr_el1",
        "mair_el1",
        "amair_el1",
        "vbar_el1",
        "contextidr_el1",
        "tpidr_el0",
        "tpidr_el1",
        "tpidrro_el0",
        "esr_el1",
        "far_el1",
        "afsr0_el1",
        "afsr1_el1",
        "par_el1",
        "sp_el0",
        "sp_el1",
        "elr_el1",
        "spsr_el1",
        "cpacr_el1",
        "cntkctl_el1",
        "csselr_el1",
        "cntv_ctl_el0",
        "cntv_cval_el0",
    }
    # MDSCR_EL1 is the debug state's, switched lazily with the breakpoints and
    # watchpoints (docs/boot.md section 19): room for the architecture's 16
    # of each (ID_AA64DFR0_EL1.BRPs/WRPs are 4 bits, the count less one), and
    # for 16 event counters beside the PMU's eight other registers
    assert "mdscr_el1" not in layout.EL1_SYSREGS
    assert layout.DEBUG_WORDS == 1 + 4 * 16 and layout.PMU_WORDS == 8 + 2 * 16
    assert layout.PMU_REGS == ("pmcr_el0", "pmselr_el0", "pmuserenr_el0", "pmccfiltr_el0",
                               "pmccntr_el0", "pmcntenset_el0", "pmintenset_el1",
                               "pmovsset_el0")  # fmt: skip
    assert (layout.LAZY_DEBUG, layout.LAZY_PMU) == (1, 2)
    assert layout.EXITS == {"EXIT_SYNC": 0, "EXIT_IRQ": 1, "EXIT_FIQ": 2, "EXIT_SERROR": 3,
                            "EXIT_REFUSED": 4}  # fmt: skip
    header = layout.c_header()
    assert "#define VCPU_CONTEXTS_BASE   0x7ff12000" in header
    assert "#define GUEST_STAGE2_POOL    0x7ffe2000" in header
    assert f"#define CTX_Q                {8 * layout.VCPU_CONTEXT_Q}" in header


def test_a_vms_tables_map_its_parcels_in_blocks_and_pages_and_nothing_else() -> None:
    t = _pool()
    maps = [
        Mapping(BASE, 0x4020_0000, 4 << 20, RIGHTS_RWX),  # two 2 MiB blocks
        Mapping(BASE + (4 << 20), 0x4100_1000, 0x3000, RIGHT_R | RIGHT_X),
    ]  # pages
    root = t.build(0x80, maps)
    assert root == POOL and len(t.owner) == 4  # a table at each level 0 to 3
    assert t.walk(root, BASE) == stage2.block_descriptor(0x4020_0000, RIGHTS_RWX)
    assert t.walk(root, BASE + (2 << 20)) == stage2.block_descriptor(0x4040_0000, RIGHTS_RWX)
    assert t.walk(root, BASE + (4 << 20) + 0x2000) == \
        stage2.page_descriptor(0x4100_3000, RIGHT_R | RIGHT_X)  # fmt: skip
    assert t.walk(root, BASE + (4 << 20) + 0x2000) & stage2.S2AP_W == 0  # the parcel's rights
    # the VMMIO window, the primary's RAM at its own IPAs, the shim: unmapped
    for ipa in (0, 0x900_0000, layout.RAM_BASE, layout.SHIM_BASE, layout.SHIM_MAILBOXES,
                BASE + (4 << 20) + 0x3000, BASE - 0x1000, (1 << 40) - 0x1000):  # fmt: skip
        assert t.walk(root, ipa) == 0, hex(ipa)


def test_a_vm_is_refused_what_its_stage_2_cannot_hold_and_keeps_nothing() -> None:
    t = _pool(4)
    scattered = [Mapping(BASE + n * (2 << 20), 0x4000_1000 + n * (2 << 20), 0x1000, RIGHTS_RWX)
                 for n in range(2)]  # two level-3 tables: 5 in all  # fmt: skip
    try:
        t.build(0x80, scattered)
        raise AssertionError("built past the pool")
    except HypError as e:
        assert e.error == Error.NOMEM
    assert t.owner == {}
    for bad, error in ((Mapping(1 << 40, 0x4000_0000, 0x1000, 7), Error.ADDR_OVERFLOW),
                       (Mapping(BASE, layout.SHIM_BASE, 0x1000, 7), Error.ADDR_INVALID),
                       (Mapping(BASE, 0x1000, 0x1000, 7), Error.ADDR_INVALID)):  # fmt: skip
        try:
            t.build(0x80, [bad])
            raise AssertionError(bad)
        except HypError as e:
            assert e.error == error
    assert t.owner == {}


@given(st.lists(st.tuples(st.integers(0, 63), st.integers(0, 255), st.integers(1, 16),
                          st.sampled_from([RIGHT_R, RIGHT_R | RIGHT_W, RIGHTS_RWX])),
                max_size=6))  # fmt: skip
def test_any_vms_tables_walk_to_exactly_its_mappings(spec: list[tuple[int, int, int, int]]) -> None:
    """Any set of page runs (disjoint IPAs): each page walks to its physical
    page with its rights, the pages around them to nothing; the tables are
    freed and zeroed on release."""
    maps, taken = [], set()
    for slot, phys_page, pages, rights in spec:
        ipa = BASE + slot * (4 << 20)  # 4 MiB apart: never overlapping
        if slot in taken:
            continue
        taken.add(slot)
        maps.append(Mapping(ipa, 0x4000_0000 + phys_page * 0x1000, pages * 0x1000, rights))
    t = _pool()
    try:
        root = t.build(0x81, maps)
    except HypError as e:
        assert e.error == Error.NOMEM and t.owner == {}
        return
    for m in maps:
        for off in range(0, m.size, 0x1000):
            got = t.walk(root, m.ipa + off)
            assert got & stage2.OA_MASK == m.phys + off
            assert got & 0x7FC == stage2.access(m.rights) & 0x7FC
        assert t.walk(root, m.end) == 0 and t.walk(root, m.ipa - 0x1000) == 0
    t.release(0x81)
    assert t.owner == {} and not any(t.words)


class _Shim:
    """The mailbox side of a run: what the shim would leave in the context."""

    def __init__(self) -> None:
        self.runs: list[tuple[int, int, int, bool]] = []
        self.kicks: list[int] = []
        self.wake_at: list[int] = []
        self.exit: tuple[int, int, int, int, int] = (layout.EXIT_SYNC, 0, 0, 0, 0)
        self.fired = 0  # RUN_*_FIRED the run's end reports
        self.world: World | None = None

    def set_wake_at(self, counter: int) -> None:
        self.wake_at.append(counter)

    def run_world(self, cpu: int, context: int, vttbr: int, flush: bool, kick: int = 0) -> None:
        self.runs.append((cpu, context, vttbr, flush))
        self.kicks.append(kick)
        assert self.world is not None
        at = (context - layout.VCPU_CONTEXTS_BASE) // 8
        kind, esr, far, hpfar, pc = self.exit
        for word, value in ((EXIT, kind), (ESR, esr), (FAR, far), (HPFAR, hpfar), (PC, pc)):
            self.world.contexts[at + word] = value
        self.world.contexts[at + FLAGS] |= self.fired


def _world() -> tuple[World, _Shim]:
    shim = _Shim()
    world = World(bytearray(layout.VCPU_CONTEXTS * layout.VCPU_CONTEXT_SIZE),
                  bytearray(layout.GUEST_STAGE2_PAGES * 4096), shim, lambda: 1)  # fmt: skip
    shim.world = world
    return world, shim


def test_a_vcpu_powers_on_in_its_slot_and_runs_on_the_calling_cpu_with_its_vmid() -> None:
    world, shim = _world()
    vcpus = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0, 1])
    v0, v1 = vcpus[0], vcpus[1]
    assert (v0.slot, v1.slot) == (0, 1)
    v1.poweron(BASE + 0x40, 0x1234)
    at = v1.at
    assert world.contexts[at + X] == 0x1234 and world.contexts[at + PC] == BASE + 0x40
    assert world.contexts[at + PSTATE] == 0x3C5
    assert world.contexts[at + SYSREG["sctlr_el1"]] == 0x30D0_0800
    assert v1.exception_state() == (0x3C5, 0, BASE + 0x40)
    # an HVC: the syndrome's PC is the HVC's, its registers the vCPU's
    v1.write_regs({0: 0x8400_0008, 30: 7, 31: 9})
    shim.exit = (layout.EXIT_SYNC, 0x5A00_0000, 0, 0, BASE + 0x44)
    s = v1.enter(1000)
    assert s is not None and s.ec == vmmio.EC_HVC64 and s.pc == BASE + 0x40
    assert s.regs[0] == 0x8400_0008 and s.regs[30] == 7 and s.ipa is None
    cpu, context, vttbr, flush = shim.runs[0]
    assert cpu == 1 and context == layout.VCPU_CONTEXTS_BASE + layout.VCPU_CONTEXT_SIZE
    assert vttbr == POOL | 0x80 << 48 and flush  # its own VMID; flushed on its first run
    # a store to the VMMIO window: the IPA from HPFAR_EL2 and FAR's page offset
    esr = vmmio.data_abort_esr(write=True, size=4, reg=0, dfsc=0x05)
    shim.exit = (layout.EXIT_SYNC, esr, 0x900_0018, 0x90000, BASE + 0x48)
    s = v1.enter(1000)
    assert s is not None and s.ipa == 0x900_0018 and s.pc == BASE + 0x48
    assert shim.runs[1][3] is False  # flushed once
    access = vmmio.decode_access(s)
    assert access is not None and access.write and access.size == 4
    # the host's interrupt: ready
    shim.exit = (layout.EXIT_IRQ, 0, 0, 0, BASE + 0x48)
    assert v1.enter(1000) is None
    v1.skip()
    assert world.contexts[at + PC] == BASE + 0x4C


def test_a_kick_for_a_vcpu_running_on_another_cpu_goes_with_the_next_run() -> None:
    """docs/boot.md section 15: news for a vCPU that runs now on another CPU
    (`kick`) goes with the next run that starts, as a bit for that CPU,
    once; a vCPU that runs nowhere, or ran on the CPU now starting, gets
    none."""
    world, shim = _world()  # the calling CPU is 1
    vcpus = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0, 1])
    v0, v1 = vcpus[0], vcpus[1]
    v0.poweron(BASE, 0)
    v1.poweron(BASE, 0)
    v1.kick()  # runs nowhere: nothing
    v0.enter(1000)
    v1.on_cpu = 3  # as while its run waits on CPU 3
    v1.kick()
    v1.kick()
    v0.enter(1000)
    v0.enter(1000)
    v1.on_cpu = 1
    v1.kick()  # the CPU whose run starts next: its own run is over
    v0.enter(1000)
    assert shim.kicks == [0, 1 << 3, 0, 0] and v0.on_cpu is None and world.kicks == 0


def test_a_vcpu_waiting_for_its_timer_is_woken_at_the_tick_that_passes_it() -> None:
    """docs/boot.md section 17: a vCPU that waits in WFI with its virtual
    timer armed is published as every CPU's wake_at (the first such timer);
    a tick before its compare value does nothing; the one that passes it
    masks the timer, makes PPI 27 pending in its vGIC and wakes it; a vCPU
    whose timer is off or masked, or that runs, is not waited for."""
    from gunyah.model.vgic import VGic
    from gunyah.rm import vm_config

    world, shim = _world()
    gic = VGic(2, vm_config.GICD_BASE, vm_config.GICR_BASE)
    vcpus = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0, 1], gic)
    v0, v1 = vcpus[0], vcpus[1]
    for v in (v0, v1):
        v.poweron(BASE, 0)
    ctl, cval = SYSREG["cntv_ctl_el0"], SYSREG["cntv_cval_el0"]
    woken: list[int] = []
    world.contexts[v0.at + ctl], world.contexts[v0.at + cval] = 1, 5000  # armed
    world.contexts[v1.at + ctl], world.contexts[v1.at + cval] = 3, 100  # masked
    v0.sleep(lambda: woken.append(0))
    v1.sleep(lambda: woken.append(1))
    assert shim.wake_at[-1] == 5000 and list(world.sleeping) == [v0]
    world.tick(4999)
    assert woken == [] and shim.wake_at[-1] == 5000
    world.tick(5001)
    assert woken == [0] and shim.wake_at[-1] == 0 and not world.sleeping
    assert world.contexts[v0.at + ctl] == 3 and gic.redist[0].irqs[27].pending
    v0.sleep(lambda: woken.append(0))  # it ran: waited for no more
    assert shim.wake_at[-1] == 0  # its timer is masked now
    world.contexts[v0.at + ctl] = 1
    v0.sleep(lambda: woken.append(0))
    v0.enter(1000)
    assert shim.wake_at[-1] == 0 and not world.sleeping
    v0.sleep(lambda: woken.append(0))
    world.release(0x80)  # a VM that goes takes its waiting vCPUs along
    assert shim.wake_at[-1] == 0 and not world.sleeping


def test_a_waiting_vcpus_physical_timer_wakes_it_and_only_what_fired_is_taken() -> None:
    """docs/boot.md section 20: the EL1 physical timer (CNTP, PPI 30) wakes a
    waiting vCPU as its virtual timer does. With both armed, wake_at is the
    earlier; the tick that passes it takes that timer only (masked, its PPI
    pending); the other stays armed, and the vCPU waits for it next."""
    from gunyah.model.vgic import VGic
    from gunyah.rm import vm_config

    world, shim = _world()
    gic = VGic(1, vm_config.GICD_BASE, vm_config.GICR_BASE)
    (v0,) = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0], gic).values()
    v0.poweron(BASE, 0)
    vctl, vcval = SYSREG["cntv_ctl_el0"], SYSREG["cntv_cval_el0"]
    pctl, pcval = SYSREG["cntp_ctl_el0"], SYSREG["cntp_cval_el0"]
    world.contexts[v0.at + vctl], world.contexts[v0.at + vcval] = 1, 9000
    world.contexts[v0.at + pctl], world.contexts[v0.at + pcval] = 1, 3000
    woken: list[int] = []
    v0.sleep(lambda: woken.append(0))
    assert shim.wake_at[-1] == 3000
    world.tick(3000)
    assert woken == [0] and world.contexts[v0.at + pctl] == 3
    assert world.contexts[v0.at + vctl] == 1  # not due: still armed
    assert gic.redist[0].irqs[30].pending and not gic.redist[0].irqs[27].pending
    v0.sleep(lambda: woken.append(1))
    assert shim.wake_at[-1] == 9000


def test_a_timers_ppi_stays_pending_only_while_its_level_holds() -> None:
    """docs/boot.md section 20: a timer that fired in a run makes its PPI
    pending; the shim's IMASK keeps it so across later exits; once the guest
    turns the timer off, moves its compare value on or masks it itself, the
    PPI is pending no more (a level-sensitive line that fell), though taken
    it would have been: kvm-unit-tests' timer test asks this of the GIC."""
    from gunyah.model.vgic import VGic
    from gunyah.rm import vm_config

    world, shim = _world()
    gic = VGic(1, vm_config.GICD_BASE, vm_config.GICR_BASE)
    (v0,) = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0], gic).values()
    v0.poweron(BASE, 0)
    ctl, cval = v0.at + SYSREG["cntv_ctl_el0"], v0.at + SYSREG["cntv_cval_el0"]
    ppi = gic.redist[0].irqs[27]
    enabled, masked, istatus = 1, 2, 4

    def exit_with(control: int, fired: int = 0) -> None:
        world.contexts[ctl] = control  # what the shim saved at the exit
        shim.fired = fired
        v0.enter(1000)

    world.contexts[cval] = 500
    exit_with(enabled | masked | istatus, layout.RUN_VTIMER_FIRED)
    assert ppi.pending
    exit_with(enabled | masked | istatus)  # untouched since: still pending
    assert ppi.pending
    exit_with(0)  # the guest turned it off
    assert not ppi.pending
    exit_with(enabled | masked | istatus, layout.RUN_VTIMER_FIRED)
    world.contexts[cval] = 900_000  # moved on: ISTATUS falls too
    exit_with(enabled)
    assert not ppi.pending
    # masked by the guest itself (not by the shim): the line falls
    exit_with(enabled | masked | istatus, layout.RUN_VTIMER_FIRED)
    world.contexts[cval] = 501
    exit_with(enabled | masked | istatus)
    assert not ppi.pending


def test_an_abort_injected_enters_the_guests_vector_as_the_hardware_would() -> None:
    world, _ = _world()
    (v,) = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0]).values()
    v.poweron(BASE, 0)
    at = v.at
    world.contexts[at + SYSREG["vbar_el1"]] = BASE + 0x800
    world.contexts[at + PSTATE] = 0xF000_0005 | 1 << 24  # NZCV and DIT set, EL1h, unmasked
    world.contexts[at + SYSREG["sctlr_el1"]] = 0x30D0_0800 & ~(1 << 23)  # SPAN clear
    v.inject(0x9600_0010, 0x4000_0000, SYNC_CURRENT_SPX)
    assert world.contexts[at + PC] == BASE + 0xA00
    assert world.contexts[at + SYSREG["elr_el1"]] == BASE
    assert world.contexts[at + SYSREG["spsr_el1"]] == 0xF000_0005 | 1 << 24
    assert world.contexts[at + SYSREG["esr_el1"]] == 0x9600_0010
    assert world.contexts[at + SYSREG["far_el1"]] == 0x4000_0000
    # NZCV and DIT kept, DAIF masked, EL1h, PAN set (SCTLR_EL1.SPAN clear)
    assert world.contexts[at + PSTATE] == 0xF000_0000 | 1 << 24 | 1 << 22 | 0x3C5
    # out of reset SCTLR_EL1.SPAN is set: PAN is left as it was
    world.contexts[at + SYSREG["sctlr_el1"]] = 0x30D0_0800
    world.contexts[at + PSTATE] = 0x5
    v.inject(0x9600_0010, 0, SYNC_CURRENT_SPX)
    assert world.contexts[at + PSTATE] == 0x3C5


def test_vms_get_distinct_vmids_slots_and_tables_back_when_they_go() -> None:
    world, _ = _world()
    m = [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)]
    a = world.start(0x80, m, [0])[0]
    b = world.start(0x180, m, [0])[0]  # the same low 8 bits: another VMID
    assert a.vm.vttbr >> 48 == 0x80 and b.vm.vttbr >> 48 not in (0, 0x80)
    assert a.slot != b.slot and a.vm.vttbr & 0xFFFF_FFFF != b.vm.vttbr & 0xFFFF_FFFF
    free = world.tables.free()
    world.release(0x80)
    assert world.tables.free() == free + 3 and 0x80 not in world.vms
    assert not any(world.contexts[a.at : a.at + CONTEXT_WORDS])
    c = world.start(0x100, m, [0])[0]  # low bits 0: never the primary's VMID 0
    assert c.vm.vttbr >> 48 not in (0, b.vm.vttbr >> 48) and c.slot == a.slot
    try:
        world.start(0x200, m, list(range(layout.VCPU_CONTEXTS)))
        raise AssertionError("more vCPUs than slots")
    except HypError as e:
        assert e.error == Error.NOMEM


def test_a_run_the_shim_refused_is_an_error_not_an_exit() -> None:
    """The shim refuses a context it would not run (outside its slots, or a
    PSTATE not AArch64 EL0 or EL1: an ERET to EL2 would hand it over); the
    host hears EXIT_REFUSED, which is a bug of its own, never a guest's exit."""
    import pytest

    world, shim = _world()
    (v,) = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0]).values()
    v.poweron(BASE, 0)
    shim.exit = (layout.EXIT_REFUSED, 0, 0, 0, BASE)
    with pytest.raises(RuntimeError, match="refused"):
        v.enter(1000)
    for kind in (layout.EXIT_FIQ, layout.EXIT_SERROR):  # the host's interrupts: ready
        shim.exit = (kind, 0, 0, 0, BASE)
        assert v.enter(1000) is None


@given(st.sampled_from([layout.EXIT_SYNC, layout.EXIT_IRQ, layout.EXIT_FIQ, layout.EXIT_SERROR]),
       st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1),
       st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1),
       st.lists(st.integers(0, (1 << 64) - 1), min_size=31, max_size=31))  # fmt: skip
def test_any_exit_reads_back_as_a_syndrome_or_ready(kind: int, esr: int, far: int, hpfar: int,
                                                    pc: int, regs: list[int]) -> None:  # fmt: skip
    """Whatever the guest left in its registers and the hardware in the
    syndrome registers, a run comes back as one Syndrome (the vCPU's X0..X30,
    a 32-bit ESR, an IPA only for a stage-2 abort that has one) or None."""
    world, shim = _world()
    (v,) = world.start(0x80, [Mapping(BASE, 0x4020_0000, 2 << 20, RIGHTS_RWX)], [0]).values()
    v.poweron(BASE, 0)
    v.write_regs(dict(enumerate(regs)))
    shim.exit = (kind, esr, far, hpfar, pc)
    s = v.enter(1)
    if kind != layout.EXIT_SYNC:
        assert s is None
        return
    assert s is not None and s.regs == tuple(regs) and 0 <= s.esr < 1 << 32
    assert s.esr == esr & 0xFFFF_FFFF and s.far == far
    assert s.pc == ((pc - 4) % (1 << 64) if s.ec == vmmio.EC_HVC64 else pc)
    abort = s.ec in (vmmio.EC_DATA_ABORT_LOWER, vmmio.EC_INST_ABORT_LOWER)
    if not abort or not 0x04 <= esr & 0x3F < 0x10:
        assert s.ipa is None
    else:
        assert s.ipa is not None and s.ipa % 4096 == far % 4096 and s.ipa < 1 << 52
    vmmio.decode_access(s)  # never raises
