"""The secondary's virtual GICv3 (gunyah/model/vgic.py): what the guest reads
is the real vGIC's, its register decode answers any access, and interrupts
go out through list registers and come back."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gunyah.model import vgic
from gunyah.model.vgic import ListRegister, VGic
from gunyah.rm import vm_config

GICD, GICR = vm_config.GICD_BASE, vm_config.GICR_BASE
SGI_BASE = vgic.FRAME


def linux_like(vcpus: int = 1) -> VGic:
    """A vGIC set up as Linux's GICv3 driver sets one up: every redistributor
    awake and its interrupts Group 1, the distributor's Group 1 on."""
    g = VGic(vcpus, GICD, GICR)
    for cpu in range(vcpus):
        rd = GICR + cpu * vgic.GICR_SIZE
        g.access(cpu, rd + vgic.GICR_WAKER, 4, True, 0)
        g.access(cpu, rd + SGI_BASE + vgic.GICR_IGROUPR0, 4, True, 0xFFFF_FFFF)
    for word in range(1, 32):
        g.access(0, GICD + vgic.GICD_IGROUPR + 4 * word, 4, True, 0xFFFF_FFFF)
    g.access(0, GICD + vgic.GICD_CTLR, 4, True, 0x2)
    return g


def test_the_constants_are_the_hypervisors() -> None:
    """quic/gunyah-hypervisor: hyp/vm/vgic/vgic.tc VGIC_PIDR2 0x30 and
    VGIC_IDBITS 10 (no LPIs), hyp/platform/gicv3/gicv3.tc GIC_SPI_NUM 988,
    hyp/vm/vgic/src/vdevice.c's IIDR (Implementer JEP106 0x70, ProductID
    'G'), config/arch CPU_GICH_LR_COUNT 4; the RM's addresses and sizes
    (gunyah/rm/vm_config.py) are the frames the vGIC answers."""
    assert (vgic.PIDR2, vgic.SPI_NUM, vgic.IDBITS, vgic.IIDR) == (0x30, 988, 10, 0x4700_0070)
    assert vgic.LIST_REGISTERS == 4
    assert (vgic.GICD_SIZE, vgic.GICR_SIZE) == (vm_config.GICD_SIZE, vm_config.GICR_SIZE)
    typer = vgic.GICD_TYPER_FIELDS.decode(vgic.GICD_TYPER_VALUE)
    assert (typer["ITLinesNumber"], typer["IDbits"]) == (31, 9)
    assert vgic.GICD_TYPER_FIELDS.set_flags(vgic.GICD_TYPER_VALUE) == ["MBIS", "A3V", "No1N"]
    assert vgic.GICD_TYPER_VALUE == 0x0349_001F


def test_the_list_register_layout_is_the_arm_arms() -> None:
    """ICH_LR<n>_EL2 (IHI 0069 12.4.6; gicv3-regs.tc ICH_LR_EL2_HW1): vINTID
    31:0, pINTID 44:32, Priority 55:48, Group 60, HW 61, State 63:62."""
    lr = ListRegister(27, vgic.LR_PENDING, 0xA0, True, True, 27)
    assert lr.encode() == 1 << 62 | 1 << 61 | 1 << 60 | 0xA0 << 48 | 27 << 32 | 27
    assert ListRegister.decode(lr.encode()) == lr
    assert ListRegister.decode(3 << 62 | 5).state == vgic.LR_PENDING_ACTIVE
    assert ListRegister.decode(vgic.LR_EOI | 40).pintid == 0  # HW 0: bit 41 is EOI


@given(st.integers(0, (1 << 64) - 1))
def test_any_list_register_word_decodes_and_encodes_back_stable(word: int) -> None:
    lr = ListRegister.decode(word)
    assert ListRegister.decode(lr.encode()) == lr
    assert lr.hw or lr.encode() & vgic.LR_EOI == 0  # no maintenance interrupt asked


def test_the_guest_reads_the_real_vgics_identity() -> None:
    g = VGic(2, GICD, GICR)
    assert g.access(0, GICD + vgic.GICD_PIDR2, 4, False) == 0x30
    assert g.access(0, GICD + vgic.GICD_TYPER, 4, False) == vgic.GICD_TYPER_VALUE
    assert g.access(0, GICD + vgic.GICD_IIDR, 4, False) == 0x4700_0070
    assert g.access(0, GICD + vgic.GICD_CTLR, 4, False) == 0x50  # ARE, DS; groups off
    assert g.access(1, GICR + vgic.GICR_PIDR2, 4, False) == 0x30
    typer0 = g.access(0, GICR + vgic.GICR_TYPER, 8, False)
    typer1 = g.access(0, GICR + vgic.GICR_SIZE + vgic.GICR_TYPER, 8, False)
    assert (typer0, typer1) == (0, 1 << 32 | 1 << 8 | 1 << 4)  # Aff0, Processor_Num, Last
    assert g.access(0, GICR + vgic.GICR_SIZE + vgic.GICR_TYPER + 4, 4, False) == 1
    assert g.access(0, GICR + vgic.GICR_WAKER, 4, False) == 0x6  # asleep out of reset
    g.access(0, GICR + vgic.GICR_WAKER, 4, True, 0)
    assert g.access(0, GICR + vgic.GICR_WAKER, 4, False) == 0


