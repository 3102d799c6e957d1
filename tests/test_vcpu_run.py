"""vcpu_run: a secondary VM's vCPU on the unicorn engine, run by its owner
(gunyah.model.vcpu_run, gunyah.vcpu.secondary), against the table measured on
the real Gunyah (docs/real-gunyah.md section 13) and the hypervisor's sources."""

from __future__ import annotations

import struct
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gunyah.model import vcpu_run as vr
from gunyah.model import vmmio
from gunyah.model.vcpu_run import SecondaryVcpu, SecondaryVm, secondary_hypervisor
from gunyah.model.vmmio import Syndrome
from gunyah.vcpu.loader import Image, Segment
from gunyah.vcpu.secondary import Region, RegionError, UnicornSecondary

SRC = Path(__file__).resolve().parent / "guests" / "secondary"
BASE = 0x8000_0000  # the VM's memory base-address (docs/real-gunyah.md section 12)
DT = 0x8000_1000  # x0 at entry: the device tree, 0x1000 into the parcel
PARCEL = 0x20_0000
GUARD = 0x1000
X1 = 0x1122334455667788  # what cases.S puts in x1
VMID, OWNER = 0x80, 3
MAX_READY = 1000  # ready returns skipped between two exits, at most


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Image]:
    from gunyah.toolchain import build
    from gunyah.vcpu.loader import load_elf

    out = tmp_path_factory.mktemp("secondary")
    link = ("-Wl,-T," + str(SRC / "secondary.ld"),)
    names = ("vmmio", "cases")
    return {n: load_elf(build([SRC / f"{n}.S"], out / f"{n}.elf", link)) for n in names}


@dataclass
class Guest:
    vm: SecondaryVm
    cpu: SecondaryVcpu
    host: bytearray  # guard page, the parcel, guard page
    exits: list[tuple[int, int, int]] = field(default_factory=list)

    def parcel(self, ipa: int, size: int) -> bytes:
        off = GUARD + ipa - BASE
        return bytes(self.host[off : off + size])

    def exit_of_run(self, resume: int = 0) -> tuple[int, ...]:
        """The next result that is not ready (the real one returns ready
        after host interrupts, any number of times between two exits)."""
        for _ in range(MAX_READY):
            r = self.cpu.run(resume)
            resume = 0
            if r[1] != vr.READY:
                return r
        raise AssertionError("the vCPU only ever said ready")


def guest(image: Image, *, budget: int = vr.DEFAULT_BUDGET, **kw: object) -> Guest:
    host = bytearray(b"\xaa" * GUARD + bytes(PARCEL) + b"\xaa" * GUARD)
    for s in image.segments:
        off = GUARD + s.address - BASE
        host[off : off + len(s.data)] = s.data
    parcel = memoryview(host)[GUARD : GUARD + PARCEL]
    vm = SecondaryVm(VMID, OWNER, memory=[(BASE, PARCEL)])
    g = Guest(vm, None, host)  # type: ignore[arg-type]
    vm.on_vm_exit = lambda *a: g.exits.append(a)
    g.cpu = SecondaryVcpu(vm, 0, UnicornSecondary([Region(BASE, parcel)]),
                          secondary_hypervisor(), budget=budget, **kw)  # type: ignore[arg-type]  # fmt: skip
    return g


def raw(*words: int) -> Image:
    """A guest of these instruction words at the entry (the rest zeros)."""
    return Image((Segment(BASE, struct.pack(f"<{len(words)}I", *words), 4 * len(words)),),
                 BASE, "words")  # fmt: skip


def case(images: dict[str, Image], n: int, vectors: bool = False, **kw: object) -> Guest:
    g = guest(images["cases"], **kw)  # type: ignore[arg-type]
    g.cpu.poweron(BASE, n | (0x100 if vectors else 0))
    return g


