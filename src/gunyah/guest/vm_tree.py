"""The device tree a VMM writes for its VM, with what the resource manager's
parser needs to create it (docs/real-gunyah.md section 12): a
`gunyah-vm-config` node (image name, `memory { base-address }`, proxy-scheduled
`vcpus`), the cpus, PSCI over HVC, and a GICv3 node the VM's interrupts name.
The RM writes the rest (/hypervisor, /memory, the GIC's registers,
/chosen/kaslr-seed) at VM_START. Each keyword changes one thing, so tests can
build the trees the RM must refuse."""

from __future__ import annotations

from collections.abc import Sequence

import fdt

BASE = 0x8000_0000  # the VM's memory base-address, as the measured VMs had it


def vm_device_tree(*, config: str = "gunyah-vm-config", image_name: str | None = "svm",
                   vcpus: list[fdt.Property] | None = None, root_parent: bool = True,
                   interrupts: str | None = None, gic_reg: bool = False, cpus: int = 1,
                   psci: bool = True, chosen: bool = True, extra: Sequence[fdt.Node] = (),
                   memory_props: list[fdt.Property] | None = None,
                   vdevices: Sequence[fdt.Node] = ()) -> bytes:  # fmt: skip
    """The tree, as a DTB of version 17 (`vdevices` under the VM config's
    vdevices node, which is there only with them)."""
    root = fdt.Node("/")
    root.append(fdt.PropWords("#address-cells", 2))
    root.append(fdt.PropWords("#size-cells", 2))
    if root_parent:
        root.append(fdt.PropWords("interrupt-parent", 1))
    cfg = fdt.Node(config)
    if image_name is not None:
        cfg.append(fdt.PropStrings("image-name", image_name))
    mem = fdt.Node("memory")
    base = fdt.PropWords("base-address", BASE >> 32, BASE & 0xFFFF_FFFF)
    for p in memory_props if memory_props is not None else [base]:
        mem.append(p)
    cfg.append(mem)
    v = fdt.Node("vcpus")
    for p in vcpus if vcpus is not None else [fdt.PropStrings("affinity", "proxy")]:
        v.append(p)
    cfg.append(v)
    if interrupts is not None:
        irq = fdt.Node("interrupts")
        irq.append(fdt.PropStrings("config", interrupts))
        cfg.append(irq)
    if vdevices:
        vdev = fdt.Node("vdevices")
        for node in vdevices:
            vdev.append(node)
        cfg.append(vdev)
    root.append(cfg)
    cpu_nodes = fdt.Node("cpus")
    cpu_nodes.append(fdt.PropWords("#address-cells", 1))
    cpu_nodes.append(fdt.PropWords("#size-cells", 0))
    for i in range(cpus):
        cpu = fdt.Node(f"cpu@{i}")
        cpu.append(fdt.PropStrings("device_type", "cpu"))
        cpu.append(fdt.PropStrings("compatible", "arm,armv8"))
        cpu.append(fdt.PropWords("reg", i))
        cpu.append(fdt.PropStrings("enable-method", "psci"))
        cpu_nodes.append(cpu)
    root.append(cpu_nodes)
    if psci:
        p = fdt.Node("psci")
        p.append(fdt.PropStrings("compatible", "arm,psci-1.0", "arm,psci-0.2"))
        p.append(fdt.PropStrings("method", "hvc"))
        root.append(p)
    gic = fdt.Node("intc@3f000000")
    gic.append(fdt.PropStrings("compatible", "arm,gic-v3"))
    gic.append(fdt.PropWords("#interrupt-cells", 3))
    gic.append(fdt.Property("interrupt-controller"))
    gic.append(fdt.PropWords("phandle", 1))
    if gic_reg:
        gic.append(fdt.PropWords("reg", 0, 0x3F000000, 0, 0x10000, 0, 0x3F100000, 0, 0x20000))
    root.append(gic)
    if chosen:
        root.append(fdt.Node("chosen"))
    names = {n.name for n in root.nodes}
    for node in extra:  # the library's append searches its siblings: quadratic for many
        if node.name in names:
            root.append(node)  # which refuses a second node of one name, as it would have
        names.add(node.name)
        node.set_parent(root)
        root.nodes.append(node)
    tree = fdt.FDT(entries=[])  # its own reserve map: the library's default list is shared
    tree.root = root
    return bytes(tree.to_dtb(version=17))