def test_writes_to_read_only_or_unknown_registers_change_nothing_but_statusr() -> None:
    g = VGic(1, GICD, GICR)
    g.access(0, GICD + vgic.GICD_TYPER, 4, True, 0)
    assert g.access(0, GICD + vgic.GICD_TYPER, 4, False) == vgic.GICD_TYPER_VALUE
    assert g.access(0, GICD + vgic.GICD_STATUSR, 4, False) == vgic.STATUSR_WROD
    assert g.access(0, GICD + 0xA000, 4, False) == 0  # no register there
    assert g.access(0, GICD + vgic.GICD_STATUSR, 4, False) == vgic.STATUSR_WROD | vgic.STATUSR_RRD
    g.access(0, GICD + vgic.GICD_STATUSR, 4, True, 0xF)  # write one to clear
    assert g.access(0, GICD + vgic.GICD_STATUSR, 4, False) == 0
    assert g.access(0, GICD + vgic.GICD_SETSPI_NSR, 4, False) == 0  # write-only
    assert g.access(0, GICD + vgic.GICD_STATUSR, 4, False) == vgic.STATUSR_RWOD


def test_enable_pending_and_priority_registers_read_back_what_was_set() -> None:
    g = VGic(2, GICD, GICR)
    g.access(0, GICD + vgic.GICD_ISENABLER + 4, 4, True, 0x8000_0001)  # IDs 32, 63
    g.access(0, GICD + vgic.GICD_ICENABLER + 4, 4, True, 0x1)
    assert g.access(1, GICD + vgic.GICD_ISENABLER + 4, 4, False) == 0x8000_0000
    g.access(0, GICD + vgic.GICD_ISENABLER, 4, True, 0xFFFF_FFFF)  # the banked word: WI here
    assert g.access(0, GICD + vgic.GICD_ISENABLER, 4, False) == 0
    g.access(1, GICR + vgic.GICR_SIZE + SGI_BASE + vgic.GICR_ISENABLER0, 4, True, 1 << 27)
    assert g.access(0, GICR + vgic.GICR_SIZE + SGI_BASE + vgic.GICR_ISENABLER0, 4, False) == 1 << 27
    assert g.access(0, GICR + SGI_BASE + vgic.GICR_ISENABLER0, 4, False) == 0  # vCPU 0's bank
    g.access(0, GICD + vgic.GICD_IPRIORITYR + 40, 1, True, 0xA0)
    assert g.access(0, GICD + vgic.GICD_IPRIORITYR + 40, 4, False) == 0xA0
    g.access(0, GICD + vgic.GICD_IPRIORITYR + 1016, 4, True, 0xFFFF_FFFF)  # 1016..1019 only
    assert g.access(0, GICD + vgic.GICD_IPRIORITYR + 1016, 4, False) == 0xFFFF_FFFF
    g.access(0, GICD + vgic.GICD_ICFGR + 8, 4, True, 0x2)  # ID 32: edge
    assert g.access(0, GICD + vgic.GICD_ICFGR + 8, 4, False) == 0x2
    assert g.access(0, GICR + SGI_BASE + vgic.GICR_ICFGR0, 4, False) == 0xAAAA_AAAA  # SGIs: edge


def test_a_timer_ppi_goes_out_in_a_list_register_and_its_eoi_ends_it() -> None:
    g = linux_like()
    g.access(0, GICR + SGI_BASE + vgic.GICR_IPRIORITYR + 27, 1, True, 0xA0)
    g.access(0, GICR + SGI_BASE + vgic.GICR_ISENABLER0, 4, True, 1 << 27)
    assert g.load(0) == [0, 0, 0, 0]
    assert g.raise_irq(27)
    lrs = g.load(0)
    assert lrs == [ListRegister(27, vgic.LR_PENDING, 0xA0).encode(), 0, 0, 0]
    assert g.load(0) == [0, 0, 0, 0]  # listed: not twice
    g.save(0, [ListRegister(27, vgic.LR_ACTIVE, 0xA0).encode(), 0, 0, 0])  # acknowledged
    assert g.access(0, GICR + SGI_BASE + vgic.GICR_ISACTIVER0, 4, False) == 1 << 27
    again = g.load(0)  # listed again, active, for its EOI to find
    assert ListRegister.decode(again[0]) == ListRegister(27, vgic.LR_ACTIVE, 0xA0)
    g.save(0, [ListRegister(27, vgic.LR_INVALID, 0xA0).encode(), 0, 0, 0])  # EOI'd
    assert g.access(0, GICR + SGI_BASE + vgic.GICR_ISACTIVER0, 4, False) == 0
    assert g.access(0, GICR + SGI_BASE + vgic.GICR_ISPENDR0, 4, False) == 0
    assert g.load(0) == [0, 0, 0, 0]