# -- the constants, from their sources ------------------------------------------
def test_states_are_the_hypervisors() -> None:
    """hyp/interfaces/vcpu_run/vcpu_run.tc, hyp/mem/addrspace/aarch64/addrspace.tc,
    hyp/interfaces/psci/psci.tc, include/psci.h; vcpu_aarch64.tc for WFI."""
    assert (vr.READY, vr.EXPECTS_WAKEUP, vr.POWERED_OFF, vr.BLOCKED) == (0, 1, 2, 3)
    assert (vr.VMMIO_READ, vr.VMMIO_WRITE, vr.FAULT, vr.PSCI_SYSTEM_RESET) == (4, 5, 6, 0x100)
    assert vr.POWEROFF_EXITED == 1 and vr.WAKEUP_FROM_WFI == 1
    assert (vr.WAKEUP_FROM_PSCI_CPU_SUSPEND, vr.WAKEUP_FROM_PSCI_SYSTEM_SUSPEND) == (2, 3)
    assert (vr.PSCI_REQUEST_SYSTEM_RESET, vr.PSCI_REQUEST_SYSTEM_RESET2_64) == (1 << 63, 1 << 62)
    assert vr.ERROR_BUSY == 31
    # quic/gunyah-resource-manager include/vm_mgnt.h
    assert (vr.EXIT_PLATFORM_OFF, vr.EXIT_PLATFORM_RESET, vr.EXIT_PSCI_SYSTEM_RESET2,
            vr.EXIT_SOFTWARE_ERROR) == (1, 2, 3, 5)  # fmt: skip


def test_results_are_the_native_calls_registers() -> None:
    """run()'s five values are vcpu_run's declared outputs, x0 error, x1 state,
    x2..x4 data, as the native table writes them."""
    from gunyah.abi.hvc import DECLARED
    from gunyah.model.hypercalls import _native_values

    call = DECLARED[0x65]
    assert call.name == "vcpu_run"
    assert [o.name for o in call.outputs] == ["error", "vcpu_state", "state_data_0",
                                              "state_data_1", "state_data_2"]  # fmt: skip
    result = (0, vr.VMMIO_WRITE, 0x6030, 1, X1)
    assert _native_values(call, result) == [0, 5, 0x6030, 1, X1, 0, 0, 0]
    assert call.checks_reserved and [i for i, _ in call.reserved] == [4]


# -- the measured sequence ---------------------------------------------------------
MEASURED = [  # guest instruction: (state, x2, x3, x4), what the owner resumes with
    ("str x0, [0x6000]", (5, 0x6000, 8, 0x5100000000008001), 0),
    ("str x1, [0x6008]", (5, 0x6008, 8, 0x10000EFF), 0),
    ("str x19, [0x6010]", (5, 0x6010, 8, DT), 0),
    ("ldr x21, [0x6018]", (4, 0x6018, 8, 0), 0x1122334455667788),
    ("str x21, [0x6020]", (5, 0x6020, 8, 0x1122334455667788), 0),
    ("ldr w22, [0x6028]", (4, 0x6028, 4, 0), 0xA5A5A5A5),
    ("str w22, [0x602c]", (5, 0x602C, 4, 0xA5A5A5A5), 0),
    ("strb w21, [0x6030]", (5, 0x6030, 1, 0x1122334455667788), 0),
]


def test_the_measured_table(images: dict[str, Image]) -> None:
    g = guest(images["vmmio"])
    assert g.cpu.run() == (0, vr.POWERED_OFF, 0, 0, 0)  # before VM_START
    g.cpu.poweron(BASE, DT)
    resume = 0
    for insn, (state, x2, x3, x4), then in MEASURED:
        assert g.exit_of_run(resume) == (0, state, x2, x3, x4), insn
        resume = then
    assert g.exits == []
    assert g.exit_of_run() == (0, vr.POWERED_OFF, vr.POWEROFF_EXITED, 0, 0)  # SYSTEM_OFF
    assert g.exits == [(VMID, vr.EXIT_PLATFORM_OFF, 0)]
    for _ in range(3):
        assert g.cpu.run(0x5E5E) == (0, vr.POWERED_OFF, 1, 0, 0)
    assert len(g.exits) == 1


