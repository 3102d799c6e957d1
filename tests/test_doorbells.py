"""Doorbells in the hypervisor model (quic/gunyah-hypervisor 36ca3a2
hyp/ipc/doorbell/src/doorbell.c and hypercalls.c): the flags and masks, the
receiver's virq asserted into its vGIC as the sources say, a vCPU waiting
in WFI woken with its wake-up virq raised in its owner inside the sender's
call, and every refusal a hostile caller meets."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import cspace as cs
from gunyah.abi.errors import Error
from gunyah.abi.hvc import BY_NAME
from gunyah.model import vgic
from gunyah.model.hypervisor import Hypervisor
from gunyah.model.vcpu_run import SecondaryVcpu, SecondaryVm
from gunyah.model.vgic import VGic
from gunyah.model.vms import FLAGS_ALL, Doorbell, HypError, Vms
from gunyah.rm import vm_config

HLOS, SVM, VIRQ = 3, 0x80, 960
SEND, RECEIVE = 1 << cs.RIGHTS["doorbell"]["send"], 1 << cs.RIGHTS["doorbell"]["receive"]
GICD, GICR = vm_config.GICD_BASE, vm_config.GICR_BASE


def imm(name: str) -> int:
    return 0x6000 + BY_NAME[name].number


@dataclass
class Line:
    """A virq source that records what the doorbell does to it."""

    seen: list[str] = field(default_factory=list)
    virq: int = VIRQ

    def assert_virq(self, edge_only: bool) -> None:
        self.seen.append("edge" if edge_only else "level")

    def clear(self) -> None:
        self.seen.append("clear")


def rung(**kw: int) -> tuple[Doorbell, Line]:
    line = Line()
    bell = Doorbell(**kw)
    bell.source = line  # type: ignore[assignment]
    return bell, line


def test_the_hypercall_numbers_and_rights_are_the_hypervisors() -> None:
    """hyp/interfaces/doorbell/doorbell.hvc 0x10..0x15; cap_rights_doorbell
    send 0, receive 1, bind 2 (doorbell.tc); made with every flag enabled
    (doorbell_handle_object_create_doorbell: enable_mask = ~ack_mask)."""
    assert [
        BY_NAME[n].number
        for n in (
            "doorbell_bind_virq",
            "doorbell_unbind_virq",
            "doorbell_send",
            "doorbell_receive",
            "doorbell_reset",
            "doorbell_mask",
        )
    ] == [0x10, 0x11, 0x12, 0x13, 0x14, 0x15]
    assert (SEND, RECEIVE) == (1, 2)
    bell = Doorbell()
    assert (bell.flags, bell.enable_mask, bell.ack_mask) == (0, FLAGS_ALL, 0)


def test_send_asserts_a_level_while_an_enabled_flag_is_set_else_an_edge() -> None:
    bell, line = rung()
    assert bell.send(0) == 0 and line.seen == ["edge"]  # no flag: an edge only
    assert bell.send(1 << 32) == 0 and line.seen[-1] == "level"
    assert bell.send(1) == 1 << 32 and bell.flags == 1 << 32 | 1  # kept: no ack mask
    bell.mask(enable_mask=1 << 32, ack_mask=FLAGS_ALL)  # the series' level irqfd
    assert bell.flags == 0 and line.seen[-1] == "level"  # enabled flags set: asserted, acked
    assert bell.send(1 << 32) == 0 and bell.flags == 0 and line.seen[-1] == "level"
    assert bell.send(2) == 0 and line.seen[-1] == "edge" and bell.flags == 2  # not enabled


def test_receive_reset_and_mask() -> None:
    bell, line = rung()
    bell.send(0b1011)
    assert bell.receive(0b0011) == 0b1011 and bell.flags == 0b1000
    bell.mask(enable_mask=0b0001, ack_mask=0)  # no enabled flag set any more: deasserted
    assert line.seen[-1] == "clear"
    bell.mask(enable_mask=0b1000, ack_mask=0b1000)  # set and enabled again: asserted, acked
    assert line.seen[-1] == "level" and bell.flags == 0
    bell.send(0b100)
    bell.reset()
    assert line.seen[-1] == "clear"
    assert (bell.flags, bell.enable_mask, bell.ack_mask) == (0, FLAGS_ALL, 0)


@given(st.lists(st.tuples(st.sampled_from("srm"), st.integers(0, FLAGS_ALL),
                          st.integers(0, FLAGS_ALL)), max_size=30))  # fmt: skip
def test_any_sequence_keeps_64_bit_flags_and_answers_the_flags_before(ops) -> None:
    bell, line = rung()
    for op, a, b in ops:
        before = bell.flags
        if op == "s":
            assert bell.send(a) == before
            enabled = (before | a) & bell.enable_mask
            assert line.seen[-1] == ("level" if enabled else "edge")
        elif op == "r" and a:
            assert bell.receive(a) == before and bell.flags == before & ~a
        else:
            bell.mask(a, b)
        assert 0 <= bell.flags <= FLAGS_ALL


# -- through the hypercalls ----------------------------------------------------------
@pytest.fixture
def hyp() -> Hypervisor:
    h = Hypervisor("gunyah")
    h.vms.vm_create(SVM, HLOS)
    return h


def test_the_owner_rings_with_its_cap_and_the_vm_only_receives(hyp: Hypervisor) -> None:
    mine, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    assert theirs is not None and theirs == 3  # after the primary's three caps
    assert mine == 0  # the secondary's first cap
    assert hyp.call(theirs, 1 << 32, 0, imm=imm("doorbell_send"))[:2] == [0, 0]
    assert hyp.call(theirs, 1, 0, imm=imm("doorbell_send"))[:2] == [0, 1 << 32]
    # the owner's cap has no receive right; the VM's cap is not in the owner's cspace
    assert hyp.call(theirs, 1, 0, imm=imm("doorbell_receive"))[0] == (
        Error.CSPACE_INSUFFICIENT_RIGHTS
    )
    assert hyp.call(theirs, 1, 1, 0, imm=imm("doorbell_mask"))[0] == (
        Error.CSPACE_INSUFFICIENT_RIGHTS
    )
    assert hyp.call(theirs, 0, imm=imm("doorbell_reset"))[0] == Error.CSPACE_INSUFFICIENT_RIGHTS
    assert hyp.call(0, 1, 0, imm=imm("doorbell_send"))[0] == Error.CSPACE_WRONG_OBJECT_TYPE
    assert hyp.call(5, 1, 0, imm=imm("doorbell_send"))[0] == Error.CSPACE_CAP_NULL
    assert hyp.call(1 << 40, 1, 0, imm=imm("doorbell_send"))[0] == Error.ARGUMENT_INVALID
    # a reserved argument set
    assert hyp.call(theirs, 1, 1, imm=imm("doorbell_send"))[0] == Error.ARGUMENT_INVALID


def test_receive_of_no_flags_is_invalid(hyp: Hypervisor) -> None:
    _, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND | RECEIVE)  # source-can-clear
    assert theirs is not None
    hyp.call(theirs, 0b110, 0, imm=imm("doorbell_send"))
    assert hyp.call(theirs, 0, 0, imm=imm("doorbell_receive"))[:2] == [Error.ARGUMENT_INVALID, 0]
    assert hyp.call(theirs, 0b10, 0, imm=imm("doorbell_receive"))[:2] == [0, 0b110]
    assert hyp.call(theirs, 0, 0, 0, imm=imm("doorbell_mask"))[0] == 0
    assert hyp.call(theirs, 0, imm=imm("doorbell_reset"))[0] == 0


def test_the_owners_cap_is_revoked_with_the_vm(hyp: Hypervisor) -> None:
    _, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    hyp.vms.vm_destroy(SVM)
    assert hyp.call(theirs, 1, 0, imm=imm("doorbell_send"))[0] == Error.CSPACE_CAP_REVOKED


def test_what_the_hypervisor_refuses_to_make(hyp: Hypervisor) -> None:
    for virq in (31, 1020, 27):  # not an SPI
        with pytest.raises(HypError) as e:
            hyp.vms.doorbell_create(SVM, virq, HLOS, SEND)
        assert e.value.error == Error.ARGUMENT_INVALID
    hyp.vms.doorbell_create(SVM, VIRQ, None, SEND)
    with pytest.raises(HypError) as e:
        hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    assert e.value.error == Error.VIRQ_BOUND
    with pytest.raises(HypError):
        hyp.vms.doorbell_create(0x99, VIRQ + 1, HLOS, SEND)  # no such VM
    assert len(hyp.vms[HLOS].cspace.caps) == 3  # nothing kept


# -- into the receiver's vGIC ----------------------------------------------------------
class Waiting:
    """A vCPU backend stopped at a WFI: what the hypervisor does to it."""

    def __init__(self) -> None:
        self.skipped = self.kicked = 0

    def skip(self) -> None:
        self.skipped += 1

    def kick(self) -> None:  # it does not run: nothing to end
        self.kicked += 1


def running(vms: Vms, wake_virq: int = 0x3C2) -> tuple[SecondaryVm, SecondaryVcpu, list[int]]:
    """VM SVM running one vCPU, stopped in WFI, its Linux-like vGIC with
    the doorbell's SPI enabled in Group 1."""
    g = VGic(1, GICD, GICR)
    g.access(0, GICR + vgic.GICR_WAKER, 4, True, 0)
    g.access(0, GICD + vgic.GICD_IGROUPR + 4 * (VIRQ // 32), 4, True, 0xFFFF_FFFF)
    g.access(0, GICD + vgic.GICD_ISENABLER + 4 * (VIRQ // 32), 4, True, 1 << VIRQ % 32)
    g.access(0, GICD + vgic.GICD_CTLR, 4, True, 0x2)
    svm = SecondaryVm(SVM, HLOS, vgic=g)
    woken: list[int] = []
    cpu = SecondaryVcpu(svm, 0, Waiting(), None,  # type: ignore[arg-type]
                        on_wakeup=lambda _i: vms.raise_virq(HLOS, wake_virq))  # fmt: skip
    cpu.powered_on = cpu.in_wfi = True
    vms[SVM].runner = svm
    return svm, cpu, woken


def test_a_send_wakes_the_vcpu_and_raises_its_wakeup_in_the_owner(hyp: Hypervisor) -> None:
    _, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    svm, cpu, _ = running(hyp.vms)
    hyp.vm.vic.take()
    assert hyp.call(theirs, 1 << 32, 0, imm=imm("doorbell_send"))[0] == 0
    assert svm.vgic is not None and svm.vgic.deliverable(0) == [VIRQ]
    assert not cpu.in_wfi and cpu.backend.skipped == 1  # type: ignore[attr-defined]
    assert hyp.vm.vic.pending == [0x3C2]  # in this very call


def test_an_edge_only_assertion_needs_an_edge_triggered_spi(hyp: Hypervisor) -> None:
    _, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    svm, cpu, _ = running(hyp.vms)
    assert svm.vgic is not None
    hyp.call(theirs, 0, 0, imm=imm("doorbell_send"))  # no flag: edge only, the SPI is level
    assert svm.vgic.deliverable(0) == [] and cpu.in_wfi
    icfgr = GICD + vgic.GICD_ICFGR + 4 * (VIRQ // 16)
    svm.vgic.access(0, icfgr, 4, True, 2 << 2 * (VIRQ % 16))  # the guest makes it edge
    hyp.call(theirs, 0, 0, imm=imm("doorbell_send"))
    assert svm.vgic.deliverable(0) == [VIRQ] and not cpu.in_wfi


def test_a_disabled_spi_stays_pending_and_wakes_nobody(hyp: Hypervisor) -> None:
    _, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    svm, cpu, _ = running(hyp.vms)
    assert svm.vgic is not None
    svm.vgic.access(0, GICD + vgic.GICD_ICENABLER + 4 * (VIRQ // 32), 4, True, 1 << VIRQ % 32)
    hyp.call(theirs, 1, 0, imm=imm("doorbell_send"))
    assert cpu.in_wfi and svm.vgic.spis[VIRQ - 32].pending
    assert hyp.vm.vic.pending == []


def test_a_level_asserted_before_the_vm_runs_waits_for_its_vgic(hyp: Hypervisor) -> None:
    _, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    hyp.call(theirs, 0, 0, imm=imm("doorbell_send"))  # an edge before it runs: lost
    assert hyp.vms[SVM].vic.pending == []
    hyp.call(theirs, 1, 0, imm=imm("doorbell_send"))
    assert hyp.vms[SVM].vic.pending == [VIRQ]
    _, theirs2 = hyp.vms.doorbell_create(SVM, VIRQ + 1, HLOS, SEND | RECEIVE)
    assert theirs2 is not None
    hyp.call(theirs2, 1, 0, imm=imm("doorbell_send"))
    hyp.call(theirs2, 0, imm=imm("doorbell_reset"))  # withdrawn
    assert hyp.vms[SVM].vic.pending == [VIRQ]


def test_the_vgic_takes_spis_only() -> None:
    g = VGic(1, GICD, GICR)
    assert not g.assert_spi(27) and not g.assert_spi(1020) and not g.assert_spi(31)
    assert g.assert_spi(32) and g.spis[0].pending
    g.clear_spi(32)  # level: withdrawn
    assert not g.spis[0].pending
    g.clear_spi(5000)  # nothing there: ignored


def ended(g: VGic, intid: int) -> None:
    """The guest takes `intid` from its list register and ends it (EOI)."""
    lrs = g.load(0)
    assert vgic.ListRegister.decode(lrs[0]).vintid == intid
    g.save(0, [vgic.ListRegister(intid, vgic.LR_INVALID).encode(), 0, 0, 0])


def test_a_level_holds_while_an_enabled_flag_is_set() -> None:
    """doorbell_handle_virq_check_pending: a level-triggered SPI the guest
    ends is pending again while the doorbell has an enabled flag set; with
    the series' level irqfd masks (enable GH_BELL_NONBLOCK, acknowledge
    all) one send is one interrupt."""
    vms = Vms()
    vms.vm_create(HLOS, 0xFF)
    vms.vm_create(SVM, HLOS)
    vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    svm, _, _ = running(vms)
    g = svm.vgic
    assert g is not None
    (bell,) = [o for o in vms[SVM].objects if isinstance(o, Doorbell)]
    g.level_checks[VIRQ] = bell.asserted  # as model.proxy.start binds it
    bell.send(1 << 32)  # default masks: the flag stays set
    ended(g, VIRQ)
    assert g.deliverable(0) == [VIRQ]  # again, and again: the line is high
    bell.receive(1 << 32)  # the receiver clears the flag: the level falls at the next end
    ended(g, VIRQ)
    assert g.deliverable(0) == [] and not g.spis[VIRQ - 32].level
    bell.mask(enable_mask=1 << 32, ack_mask=FLAGS_ALL)
    bell.send(1 << 32)
    ended(g, VIRQ)
    assert g.deliverable(0) == []
    # an edge-triggered SPI is one interrupt an assertion, level or not
    g.access(0, GICD + vgic.GICD_ICFGR + 4 * (VIRQ // 16), 4, True, 2 << 2 * (VIRQ % 16))
    bell.mask(enable_mask=FLAGS_ALL, ack_mask=0)
    bell.send(1)
    ended(g, VIRQ)
    assert g.deliverable(0) == []


def test_a_vm_that_starts_gets_its_doorbells_and_what_they_asserted() -> None:
    """model.proxy.start: the new vGIC asks each doorbell of the VM again at
    an end, and a level asserted before the start is pending in it."""
    from gunyah.model import proxy

    vms = Vms()
    vms.vm_create(HLOS, 0xFF)
    vms.vm_create(SVM, HLOS)
    vms.vcpu_create(SVM, 0, HLOS)
    vms.add_vgic(SVM, GICD, GICR, vgic.GICR_SIZE, 1)
    _, theirs = vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    (bell,) = [o for o in vms[SVM].objects if isinstance(o, Doorbell)]
    bell.send(1)
    svm = proxy.start(vms, SVM)
    assert svm.vgic is not None and svm.vgic.level_checks[VIRQ] == bell.asserted
    assert svm.vgic.spis[VIRQ - 32].pending and vms[SVM].vic.pending == []
    vms.drop_runners()


def test_the_vm_receives_with_its_own_cap_and_cannot_ring(hyp: Hypervisor) -> None:
    """The VM's own calls look caps up in the cspace the RM filled
    (model.proxy.start hands it to the VM's hypervisor): its cap (the `reg`
    of its tree's doorbell node) receives, masks and resets; it has no send
    right; the owner's cap ID names nothing there."""
    from gunyah.model.vcpu_run import secondary_hypervisor

    mine, theirs = hyp.vms.doorbell_create(SVM, VIRQ, HLOS, SEND)
    (bell,) = [o for o in hyp.vms[SVM].objects if isinstance(o, Doorbell)]
    bell.send(0b101)
    guest = secondary_hypervisor(vm=hyp.vms[SVM])
    assert isinstance(guest, Hypervisor)
    assert guest.call(mine, 0b001, 0, imm=imm("doorbell_receive"))[:2] == [0, 0b101]
    assert bell.flags == 0b100
    refused = guest.call(mine, 1, 0, imm=imm("doorbell_send"))[0]
    assert refused == Error.CSPACE_INSUFFICIENT_RIGHTS
    assert guest.call(mine, 0, 0, 0, imm=imm("doorbell_mask"))[0] == 0
    assert guest.call(mine, 0, imm=imm("doorbell_reset"))[0] == 0 and bell.flags == 0
    assert (mine, theirs) == (0, 3)
    assert guest.call(theirs, 1, 0, imm=imm("doorbell_send"))[0] == Error.CSPACE_CAP_NULL
