"""When the model raises a virtual interrupt: a message queue's two
(quic/gunyah-hypervisor hyp/ipc/msgqueue/src/msgqueue_common.c for send,
receive and flush; src/msgqueue.c for the thresholds' configuration), the
RM link's in the primary VM, and vcpu_run's wake-up virq in a proxy-scheduled
vCPU's owner (hyp/vm/vcpu_run/src/vcpu_run.c vcpu_run_trigger_virq)."""

from __future__ import annotations

import struct

from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import rm
from gunyah.abi.devicetree import RM_LINK, RmRpc
from gunyah.conduit import FlatMemory
from gunyah.guest.rm_client import RECEIVE, SEND, exchange
from gunyah.model import Hypervisor
from gunyah.model.vcpu_run import EXPECTS_WAKEUP
from gunyah.model.vms import RIGHTS_RWX, VMID_HLOS, Msgqueue, Vic, VirqSource, Vms

SEND_VIRQ, RCV_VIRQ = 0x40, 0x41


def queue(depth: int = 8, notfull: int = 7, notempty: int = 1) -> tuple[Msgqueue, Vic]:
    vic = Vic()
    q = Msgqueue(depth=depth, notfull_thd=notfull, notempty_thd=notempty)
    q.send_source, q.rcv_source = VirqSource(vic, SEND_VIRQ), VirqSource(vic, RCV_VIRQ)
    return q, vic


def test_a_send_that_reaches_the_not_empty_threshold_raises_the_receivers_virq() -> None:
    q, vic = queue(notempty=1)
    q.send(b"a")
    assert vic.take() == [RCV_VIRQ]
    q.send(b"b")  # past the threshold: no new edge
    assert vic.take() == []


def test_a_higher_not_empty_threshold_waits_for_that_many_messages() -> None:
    q, vic = queue(notempty=3)
    q.send(b"a")
    q.send(b"b")
    assert vic.take() == []
    q.send(b"c")
    assert vic.take() == [RCV_VIRQ]


def test_push_raises_the_receivers_virq_whatever_the_count() -> None:
    q, vic = queue(notempty=3)
    q.send(b"a", push=True)
    assert vic.take() == [RCV_VIRQ]


def test_a_receive_that_reaches_the_not_full_threshold_raises_the_senders_virq() -> None:
    q, vic = queue(depth=4, notfull=2)
    for m in (b"a", b"b", b"c", b"d"):
        assert q.send(m) == (m != b"d")  # not full, until the fourth
    vic.take()
    assert q.receive() == b"a"  # 3 left: above the threshold
    assert vic.take() == []
    assert q.receive() == b"b"  # 2 left: the threshold
    assert vic.take() == [SEND_VIRQ]
    q.receive()  # 1 left: below it, no new edge
    assert vic.take() == []


def test_a_flush_of_a_queue_with_messages_raises_the_sender_and_clears_the_receiver() -> None:
    q, vic = queue()
    q.send(b"a")
    assert vic.pending == [RCV_VIRQ]
    q.flush()
    assert vic.take() == [SEND_VIRQ] and not q.messages
    q.flush()  # an empty queue: nothing asserted
    assert vic.take() == []


def test_a_new_not_full_threshold_asserts_or_clears_the_senders_virq() -> None:
    q, vic = queue(depth=8, notfull=7)
    for m in (b"a", b"b", b"c"):
        q.send(m)
    vic.take()
    q.configure_send(5)  # 3 <= 5: asserted
    assert vic.pending == [SEND_VIRQ]
    q.configure_send(2)  # 3 > 2: cleared before it was taken
    assert vic.take() == []


def test_a_new_not_empty_threshold_asserts_or_clears_the_receivers_virq() -> None:
    q, vic = queue(notempty=4)
    q.send(b"a")
    q.send(b"b")
    q.configure_receive(2)
    assert vic.pending == [RCV_VIRQ]
    q.configure_receive(3)
    assert vic.pending == []
    q.configure_receive(None)  # THRESHOLD_MAXIMUM: the depth, nothing raised or cleared
    assert q.notempty_thd == q.depth and vic.pending == []


def test_an_unbound_queue_raises_nothing_and_still_queues() -> None:
    q = Msgqueue()
    q.send(b"a", push=True)
    q.configure_receive(1)
    assert q.receive() == b"a"
    q.flush()


@given(st.lists(st.sampled_from(["send", "push", "receive", "flush"]), max_size=60))
def test_a_virq_is_pending_once_however_often_it_is_raised(ops: list[str]) -> None:
    q, vic = queue(depth=4, notfull=3)
    for op in ops:
        if op in ("send", "push") and not q.full:
            q.send(b"m", push=op == "push")
        elif op == "receive" and q.messages:
            q.receive()
        elif op == "flush":
            q.flush()
        assert len(vic.pending) == len(set(vic.pending)) <= 2
        assert set(vic.pending) <= {SEND_VIRQ, RCV_VIRQ}