def test_a_call_that_runs_it_again_is_busy(images: dict[str, Image]) -> None:
    """vcpu_run.c: a vCPU another caller is running answers BUSY."""
    g = guest(images["vmmio"])
    inner: list[tuple[int, ...]] = []
    g.vm.on_vm_exit = lambda *a: inner.append(g.cpu.run())
    g.cpu.poweron(BASE, DT)
    while not inner:
        r = g.cpu.run(0)
        assert r[0] == 0
    assert inner == [(vr.ERROR_BUSY, 0, 0, 0, 0)]


# -- loads and stores the measurement did not cover: as the source decides ---------
def test_loads_are_resumed_as_vdevice_c_writes_them(images: dict[str, Image]) -> None:
    g = case(images, 9)
    rows = [  # the load's IPA, size, resume, then what its register held when stored
        (0x6050, 1, 0x80, 0xFFFF_FFFF_FFFF_FF80),  # ldrsb x3
        (0x6060, 2, 0x8000, 0xFFFF_8000),  # ldrsh w4: extended, then cut to 32 bits
        (0x6070, 1, 0x1234, 0x1234),  # ldrb w5: not masked to a byte
        (0x6080, 4, 0x1_8000_0000, 0x8000_0000),  # ldrsw x6: (v ^ bit) - bit, no sign
        (0x6090, 2, X1, 0x55667788),  # ldrh w7: cut to 32 bits only
    ]
    for ipa, size, resume, held in rows:
        assert g.exit_of_run() == (0, vr.VMMIO_READ, ipa, size, 0)
        assert g.exit_of_run(resume) == (0, vr.VMMIO_WRITE, ipa + 8, 8, held)
    assert g.exit_of_run() == (0, vr.VMMIO_READ, 0x60A0, 8, 0)  # ldr xzr
    assert g.exit_of_run(X1) == (0, vr.POWERED_OFF, 1, 0, 0)


def test_other_forms_with_a_valid_iss(images: dict[str, Image]) -> None:
    g = case(images, 15)
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x6100, 4, X1)  # str w1, [x20, x8]
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x5FF8, 8, X1)  # stur x1, [x20, #-8]
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x6000, 2, X1)  # stlrh w1
    assert g.exit_of_run() == (0, vr.VMMIO_READ, 0x6000, 8, 0)  # ldar x9
    assert g.exit_of_run(0xDEAD) == (0, vr.VMMIO_WRITE, 0x6008, 8, 0xDEAD)


def test_a_store_of_xzr(images: dict[str, Image]) -> None:
    assert case(images, 12).exit_of_run() == (0, vr.VMMIO_WRITE, 0x6000, 8, 0)


def test_its_own_memory_is_the_parcel(images: dict[str, Image]) -> None:
    g = case(images, 13)
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x6010, 8, X1)
    assert g.parcel(0x8010_0000, 8) == struct.pack("<Q", X1)


# an abort the hypervisor does not emulate: a synchronous external abort at the
# guest's vector (exception_inject.c): ESR_EL1 EC 0x25, IL, DFSC 0x10
INJECTED_DATA_ABORT = 0x9600_0010
SPSR_EL1H_MASKED = 0x3C5


@pytest.mark.parametrize(("n", "what"), [(0, "stp"), (1, "outside"), (2, "ldxr"), (3, "str post")])
def test_an_abort_it_does_not_emulate_reaches_the_guest(
    images: dict[str, Image], n: int, what: str
) -> None:
    g = case(images, n, vectors=True)
    esr = g.exit_of_run()
    assert esr[:4] == (0, vr.VMMIO_WRITE, 0x7000, 8), what
    assert esr[4] == INJECTED_DATA_ABORT
    elr = g.exit_of_run()[4]
    assert elr >> 12 == BASE >> 12 and struct.unpack("<I", g.parcel(elr, 4))[0] >> 22 != 0
    far = g.exit_of_run()[4]
    assert far == (0x4000_0000 if what == "outside" else 0x6000)
    assert g.exit_of_run()[4] == SPSR_EL1H_MASKED
    assert g.exit_of_run() == (0, vr.POWERED_OFF, 1, 0, 0)
    assert g.exits == [(VMID, vr.EXIT_PLATFORM_OFF, 0)]


