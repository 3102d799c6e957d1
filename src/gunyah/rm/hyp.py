"""What the resource manager asks of the hypervisor, and nothing more: the RM
is a client of the hypervisor as the real one is (quic/gunyah-resource-manager
drives quic/gunyah-hypervisor through hypercalls), so it never reaches into
the model. The model implements this Protocol without importing rm/."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol


class Hyp(Protocol):
    """VMs by VMID, their stage 2, physical memory, vCPUs and host entropy."""

    # called by the hypervisor when a VM's last vCPU powers off:
    # (vmid, exit type, reason); exit type 1 PLATFORM_OFF, 2 PLATFORM_RESET
    on_vm_exit: Callable[[int, int, int], None] | None

    def vm_create(self, vmid: int, owner: int) -> None: ...

    def vm_destroy(self, vmid: int) -> None:
        """Every object of the VM, caps to them revoked."""

    def translate(self, vmid: int, ipa: int, size: int) -> int | None:
        """The physical address of [ipa, ipa+size) in VM vmid's stage 2 when it
        is mapped there contiguously, None otherwise: how the RM checks that a
        lender owns what it lends."""

    def map(self, vmid: int, ipa: int, phys: int, size: int, rights: int) -> None:
        """rights: bit 2 R, bit 1 W, bit 0 X (the RM's ACL rights)."""

    def unmap(self, vmid: int, ipa: int, size: int) -> None: ...

    def add_vmmio(self, vmid: int, ipa: int, size: int) -> None:
        """Accesses there by vmid's vCPUs come back to the vCPU's owner as
        vcpu_run exits."""

    def read_phys(self, phys: int, size: int) -> bytes | None: ...

    def write_phys(self, phys: int, data: bytes) -> bool: ...

    def vcpu_create(self, vmid: int, index: int, owner: int) -> tuple[int, int]:
        """(cap ID in the owner VM's cspace with the vcpu_run right, the wake-up
        virq number raised in the owner when the vCPU can run again)."""

    def vcpu_poweron(self, vmid: int, index: int, entry: int, context: int) -> None: ...

    def vm_stop(self, vmid: int) -> None:
        """Every vCPU of the VM halted now."""

    def random_bytes(self, n: int) -> bytes: ...