def test_delivery_follows_priority_group_enables_and_routing() -> None:
    g = linux_like(2)
    for intid, prio in ((40, 0x80), (41, 0x40), (42, 0x40), (43, 0x10)):
        g.access(0, GICD + vgic.GICD_IPRIORITYR + intid, 1, True, prio)
        g.raise_irq(intid)
    g.access(0, GICD + vgic.GICD_ISENABLER + 4, 4, True, 0x7 << 8)  # 40..42, not 43
    g.access(0, GICD + vgic.GICD_IROUTER + 8 * 42, 8, True, 1)  # 42 to vCPU 1
    assert g.deliverable(0) == [41, 40]
    assert g.deliverable(1) == [42]
    g.access(0, GICD + vgic.GICD_CTLR, 4, True, 0)  # the distributor's groups off
    assert g.deliverable(0) == [] and g.load(0) == [0, 0, 0, 0]


def test_more_pending_than_list_registers_wait_for_the_next_run() -> None:
    g = linux_like()
    g.access(0, GICD + vgic.GICD_ISENABLER + 4, 4, True, 0xFFFF_FFFF)
    for intid in range(32, 38):
        g.raise_irq(intid)
    first = [ListRegister.decode(w).vintid for w in g.load(0)]
    assert first == [32, 33, 34, 35]
    g.save(0, [ListRegister(i, vgic.LR_INVALID).encode() for i in first])
    assert [ListRegister.decode(w).vintid for w in g.load(0)][:2] == [36, 37]


def test_ids_the_vgic_does_not_have_are_refused() -> None:
    g = VGic(1, GICD, GICR)
    assert not g.raise_irq(1020) and not g.raise_irq(-1) and not g.raise_irq(27, vcpu=1)
    g.save(5, [1 << 62 | 27])  # no such vCPU
    g.save(0, [1 << 62 | 27])  # not listed: ignored
    assert g.access(0, GICR + SGI_BASE + vgic.GICR_ISPENDR0, 4, False) == 0


ACCESS = st.tuples(
    st.integers(0, 3),
    st.one_of(
        st.integers(GICD - 16, GICD + vgic.GICD_SIZE + 16),
        st.integers(GICR - 16, GICR + 4 * vgic.GICR_SIZE + 16),
        st.integers(0, (1 << 64) - 1),
    ),  # fmt: skip
    st.sampled_from([0, 1, 2, 3, 4, 8, 16]),
    st.booleans(),
    st.integers(0, (1 << 64) - 1),
)


@given(st.lists(ACCESS, max_size=40))
def test_any_access_is_answered_within_its_size_and_never_raises(
    accesses: list[tuple[int, int, int, bool, int]],
) -> None:
    """A hostile guest's accesses, any vCPU, address, size and value: each
    read is a value of its size, each write reads as 0, delivery still works
    and no list register names an ID the vGIC lacks."""
    g = VGic(2, GICD, GICR)
    for vcpu, ipa, size, write, value in accesses:
        got = g.access(vcpu, ipa, size, write, value)
        assert 0 <= got < 1 << 8 * max(size, 1)
        assert not write or got == 0
        if not g.claims(ipa):
            assert got == 0
    for cpu in range(2):
        for word in g.load(cpu):
            lr = ListRegister.decode(word)
            assert word == 0 or (lr.vintid < vgic.SPECIAL and lr.state != vgic.LR_INVALID)


@given(st.integers(0, vgic.SPI_NUM - 1), st.integers(0, 0xFF))
def test_an_spis_registers_read_back_at_its_own_bit_and_byte(spi: int, prio: int) -> None:
    g = VGic(1, GICD, GICR)
    intid = vgic.PRIVATE + spi
    word, bit = divmod(intid, 32)
    g.access(0, GICD + vgic.GICD_ISPENDR + 4 * word, 4, True, 1 << bit)
    assert g.access(0, GICD + vgic.GICD_ISPENDR + 4 * word, 4, False) == 1 << bit
    g.access(0, GICD + vgic.GICD_IPRIORITYR + intid, 1, True, prio)
    assert g.access(0, GICD + vgic.GICD_IPRIORITYR + intid - intid % 4, 4, False) == prio << 8 * (
        intid % 4
    )
    g.access(0, GICD + vgic.GICD_CLRSPI_NSR, 4, True, intid)
    assert g.access(0, GICD + vgic.GICD_ICPENDR + 4 * word, 4, False) == 0