def test_without_vectors_an_abort_is_a_fault(images: dict[str, Image]) -> None:
    """VBAR_EL1 0: the injected abort's vector (0x200) is no memory of the VM,
    and its fetch aborts from that vector: the debug build halts the vCPU."""
    g = case(images, 1)
    assert g.exit_of_run() == (0, vr.FAULT, 0, 0, 0)
    assert g.exits == [(VMID, vr.EXIT_SOFTWARE_ERROR, 0)]
    assert g.cpu.run() == (0, vr.POWERED_OFF, 1, 0, 0)


def test_an_abort_in_its_own_vector_is_a_fault(images: dict[str, Image]) -> None:
    g = case(images, 14, vectors=True)
    assert g.exit_of_run() == (0, vr.FAULT, 0, 0, 0)
    assert g.exits == [(VMID, vr.EXIT_SOFTWARE_ERROR, 0)]


# -- PSCI, WFI, the budget ---------------------------------------------------------------
def test_system_reset(images: dict[str, Image]) -> None:
    g = case(images, 10)
    assert g.exit_of_run() == (0, vr.PSCI_SYSTEM_RESET, 1 << 63, 0, 0)
    assert g.exits == [(VMID, vr.EXIT_PLATFORM_RESET, 0)]
    assert g.cpu.run() == (0, vr.POWERED_OFF, 1, 0, 0)


def test_system_reset2_64(images: dict[str, Image]) -> None:
    g = case(images, 11)
    assert g.exit_of_run() == (0, vr.PSCI_SYSTEM_RESET, 1 << 62 | 0x8000_0001,
                               0xC00C_0000_0000_001E, 0)  # fmt: skip
    assert g.exits == [(VMID, vr.EXIT_PSCI_SYSTEM_RESET2, 0)]


def test_wfi_expects_a_wakeup(images: dict[str, Image]) -> None:
    woken: list[int] = []
    g = case(images, 4, on_wakeup=woken.append)
    assert woken == [0]  # its power-on
    for _ in range(3):
        assert g.exit_of_run() == (0, vr.EXPECTS_WAKEUP, 0, vr.WAKEUP_FROM_WFI, 0)
    g.cpu.wake()
    assert woken == [0, 0]
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x6040, 8, X1)


def test_cpu_on_starts_the_vms_other_vcpu(images: dict[str, Image]) -> None:
    g = guest(images["cases"])
    hyp = secondary_hypervisor(cpus=2)
    g.cpu.handler = hyp
    parcel = memoryview(g.host)[GUARD : GUARD + PARCEL]
    woken: list[int] = []
    second = SecondaryVcpu(g.vm, 1, UnicornSecondary([Region(BASE, parcel)]), hyp,
                           on_wakeup=woken.append)  # fmt: skip
    assert second.run() == (0, vr.POWERED_OFF, 0, 0, 0)
    g.cpu.poweron(BASE, 16)
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x6000, 8, 0)  # CPU_ON: SUCCESS
    assert woken == [1]
    assert second.run() == (0, vr.VMMIO_WRITE, 0x6200, 8, 0x42)  # its context in x0
    assert second.run() == (0, vr.POWERED_OFF, 1, 0, 0)  # SYSTEM_OFF: the whole VM
    assert g.cpu.run() == (0, vr.POWERED_OFF, 1, 0, 0)
    assert g.exits == [(VMID, vr.EXIT_PLATFORM_OFF, 0)]


# -- hostile secondaries ------------------------------------------------------------------
def test_a_spinning_guest_is_ready_each_call(images: dict[str, Image]) -> None:
    g = case(images, 5, budget=20_000)
    for _ in range(5):
        assert g.cpu.run() == (0, vr.READY, 0, 0, 0)


def test_a_guest_calling_the_hypervisor_for_ever_is_ready_each_call() -> None:
    """Calls served in the hypervisor do not end vcpu_run; a bound on them per
    call does, as a host interrupt would."""
    g = guest(raw(0xD40C0002, 0x17FFFFFF), max_traps=50)  # hvc #0x6000; b .-4
    g.cpu.poweron(BASE, DT)
    for _ in range(5):
        assert g.cpu.run() == (0, vr.READY, 0, 0, 0)


