"""Proxy scheduling: a secondary VM's vCPUs as their owner runs them with
vcpu_run (docs/real-gunyah.md section 13).

When the resource manager powers on a secondary VM's vCPU (VM_START), the
VM gets a runner: its stage 2 as it stands then (every mapping, over the
physical RAM the model holds, no copy), its VMMIO ranges, and one
`SecondaryVcpu` per vCPU on the unicorn backend (or, in a boot, on the
shim: `Vms.backends`), with the VM's own
hypervisor for its calls. The vCPU's thread keeps its runner; `vcpu_run`
on a cap to the thread runs it. When a vCPU becomes runnable (powered on,
woken from WFI) its thread's wake-up virq, the one VM_GET_HYP_RESOURCES
names, is raised in the owner (hyp/vm/vcpu_run/src/vcpu_run.c
vcpu_run_trigger_virq, on power-on and on each wake-up). The VM's end
(SYSTEM_OFF, a reset, a fault) reaches the RM through `Vms`'s exit
callback. Where `Vms.log` is set (a boot's), the VM's start and its calls
are kept there (model.secondary_log).

Memory the VM is given after its start is not seen by the running VM: the
RM maps only the image parcel, at VM_START (docs/real-gunyah.md section 12).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from .vcpu_run import SecondaryVcpu, SecondaryVm, VcpuBackend, secondary_hypervisor
from .vgic import VGic
from .vms import Doorbell

if TYPE_CHECKING:
    from .vms import Thread, Vms


class NoMemory(ValueError):
    """A mapping of the VM lies outside the RAM the model holds."""


def start(vms: Vms, vmid: int) -> SecondaryVm:
    """The runner of VM `vmid`, made at its first vCPU's power-on: a
    SecondaryVcpu on each of its threads (`thread.runner`)."""
    vm = vms[vmid]
    svm = SecondaryVm(vmid, vm.owner, memory=[(m.ipa, m.size) for m in vm.addrspace.mappings],
                      vmmio=list(vm.addrspace.vmmio), on_vm_exit=vms.exited)  # fmt: skip
    if vm.vgic is not None:  # its distributor and redistributors: emulated, never exits
        gicd, gicr, stride, count = vm.vgic
        svm.vgic = VGic(count, gicd, gicr, stride)
        for obj in vm.objects:  # its doorbells: asked again when the guest ends theirs
            if isinstance(obj, Doorbell) and obj.source is not None:
                svm.vgic.level_checks[obj.source.virq] = obj.asserted
        for virq in vm.vic.take():  # a doorbell's level asserted before the VM ran
            svm.vgic.assert_spi(virq)
    backends: Mapping[int, VcpuBackend]
    if vms.backends is not None:  # a boot's: the shim runs them, delivering the vGIC's
        backends = vms.backends.start(vmid, vm.addrspace.mappings, sorted(vm.vcpus), svm.vgic)
    else:
        backends = _unicorn(vms, vmid)
    # one hypervisor for the VM's calls: its PSCI turns the VM's vCPUs on and off
    handler = secondary_hypervisor(
        cpus=max(vm.vcpus, default=0) + 1, vmid=vmid, owner=vm.owner, vm=vm
    )
    if vms.log is not None:  # the run keeps the VM's calls, each with its ID
        vms.log.vm_started(vmid)
        handler = vms.log.wrap(vmid, handler)
    for index in sorted(vm.vcpus):
        thread: Thread = vm.vcpus[index]
        thread.runner = SecondaryVcpu(svm, index, backends[index], handler,
                                      on_wakeup=_raiser(vms, vm.owner, thread))  # fmt: skip
    vm.runner = svm
    return svm


def _unicorn(vms: Vms, vmid: int) -> dict[int, VcpuBackend]:
    """A unicorn engine for each vCPU of VM `vmid`, over the RAM its
    mappings name (no copy); NoMemory for a mapping outside it."""
    from ..vcpu.secondary import Region, UnicornSecondary  # unicorn, only when a VM runs

    vm = vms[vmid]
    regions = []
    for m in vm.addrspace.mappings:
        ram = next((r for r in vms.ram if r.base <= m.phys and m.phys + m.size <= r.end), None)
        if ram is None:
            raise NoMemory(f"VM {vmid:#x}: IPA {m.ipa:#x} maps {m.phys:#x}, outside RAM")
        view = memoryview(ram.data)[m.phys - ram.base : m.phys - ram.base + m.size]
        regions.append(Region(m.ipa, view, m.rights))
    return {index: UnicornSecondary(regions) for index in sorted(vm.vcpus)}


def _raiser(vms: Vms, owner: int, thread: Thread) -> Callable[[int], None]:
    """What a vCPU that becomes runnable calls: its wake-up virq in its owner."""
    return lambda _index: vms.raise_virq(owner, thread.wake_virq)
