"""The guest's device tree: QEMU's own for the machine, edited for the model.

QEMU describes the `virt` machine it builds (`dumpdtb`); this module makes
the edits the hypervisor would (docs/abi.md section 6): the PSCI conduit, the
memory the kernel may use (the shim's 2 MiB at the top are hidden), /chosen
with the command line and the initramfs, no fw_cfg (its DMA interface
writes physical memory, so the shim's stage-2 map leaves it out), and, for a
Gunyah persona, the `hypervisor` node Gunyah's resource manager writes for
its primary VM (`gunyah.abi.devicetree`): the VM's ID and vendor, and the
RPC node of its link to the resource manager.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import fdt

from ..abi import devicetree as dt
from .layout import BOOT_RM_LINK, FW_CFG_PAGE

# QEMU virt's fw_cfg, which the guest is not given (the shim's map leaves it out)
FW_CFG_NODE = f"fw-cfg@{FW_CFG_PAGE:x}"


class DeviceTreeError(Exception):
    """QEMU's device tree lacks what the edit needs."""


@dataclass(frozen=True)
class Edit:
    method: str  # "hvc" or "smc": the PSCI and SMCCC conduit
    memory_base: int
    memory_size: int  # what the kernel may use
    bootargs: str  # any text without NUL, the empty one included
    initrd: tuple[int, int] | None  # start, end
    gunyah: bool  # add the hypervisor node
    link: dt.RmRpc = BOOT_RM_LINK  # the RM node's interrupts: SPIs the machine's GIC has


def command_line_bytes(text: str) -> bytes:
    """The command line as the DT holds it: UTF-8, with bytes that were not
    (an argument's surrogate escapes) given back as they came; ValueError for
    what no byte string spells (a NUL, a lone surrogate)."""
    if "\0" in text:
        raise ValueError("a command line cannot hold a NUL character")
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError("a command line must be text (it holds a lone surrogate)") from None


def hypervisor_node(rpc: dt.RmRpc) -> fdt.Node:
    """/hypervisor as the resource manager writes it for the primary VM."""
    hyp = fdt.Node(dt.HYPERVISOR_NODE)
    hyp.append(fdt.PropWords("#address-cells", 2))
    hyp.append(fdt.PropWords("#size-cells", 0))
    hyp.append(fdt.PropStrings("compatible", *dt.HYPERVISOR_COMPATIBLE))
    vm = fdt.Node(dt.VM_ID_NODE)
    vm.append(fdt.PropStrings("compatible", *dt.VM_ID_COMPATIBLE))
    vm.append(fdt.PropWords("qcom,vmid", dt.PRIMARY_VM_ID))
    vm.append(fdt.PropStrings("qcom,vendor", dt.PRIMARY_VM_VENDOR))
    hyp.append(vm)
    rm = fdt.Node(rpc.node_name)
    rm.append(fdt.PropStrings("compatible", *dt.RM_COMPATIBLE))
    rm.append(fdt.PropWords("reg", *_cells64(rpc.tx_cap), *_cells64(rpc.rx_cap)))
    rm.append(fdt.PropWords("interrupts", dt.GIC_SPI, rpc.tx_virq, dt.IRQ_EDGE_RISING,
                            dt.GIC_SPI, rpc.rx_virq, dt.IRQ_EDGE_RISING))  # fmt: skip
    rm.append(fdt.PropWords("qcom,free-irq-start", rpc.free_irq_start))
    rm.append(fdt.Property("qcom,is-full-duplex"))
    for direction in ("tx", "rx"):
        rm.append(fdt.PropWords(f"qcom,{direction}-queue-depth", rpc.queue_depth))
    for direction in ("tx", "rx"):
        rm.append(fdt.PropWords(f"qcom,{direction}-message-size", rpc.message_size))
    hyp.append(rm)
    return hyp


def _cells64(value: int) -> list[int]:
    return [value >> 32, value & 0xFFFF_FFFF]


def edit(dtb: bytes, e: Edit) -> bytes:
    """QEMU's device tree with the edits made; DeviceTreeError if it is not
    the tree of a `virt` machine (no /psci, no memory node)."""
    try:
        tree = fdt.parse_dtb(dtb)
    except Exception as err:  # the library raises bare Exceptions on bad input
        raise DeviceTreeError(f"QEMU's device tree does not parse: {err}") from None
    # The fdt library (0.3.3) gives every tree it parses one shared reserve
    # list, its FDT's default argument, and appends each tree's /memreserve/
    # entries to it: what any earlier parse in this process reserved would be
    # written into this tree too. QEMU's virt tree reserves nothing, so this
    # one's list is empty, and a tree that reserves is not QEMU's.
    rsvmap = struct.unpack_from(">I", dtb, 16)[0] if len(dtb) >= 20 else 0
    if dtb[rsvmap : rsvmap + 16] != bytes(16):
        raise DeviceTreeError("QEMU's device tree reserves memory: not a virt machine's")
    tree.entries = []
    if not tree.exist_node("psci"):
        raise DeviceTreeError("QEMU's device tree has no /psci node")
    memory = f"memory@{e.memory_base:x}"
    if not tree.exist_node(memory):
        raise DeviceTreeError(f"QEMU's device tree has no /{memory} node")
    tree.set_property("method", e.method, path="/psci")
    tree.set_property(
        "reg", [*_cells64(e.memory_base), *_cells64(e.memory_size)], path=f"/{memory}"
    )
    fw_cfg = tree.get_node(FW_CFG_NODE, create=False) if tree.exist_node(FW_CFG_NODE) else None
    if fw_cfg is None or (fw_cfg.get_property("reg") or [0, 0])[1] != FW_CFG_PAGE:
        raise DeviceTreeError(f"QEMU's device tree has no fw_cfg at {FW_CFG_PAGE:#x}")
    tree.remove_node(FW_CFG_NODE)
    # bytes, not a string property: the command line may be any UTF-8, or empty
    tree.set_property("bootargs", command_line_bytes(e.bootargs) + b"\0", path="/chosen")
    if e.initrd is not None:
        tree.set_property("linux,initrd-start", _cells64(e.initrd[0]), path="/chosen")
        tree.set_property("linux,initrd-end", _cells64(e.initrd[1]), path="/chosen")
    if e.gunyah:
        tree.add_item(hypervisor_node(e.link), "/")
    out: bytes = tree.to_dtb(version=17)
    return out
