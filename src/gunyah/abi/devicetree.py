"""Gunyah's nodes in a VM's device tree, as its resource manager writes them
for the primary VM (quic/gunyah-resource-manager bf31a9a:
src/vm_creation/dto_construct.c; measured on the QEMU build, docs/real-gunyah.md
section 9, the device tree the RM gives its primary VM). `gunyah boot`
writes them, `gunyah probe` recognises them.
"""

from __future__ import annotations

from dataclasses import dataclass

HYPERVISOR_NODE = "hypervisor"
HYPERVISOR_COMPATIBLE = ("qcom,gunyah-hypervisor-1.0", "qcom,gunyah-hypervisor", "simple-bus")
VM_ID_NODE = "qcom,gunyah-vm"
VM_ID_COMPATIBLE = ("qcom,gunyah-vm-id-1.0", "qcom,gunyah-vm-id")
RM_COMPATIBLE = ("gunyah-resource-manager", "qcom,resource-manager-1-0", "qcom,resource-manager")

# Every compatible a Gunyah node has carried (the probe accepts each): the
# hypervisor node, and the resource manager's RPC node, including the upstream
# proposals' `gunyah-hypervisor`/`gunyah-resource-manager-1-0`.
GUNYAH_COMPATIBLES = frozenset(
    {"gunyah-hypervisor", "gunyah-hypervisor-1.0", *HYPERVISOR_COMPATIBLE[:2]}
)
RM_COMPATIBLES = frozenset({*RM_COMPATIBLE, "gunyah-resource-manager-1-0"})

GIC_SPI = 0  # interrupt specifier: SPI
IRQ_EDGE_RISING = 1
SPI_BASE = 32  # a GIC's first SPI's interrupt ID (an SPI's number in a tree is its ID less 32)


@dataclass(frozen=True)
class RmRpc:
    """The resource manager's RPC link as the primary VM sees it: its two
    message queues (capability IDs), their virtual interrupts and sizes.
    The queues' interrupts are SPI numbers, as the tree's `interrupts` holds
    them; `free_irq_start`, where the RM hands out virqs from, is an
    interrupt ID, as the RM writes it (src/vm_creation/dto_construct.c:
    `interrupts` is each virq less 32, `qcom,free-irq-start` 960)."""

    tx_cap: int = 0
    rx_cap: int = 1
    tx_virq: int = 0x3A0  # SPI numbers
    rx_virq: int = 0x3A1
    free_irq_start: int = 0x3C0  # an interrupt ID
    queue_depth: int = 8
    message_size: int = 0xF0

    @property
    def tx_intid(self) -> int:
        """The send queue's not-full interrupt, as the GIC numbers it."""
        return SPI_BASE + self.tx_virq

    @property
    def rx_intid(self) -> int:
        """The receive queue's not-empty interrupt, as the GIC numbers it."""
        return SPI_BASE + self.rx_virq

    @property
    def node_name(self) -> str:
        return f"qcom,resource-manager-rpc@{self.tx_cap:016x}"


RM_LINK = RmRpc()  # the QEMU build's, measured
PRIMARY_VM_ID = 3  # HLOS
PRIMARY_VM_VENDOR = "Qualcomm"