def test_a_guest_looping_in_its_own_exceptions_is_ready_each_call() -> None:
    """Its vector is an undefined instruction: each exception taken raises the
    next, and no instruction completes to spend the budget. A bound on the
    exceptions one call injects ends it, as a host interrupt would."""
    g = guest(raw(0xD518C000, 0x00000000))  # msr vbar_el1, x0 (the base); udf #0
    g.cpu.poweron(BASE, BASE)  # x0: the vectors at the base, zeros (udf) at +0x200
    for _ in range(3):
        assert g.cpu.run() == (0, vr.READY, 0, 0, 0)


def test_garbage_without_vectors_is_a_fault(images: dict[str, Image]) -> None:
    g = case(images, 6)
    assert g.exit_of_run() == (0, vr.FAULT, 0, 0, 0)


def test_garbage_with_vectors_is_the_guests_undefined_instruction(
    images: dict[str, Image],
) -> None:
    g = case(images, 6, vectors=True)
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0x7000, 8, 0x0200_0000)  # EC 0, IL
    elr = g.exit_of_run()[4]
    assert struct.unpack("<I", g.parcel(elr, 4))[0] == 0  # the .inst 0


def test_a_flood_of_exits_keeps_memory_bounded(images: dict[str, Image]) -> None:
    g = case(images, 7)
    for _ in range(200):
        assert g.cpu.run() == (0, vr.VMMIO_WRITE, 0x6000, 8, X1)
    tracemalloc.start()
    try:
        for _ in range(300):
            g.cpu.run()
        first = tracemalloc.get_traced_memory()[0]
        for _ in range(1200):
            assert g.cpu.run() == (0, vr.VMMIO_WRITE, 0x6000, 8, X1)
        grown = tracemalloc.get_traced_memory()[0] - first
    finally:
        tracemalloc.stop()
    assert grown < 64 << 10


def test_a_guest_that_writes_everywhere(images: dict[str, Image]) -> None:
    g = case(images, 8)
    for ipa in (0, 0x1000_0000, 0x2000_0000, 0x3000_0000):
        assert g.exit_of_run() == (0, vr.VMMIO_WRITE, ipa, 8, X1)
    assert g.exit_of_run() == (0, vr.FAULT, 0, 0, 0)  # past its memory's end
    assert g.host[:GUARD] == b"\xaa" * GUARD and g.host[-GUARD:] == b"\xaa" * GUARD
    pattern = struct.pack("<Q", X1)
    assert all(g.parcel(a, 8) == pattern for a in range(0x8010_0000, 0x8020_0000, 0x1000))


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, (1 << 32) - 1), min_size=1, max_size=8))
def test_any_instructions_give_states_not_errors(words: list[int]) -> None:
    g = guest(raw(*words), budget=5_000, max_traps=8)
    g.cpu.poweron(BASE, DT)
    for _ in range(20):
        r = g.cpu.run(0x5A5A)
        assert r[0] == 0 and r[1] in vr.STATES
        if r[1] in (vr.FAULT, vr.POWERED_OFF, vr.PSCI_SYSTEM_RESET):
            break
    assert g.host[:GUARD] == b"\xaa" * GUARD and g.host[-GUARD:] == b"\xaa" * GUARD


@given(
    st.lists(st.tuples(st.integers(0, 64), st.integers(1, 32)), max_size=4),
    st.integers(0, 100), st.sampled_from([1, 2, 4, 8]),
)  # fmt: skip
def test_vmmio_covers_an_access_only_whole(
    ranges: list[tuple[int, int]], ipa: int, size: int
) -> None:
    vm = SecondaryVm(VMID, OWNER, vmmio=ranges)
    covered = {b for base, length in ranges for b in range(base, base + length)}
    assert vm.in_vmmio(ipa, size) == all(b in covered for b in range(ipa, ipa + size))


def test_the_window_is_the_rms() -> None:
    vm = SecondaryVm(VMID, OWNER)
    assert vm.vmmio == [(0, 0x4000_0000)]  # docs/real-gunyah.md section 12
    assert vm.in_vmmio(0x3FFF_FFF8, 8) and not vm.in_vmmio(0x3FFF_FFFC, 8)