# -- the RM link in the primary VM -------------------------------------------------------
def _ask_vmid(hyp: Hypervisor) -> None:
    reply = exchange(hyp, rm.MESSAGE_IDS["VM_GET_VMID"])
    assert reply.error == 0 and struct.unpack("<I", reply.data[:4])[0] == VMID_HLOS


def test_a_reply_from_the_rm_raises_the_rx_interrupt_the_tree_names() -> None:
    hyp = Hypervisor("gunyah-qemu")
    _ask_vmid(hyp)
    # the reply arrived: rx's not-empty edge; the client took it: no not-full
    # edge on tx, which never held more than one message
    assert hyp.vm.vic.take() == [RM_LINK.rx_intid]
    assert RM_LINK.rx_intid == 0x3A1 + 32 == 961  # docs/real-gunyah.md: interrupt ID 961


def test_the_model_takes_the_machines_numbers_for_the_link() -> None:
    link = RmRpc(tx_virq=0xE0, rx_virq=0xE1, free_irq_start=0x102)
    hyp = Hypervisor("gunyah-qemu", link=link)
    _ask_vmid(hyp)
    assert hyp.vm.vic.take() == [0xE1 + 32]
    hyp.vms.vm_create(SVM, VMID_HLOS)
    assert hyp.vms.vcpu_create(SVM, 0, VMID_HLOS)[1] == 0x102  # the first free virq


def test_wake_up_virqs_skip_the_links_own_as_the_real_rm_did() -> None:
    """Measured: free-irq-start 0x3c0, the queues' interrupts 0x3c0 and
    0x3c1, the first vCPU's wake-up virq 0x3c2 (docs/real-gunyah.md
    sections 9 and 11); a wake-up never shares a queue's interrupt."""
    hyp = Hypervisor("gunyah-qemu")
    hyp.vms.vm_create(SVM, VMID_HLOS)
    virqs = [hyp.vms.vcpu_create(SVM, i, VMID_HLOS)[1] for i in range(3)]
    assert virqs == [0x3C2, 0x3C3, 0x3C4]
    link = RmRpc(free_irq_start=0x200, tx_virq=0x1E1, rx_virq=0x1E3)  # IDs 0x201, 0x203
    vms = Vms(link=link)
    vms.vm_create(VMID_HLOS, 0xFF)
    vms.vm_create(SVM, VMID_HLOS)
    assert [vms.vcpu_create(SVM, i, VMID_HLOS)[1] for i in range(3)] == [0x200, 0x202, 0x204]


def test_a_full_send_queue_raises_tx_once_the_rm_takes_a_request() -> None:
    """A client that sends without receiving fills both queues; its next
    receive lets the RM take one more request off the send queue, whose count
    falls to the not-full threshold: tx."""
    hyp = Hypervisor("gunyah-qemu")
    memory = FlatMemory(rm.MESSAGE_SIZE)
    hyp.attach_memory(memory)
    request = rm.Header(rm.TYPE_REQUEST, 0, 1, rm.MESSAGE_IDS["VM_GET_VMID"]).encode()
    memory.data[: len(request)] = request
    for _ in range(4 * RM_LINK.queue_depth):
        if hyp.call(RM_LINK.tx_cap, len(request), 0, 0, 0, imm=SEND)[0] != 0:
            break  # MSGQUEUE_FULL
    else:
        raise AssertionError("the send queue never filled")
    hyp.vm.vic.take()
    assert hyp.call(RM_LINK.rx_cap, 0, rm.MESSAGE_SIZE, 0, imm=RECEIVE)[0] == 0
    assert hyp.vm.vic.take() == [RM_LINK.tx_intid]


# -- vcpu_run's wake-up virq ----------------------------------------------------------------
SVM, SVM_RAM, SVM_IPA = 0x45, 0x8000_0000, 0x1000_0000
WFI = 0xD503207F


def test_a_proxy_scheduled_vcpu_raises_its_wake_up_virq_in_its_owner() -> None:
    vms = Vms()
    vms.vm_create(VMID_HLOS, 0xFF)
    ram = bytearray(0x1000)
    ram[:4] = struct.pack("<I", WFI)
    vms.add_ram(SVM_RAM, ram)
    vms.vm_create(SVM, VMID_HLOS)
    vms.map(SVM, SVM_IPA, SVM_RAM, 0x1000, RIGHTS_RWX)
    _, virq = vms.vcpu_create(SVM, 0, VMID_HLOS)
    owner = vms[VMID_HLOS].vic
    vms.vcpu_poweron(SVM, 0, SVM_IPA, 0)  # powered on: runnable
    assert owner.take() == [virq]
    runner = vms[SVM].vcpus[0].runner
    assert runner is not None
    assert runner.run()[1] == EXPECTS_WAKEUP  # waits in WFI: nothing raised
    assert owner.take() == []
    runner.wake()  # runnable again
    assert owner.take() == [virq]
    runner.wake()  # not waiting: no new edge
    assert owner.take() == []
