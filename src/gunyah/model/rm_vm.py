"""The resource manager's VM, booted beside the primary VM: the one place
the model starts the RM program, which is then a client of the hypervisor
like any VM (it holds caps in its own cspace and reaches the primary only
through the queues they name).

What the QEMU build's RM sets up for its primary VM (quic/gunyah-resource-manager
bf31a9a: src/vm_config/vm_config.c vm_config_add_rm_rpc; src/vm_creation/hlos_vm.c
hlos_vm_get_rm_vcpu_cap): in the primary's cspace, cap 0 the queue to the RM
(send), cap 1 the queue from it (receive), cap 2 the RM's vCPU (affinity);
the RM holds the other end of each queue. The primary's ends raise their
interrupts in the primary's VIC: the send queue's not-full interrupt and the
receive queue's not-empty interrupt, the two the device tree's RM node names
(`Vms.link`: the measured numbers, or the machine's under `gunyah boot`).
"""

from __future__ import annotations

from ..abi import cspace as cs
from ..rm import Link, ResourceManager
from ..rm.memparcel import Parcels
from .vms import VMID_HYP, VMID_RM, Msgqueue, Thread, VirqSource, Vms

_QUEUE = cs.RIGHTS["msgqueue"]
SEND, RECEIVE = 1 << _QUEUE["send"], 1 << _QUEUE["receive"]
AFFINITY = 1 << cs.RIGHTS["thread"]["affinity"]


def boot_resource_manager(vms: Vms, client: int) -> ResourceManager:
    """Make the RM's VM (VMID 0xFF, one vCPU), the pair of queues between it
    and VM `client` with each side's caps, and start the RM program on its
    ends, serving the client's life cycle of VMs through `vms`; the program."""
    vms.vm_create(VMID_RM, VMID_HYP)
    rm_vm, primary = vms[VMID_RM], vms[client]

    to_rm, from_rm = Msgqueue(), Msgqueue()  # RM_LINK's depth and message size
    rm_vcpu = Thread(VMID_RM, 0, state="on")
    rm_vm.vcpus[0] = rm_vcpu
    rm_vm.objects += [to_rm, from_rm]
    link = vms.link
    to_rm.send_source = VirqSource(primary.vic, link.tx_intid)
    from_rm.rcv_source = VirqSource(primary.vic, link.rx_intid)
    primary.grant(to_rm, "msgqueue", SEND, link.tx_cap)
    primary.grant(from_rm, "msgqueue", RECEIVE, link.rx_cap)
    primary.grant(rm_vcpu, "thread", AFFINITY, 2)
    rx_cap = rm_vm.grant(to_rm, "msgqueue", RECEIVE)
    tx_cap = rm_vm.grant(from_rm, "msgqueue", SEND)

    # the program finds its queues through its own caps
    _, rx = rm_vm.cspace.lookup(rx_cap, "msgqueue", RECEIVE)
    _, tx = rm_vm.cspace.lookup(tx_cap, "msgqueue", SEND)
    assert rx is not None and tx is not None
    assert isinstance(rx.obj, Msgqueue) and isinstance(tx.obj, Msgqueue)
    server = ResourceManager(hyp=vms, parcels=Parcels(vms))
    Link(server, rx.obj, tx.obj)
    return server