# -- the memory it is given ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("regions", "why"),
    [
        (lambda: [Region(BASE + 1, bytearray(0x1000))], "pages"),
        (lambda: [Region(BASE, bytearray(0x1001))], "pages"),
        (lambda: [Region(BASE, bytearray(0x2000)), Region(BASE + 0x1000, bytearray(0x1000))],
         "overlaps"),
        (lambda: [Region(BASE + 0x1000, bytearray(0x2000)), Region(BASE, bytearray(0x2000))],
         "overlaps"),  # one that begins before it
        (lambda: [Region(BASE + 0x3000, bytearray(0x1000)), Region(BASE, bytearray(0x1000)),
                  Region(BASE + 0x3000, bytearray(0x1000))], "overlaps"),  # an equal one
        (lambda: [Region(BASE, bytes(0x1000))], "writable"),
        (lambda: [Region(1 << 48, bytearray(0x1000))], "48-bit"),
        (lambda: [Region(BASE, bytearray(0x1000), rights=8)], "rights"),
    ],
)  # fmt: skip
def test_regions_it_refuses(regions: Callable[[], list[Region]], why: str) -> None:
    with pytest.raises(RegionError, match=why):
        UnicornSecondary(regions())


def test_the_vgics_accesses_are_emulated_not_exits() -> None:
    """A load of the vGIC's GICD_PIDR2 (at the RM's 0x40010000, outside the
    VMMIO window) gets the real vGIC's 0x30 in its register with no exit,
    and a store to its redistributor's GICR_WAKER is taken: only the
    guest's two stores to VMMIO, of what it read, come back."""
    from gunyah.model.vgic import VGic
    from gunyah.rm import vm_config

    g = guest(raw(
        0xD2A80021,  # movz x1, #0x4001, lsl #16
        0xF29FFD01,  # movk x1, #0xffe8: GICD_PIDR2
        0xB9400022,  # ldr w2, [x1]
        0xD2800003,  # movz x3, #0
        0xF9000062,  # str x2, [x3]: a VMMIO write of what it read
        0xD2A80041,  # movz x1, #0x4002, lsl #16
        0x91005021,  # add x1, x1, #0x14: GICR_WAKER
        0x52800004,  # mov w4, #0: awake
        0xB9000024,  # str w4, [x1]
        0xB9400025,  # ldr w5, [x1]
        0xF9000065,  # str x5, [x3]
    ))  # fmt: skip
    g.vm.vgic = VGic(1, vm_config.GICD_BASE, vm_config.GICR_BASE)
    g.cpu.poweron(BASE, DT)
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0, 8, 0x30)
    assert g.exit_of_run() == (0, vr.VMMIO_WRITE, 0, 8, 0)  # ProcessorSleep clear
    assert g.vm.vgic.redist[0].sleep is False


def test_a_wfi_with_an_interrupt_for_it_completes_at_once() -> None:
    """With an interrupt deliverable to it in its vGIC a vCPU's WFI does not
    wait (no EXPECTS_WAKEUP); without one it does."""
    from gunyah.model import vgic as vg
    from gunyah.rm import vm_config

    for deliverable in (True, False):
        g = guest(raw(
            0xD503207F,  # wfi
            0xD2800003,  # movz x3, #0
            0xF9000062,  # str x2, [x3]: a VMMIO write
        ))  # fmt: skip
        gic = vg.VGic(1, vm_config.GICD_BASE, vm_config.GICR_BASE)
        d = vm_config.GICD_BASE
        gic.access(0, d + vg.GICD_IGROUPR + 4, 4, True, 1 << 8)  # ID 40, Group 1
        gic.access(0, d + vg.GICD_ISENABLER + 4, 4, True, 1 << 8)
        gic.access(0, d + vg.GICD_CTLR, 4, True, 2)
        if deliverable:
            gic.raise_irq(40)
        g.vm.vgic = gic
        g.cpu.poweron(BASE, DT)
        state = g.exit_of_run()[1]
        assert state == (vr.VMMIO_WRITE if deliverable else vr.EXPECTS_WAKEUP)