# -- SGIs: ICC_SGI1R_EL1, ICC_ASGI1R_EL1, ICC_SGI0R_EL1 ------------------------------------
def test_the_sgi_registers_and_their_fields_are_the_hypervisors() -> None:
    """hyp/arch/aarch64/include/asm/system_registers.h ISS_MRS_MSR_ICC_*;
    hyp/platform/gicv3/aarch64/gicv3-regs.tc ICC_SGIR_EL1."""
    assert vgic.ICC_SGI1R_EL1 == (3, 0, 12, 11, 5)
    assert vgic.ICC_ASGI1R_EL1 == (3, 0, 12, 11, 6)
    assert vgic.ICC_SGI0R_EL1 == (3, 0, 12, 11, 7)
    word = vgic.SGIR.encode({"TargetList": 0xABCD, "Aff1": 0x12, "INTID": 0xF, "Aff2": 0x34,
                             "IRM": True, "RS": 0x9, "Aff3": 0x56})  # fmt: skip
    assert word == 0x0056_9134_0F12_ABCD


def _sgir(targets: int, intid: int, irm: bool = False, rs: int = 0, aff1: int = 0) -> int:
    return vgic.SGIR.encode({"TargetList": targets, "INTID": intid, "IRM": irm, "RS": rs,
                             "Aff1": aff1})  # fmt: skip


def test_an_sgi_goes_to_the_vcpus_its_targets_name() -> None:
    """vgic_icc_generate_sgi: TargetList bits name vCPUs by Aff0 (plus 16 x
    RS); IRM, every vCPU but the sender; a target no vCPU has, or one with
    Aff1..3 set (no vCPU has them), is ignored."""
    gic = VGic(4, vm_config.GICD_BASE, vm_config.GICR_BASE)
    assert gic.generate_sgi(0, _sgir(0b0110, 3), True) == [1, 2]
    assert [gic.redist[v].irqs[3].pending for v in range(4)] == [False, True, True, False]
    assert gic.generate_sgi(2, _sgir(0, 5, irm=True), True) == [0, 1, 3]
    assert gic.generate_sgi(0, _sgir(0b1, 6, rs=1), True) == []  # Aff0 16: no such vCPU
    assert gic.generate_sgi(0, _sgir(0b10, 6, aff1=1), True) == []
    assert gic.generate_sgi(0, _sgir(0b1, 7), True) == [0]  # itself, by name
    assert gic.generate_sgi(9, _sgir(0b1, 7), True) == []  # no such sender


def test_sgi0r_and_asgi1r_do_not_make_group_1_sgis_pending() -> None:
    """deliver.c vgic_send_sgi: a write that is not SGI1R skips a target that
    has the SGI in Group 1; SGI1R makes it pending whatever its group."""
    gic = VGic(2, vm_config.GICD_BASE, vm_config.GICR_BASE)
    sgi_base = vm_config.GICR_BASE + vgic.GICR_SIZE + vgic.FRAME  # vCPU 1's SGI_base
    gic.access(1, sgi_base + vgic.GICR_IGROUPR0, 4, True, 1 << 4)  # its SGI 4: Group 1
    assert gic.generate_sgi(0, _sgir(0b10, 4), False) == []
    assert gic.generate_sgi(0, _sgir(0b10, 5), False) == [1]  # SGI 5 is Group 0
    assert gic.generate_sgi(0, _sgir(0b10, 4), True) == [1]


@given(st.integers(0, (1 << 64) - 1), st.integers(1, 8), st.integers(0, 7), st.booleans())
def test_any_sgir_value_is_taken_and_names_only_vcpus_it_may(
        value: int, vcpus: int, sender: int, group1: bool) -> None:  # fmt: skip
    gic = VGic(vcpus, vm_config.GICD_BASE, vm_config.GICR_BASE)
    sent = gic.generate_sgi(sender, value, group1)
    f = vgic.SGIR.decode(value)
    assert sent == sorted(set(sent)) and all(0 <= v < vcpus for v in sent)
    if sender >= vcpus or (not f["IRM"] and (f["Aff1"] or f["Aff2"] or f["Aff3"])):
        assert sent == []
    if f["IRM"]:
        assert sender not in sent
    for v in sent:
        assert gic.redist[v].irqs[int(f["INTID"])].pending
