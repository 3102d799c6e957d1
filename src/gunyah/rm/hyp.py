"""What the resource manager asks of the hypervisor to host VMs, and all it
asks: the real RM is a client of the hypervisor (its hypercalls), never a
reader of its internals, and so is this one. The model implements `Hyp`
without importing the RM; the RM's tests use a recording implementation.

Rights are the RM's ACL rights: bit 2 read, bit 1 write, bit 0 execute
(quic/gunyah-resource-manager include/memparcel_msg.h)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..abi import rm
from ..abi.errors import Error

# Exit types `on_vm_exit` reports (include/vm_mgnt.h exit_type_t)
EXIT_PLATFORM_OFF = 1  # PSCI SYSTEM_OFF on the VM's last vCPU
EXIT_PLATFORM_RESET = 2  # PSCI SYSTEM_RESET


class Hyp(Protocol):
    """VMs (partitions) and their stage 2, by VMID; physical memory; vCPUs."""

    # set by the RM: called as (vmid, exit type, reason) when a VM's last
    # vCPU powers off
    on_vm_exit: Callable[[int, int, int], None] | None

    def vm_create(self, vmid: int, owner: int) -> None:
        """A new VM with an empty address space."""

    def vm_destroy(self, vmid: int) -> None:
        """Every object of the VM gone, the caps to them revoked."""

    def translate(self, vmid: int, ipa: int, size: int) -> int | None:
        """The physical address of [ipa, ipa+size) in the VM's stage 2 when
        it is mapped there contiguously, else None."""

    def map(self, vmid: int, ipa: int, phys: int, size: int, rights: int) -> None:
        """A change the hypervisor refuses (its page tables cannot hold it:
        NOMEM) raises ValueError and changes nothing; so does `unmap`."""

    def unmap(self, vmid: int, ipa: int, size: int) -> None: ...

    def add_vmmio(self, vmid: int, ipa: int, size: int) -> None:
        """Accesses there by the VM's vCPUs come back to the vCPU's owner as
        vcpu_run exits."""

    def add_vgic(self, vmid: int, gicd: int, gicr: int, stride: int, count: int) -> None:
        """The VM's virtual GICv3: its distributor at `gicd`, `count`
        redistributors from `gicr`, `stride` apart. The hypervisor emulates
        accesses there (hyp/vm/vgic/src/vdevice.c); they are never vcpu_run
        exits."""

    def doorbell_create(self, receiver: int, virq: int, sender: int | None,
                        sender_rights: int) -> tuple[int, int | None]:  # fmt: skip
        """A doorbell (partition_create_doorbell), a cap to it with the
        receive right copied into VM `receiver`'s cspace, then one with
        `sender_rights` into VM `sender`'s where there is one, and its virq
        bound to SPI `virq` of the receiver (doorbell_bind_virq): (the
        receiver's cap ID, the sender's). Refused (ValueError, nothing
        kept) for a virq that is no SPI or is bound already. It goes with
        the receiver."""

    def read_phys(self, phys: int, size: int) -> bytes | None: ...

    def write_phys(self, phys: int, data: bytes) -> bool: ...

    def vcpu_create(self, vmid: int, index: int, owner: int) -> tuple[int, int]:
        """(the cap ID in the owner's cspace with the vcpu_run right, the
        wake-up virq raised in the owner when the vCPU can run again)."""

    def vcpu_poweron(self, vmid: int, index: int, entry: int, context: int) -> None:
        """A power-on the hypervisor refuses raises ValueError, its `error`
        the hypervisor's code where it has one (NOMEM: no room for the
        VM's vCPUs or their stage 2)."""

    def vm_stop(self, vmid: int) -> None:
        """Every vCPU of the VM halted now."""

    def random_bytes(self, n: int) -> bytes: ...


# The RM error a hypervisor error becomes (quic/gunyah-resource-manager
# src/resource-manager.c rm_error_from_hyp); any other code is DENIED
_FROM_HYP: dict[int, str] = {
    Error.OK: "OK",
    Error.UNIMPLEMENTED: "UNIMPLEMENTED",
    Error.NOMEM: "NOMEM",
    Error.NORESOURCES: "NORESOURCE",
    Error.DENIED: "DENIED",
    Error.BUSY: "BUSY",
    Error.ADDR_INVALID: "MEM_INVALID",
    Error.ADDR_OVERFLOW: "MEM_INVALID",
    Error.ADDR_UNDERFLOW: "MEM_INVALID",
    Error.ARGUMENT_INVALID: "ARGUMENT_INVALID",
}


def rm_error_from_hyp(refused: ValueError) -> int:
    """The RM error for a call the hypervisor refused: by its `error` code
    as rm_error_from_hyp maps it; DENIED for a code it does not name or a
    refusal without one."""
    code = getattr(refused, "error", None)
    name = _FROM_HYP.get(code, "DENIED") if isinstance(code, int) else "DENIED"
    return rm.ERROR_CODES[name]