# -- SGIs between a secondary's vCPUs ------------------------------------------------------
@dataclass
class _Scripted:
    """A backend that traps as it is told: each run gives the next syndrome
    (None: the host's interrupt came). Under `gunyah boot` the shim's world
    switch gives these, the GIC's system registers being real there."""

    traps: list[Syndrome | None]
    skipped: int = 0
    kicked: int = 0
    sleeping: Callable[[], None] | None = None

    def poweron(self, entry: int, context: int) -> None:
        pass

    def enter(self, budget: int) -> Syndrome | None:
        return self.traps.pop(0) if self.traps else None

    def write_regs(self, values: dict[int, int]) -> None:
        pass

    def skip(self) -> None:
        self.skipped += 1

    def exception_state(self) -> tuple[int, int, int]:
        return (vr.PSTATE_EL1H, 0, BASE)

    def inject(self, esr_el1: int, far: int, offset: int) -> None:
        pass

    def kick(self) -> None:
        self.kicked += 1

    def sleep(self, wake: Callable[[], None]) -> None:
        self.sleeping = wake


def _msr(reg: tuple[int, int, int, int, int], value: int, read: bool = False) -> Syndrome:
    op0, op1, crn, crm, op2 = reg
    regs = (0, 0, value) + (0,) * 28
    return Syndrome(vmmio.sysreg_esr(op0, op1, crn, crm, op2, rt=2, read=read), regs=regs, pc=BASE)


def test_an_sgi_write_is_emulated_and_wakes_the_vcpu_waiting_for_it() -> None:
    """A trapped MSR ICC_SGI1R_EL1 (hyp/vm/vgic/src/sysregs.c): the SGI goes
    pending in the target's bank, the writer goes on past the MSR, and the
    target, waiting in WFI with the SGI enabled, is woken (its owner's
    wake-up interrupt). Any other trapped system register halts the vCPU, as
    before."""
    from gunyah.model import vgic as vg
    from gunyah.rm import vm_config

    vm = SecondaryVm(VMID, OWNER)
    gic = vm.vgic = vg.VGic(2, vm_config.GICD_BASE, vm_config.GICR_BASE)
    sgi_base = vm_config.GICR_BASE + vg.GICR_SIZE + vg.FRAME  # vCPU 1's
    gic.access(1, sgi_base + vg.GICR_IGROUPR0, 4, True, 1 << 3)
    gic.access(1, sgi_base + vg.GICR_ISENABLER0, 4, True, 1 << 3)
    gic.access(0, vm_config.GICD_BASE + vg.GICD_CTLR, 4, True, 2)  # EnableGrp1
    hyp = secondary_hypervisor(cpus=2)
    woken: list[int] = []
    wfi = Syndrome(vmmio.ESR.encode({"EC": vmmio.EC_WFX, "IL": True}), pc=BASE)
    a = SecondaryVcpu(vm, 0, _Scripted([_msr(vg.ICC_SGI1R_EL1, 0x0300_0002)]), hyp,
                      on_wakeup=woken.append)  # fmt: skip
    b = SecondaryVcpu(vm, 1, _Scripted([wfi]), hyp, on_wakeup=woken.append)
    a.poweron(BASE, 0)
    b.poweron(BASE, 0)
    assert b.run()[1] == vr.EXPECTS_WAKEUP
    woken.clear()
    assert a.run()[1] == vr.READY and a.backend.skipped == 1  # type: ignore[attr-defined]
    assert woken == [1] and gic.deliverable(1) == [3]
    assert b.backend.kicked == 1  # type: ignore[attr-defined]
    assert b.run()[1] == vr.READY  # its WFI completed: it runs again
    for trap in (_msr(vg.ICC_SGI1R_EL1, 0x0300_0002, read=True), _msr((3, 0, 12, 12, 5), 0)):
        c = SecondaryVcpu(SecondaryVm(VMID, OWNER, vgic=vg.VGic(1, vm_config.GICD_BASE,
                                                                 vm_config.GICR_BASE)),
                          0, _Scripted([trap]), hyp)  # fmt: skip
        c.poweron(BASE, 0)
        assert c.run()[1] == vr.FAULT  # a read of it, or ICC_SGI1R's neighbour
