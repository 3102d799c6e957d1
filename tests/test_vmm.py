"""Our VM manager module (boot/module/gunyah_vm.c) and our VMM (vmm/vmm.c):
they build, from the project's tables, and the VM's device tree is one the
RM's parser takes."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import devicetree
from gunyah.boot import modules
from gunyah.boot.kernel import find_parts
from gunyah.rm import vm_config as vc
from gunyah.toolchain import VM_INIT_ELF, VMM_ELF, build_vm_init, build_vmm
from gunyah.vmm.devicetree import DEFAULT_BASE, TreeError, VmTree, build

# docs/real-gunyah.md section 11 (the launch that works) and section 13 (vcpu_run)
MEASURED_IDS = {
    "VM_ALLOCATE": 0x56000001, "VM_DEALLOCATE": 0x56000002, "VM_START": 0x56000004,
    "VM_STOP": 0x56000005, "VM_RESET": 0x56000006, "VM_CONFIG_IMAGE": 0x56000009,
    "VM_INIT": 0x5600000B, "VM_GET_HYP_RESOURCES": 0x56000020, "MEM_SHARE": 0x51000013,
    "MEM_LEND": 0x51000012, "MEM_RECLAIM": 0x51000015, "NOTIFY_VM_STATUS": 0x56100008,
    "NOTIFY_VM_EXITED": 0x56100001, "NOTIFY_MEM_RELEASED": 0x51100012,
}  # fmt: skip
MEASURED_DEFINES = {
    "GUNYAH_VCPU_RUN": 0xC6008065, "GUNYAH_VCPU_STATE_READY": 0,
    "GUNYAH_VCPU_STATE_EXPECTS_WAKEUP": 1, "GUNYAH_VCPU_STATE_POWERED_OFF": 2,
    "GUNYAH_VCPU_STATE_BLOCKED": 3, "GUNYAH_VCPU_STATE_ADDRSPACE_VMMIO_READ": 4,
    "GUNYAH_VCPU_STATE_ADDRSPACE_VMMIO_WRITE": 5, "GUNYAH_VCPU_STATE_FAULT": 6,
    "GUNYAH_VCPU_STATE_PSCI_SYSTEM_RESET": 0x100, "GUNYAH_VCPU_POWEROFF_EXITED": 1,
    "GUNYAH_VM_STATE_RESET": 11, "GUNYAH_EXIT_PLATFORM_OFF": 1,
    "GUNYAH_EXIT_VM_STOP_FORCED": 7, "GUNYAH_RESOURCE_VCPU": 4,
    # the 44-byte entry: u8 type, u8 0, u16 partner, u32 handle, u32 label, u64 cap ID, ...
    "GUNYAH_RM_HYP_RESOURCE_SIZE": 44, "GUNYAH_RM_HYP_RESOURCE_TYPE": 0,
    "GUNYAH_RM_HYP_RESOURCE_LABEL": 8, "GUNYAH_RM_HYP_RESOURCE_CAP_ID": 12,
    # ... u32 virq handle, u32 virq (vcpu_run's wake-up interrupt: 0x3c2 measured)
    "GUNYAH_RM_HYP_RESOURCE_VIRQ": 24,
    # the Linux series' arch/arm64/gunyah/gunyah_hypercall.c GH_HYPERCALL_BELL_SEND and
    # _BELL_SET_MASK (0x8012, 0x8015 as SMC64 fast vendor-hypervisor calls); its
    # GH_RESOURCE_TYPE_BELL_TX 0 and GH_BELL_NONBLOCK BIT(32) (include/linux/gunyah.h)
    "GUNYAH_BELL_SEND": 0xC6008012, "GUNYAH_BELL_MASK": 0xC6008015,
    "GUNYAH_RESOURCE_BELL_TX": 0, "GUNYAH_BELL_NONBLOCK": 1 << 32,
}  # fmt: skip


def _defines(text: str) -> dict[str, int]:
    return {m[1]: int(m[2], 0) for m in re.finditer(r"#define (\w+) \(?(-?0x[0-9a-f]+|-?\d+)U?\)?",
                                                   text)}  # fmt: skip


def test_the_modules_rm_numbers_are_the_measured_ones() -> None:
    defines = _defines(modules.abi_header())
    for name, value in MEASURED_IDS.items():
        assert defines[f"GUNYAH_RM_{name}"] == value, name
    for name, value in MEASURED_DEFINES.items():
        assert defines[name] == value, name


def test_the_module_finds_the_rm_node_by_the_compatible_the_tree_gives_it() -> None:
    """The module finds the RM node (and so its interrupts) by the first
    compatible the model's tree writes (src/vm_creation/dto_construct.c)."""
    assert '#define GUNYAH_RM_COMPATIBLE "gunyah-resource-manager"' in modules.abi_header()
    assert devicetree.RM_COMPATIBLE[0] == "gunyah-resource-manager"


def test_the_vm_manager_module_builds_for_the_boots_kernel() -> None:
    headers = find_parts().headers
    if headers is None:
        pytest.skip("no kernel headers: gunyah boot-setup was not run")
    ko = modules.build(modules.VM_MANAGER_SOURCE, headers)
    assert modules.vermagic(ko).startswith("6.1.")


@pytest.mark.parametrize(("shipped", "builder"), [(VMM_ELF, build_vmm),
                                                  (VM_INIT_ELF, build_vm_init)])  # fmt: skip
def test_the_shipped_programs_are_built_from_their_source(
        tmp_path: Path, shipped: Path, builder: Callable[[Path], Path]) -> None:  # fmt: skip
    fresh = builder(tmp_path / shipped.name)
    assert fresh.read_bytes() == shipped.read_bytes(), (
        f"{shipped.name} is stale: run python -m gunyah.toolchain and commit it"
    )
    with shipped.open("rb") as f:
        elf = ELFFile(f)
        assert (elf["e_machine"], elf["e_type"]) == ("EM_AARCH64", "ET_EXEC")
        assert not any(s.name == ".interp" for s in elf.iter_sections())  # static


def test_the_vm_tree_is_one_the_rm_takes() -> None:
    cfg = vc.parse(vc.load(build(VmTree())))
    assert cfg is not None
    assert (cfg.image_name, cfg.base, cfg.affinity, cfg.psci) == ("vm", DEFAULT_BASE, "proxy", True)
    assert [c.path for c in cfg.cpus] == ["/cpus/cpu@0"]
    assert cfg.vgic_phandle == 1


def test_the_vm_tree_names_the_timers_ppis_a_linux_guest_needs() -> None:
    """Without an arm,armv8-timer node a Linux secondary has no clock (docs/boot.md
    section 13): the virt machine's PPIs, secure and non-secure physical 13 and
    14, virtual 11, hypervisor 10, level-triggered (GIC_PPI 1, flags 4)."""
    import fdt

    tree = fdt.parse_dtb(build(VmTree()))
    assert tree.get_property("compatible", "/timer").value == "arm,armv8-timer"
    assert list(tree.get_property("interrupts", "/timer").data) == [
        1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4]  # fmt: skip


@given(
    name=st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=79),
    base=st.integers(0x200, 0xFFFF).map(lambda n: n << 21),
    pl011=st.none() | st.integers(0, 0x3FFFF).map(lambda n: n << 12),
    cmdline=st.none() | st.text(st.characters(min_codepoint=1, max_codepoint=0x7E), max_size=64),
)
def test_every_tree_built_reads_back(name: str, base: int, pl011: int | None,
                                     cmdline: str | None) -> None:  # fmt: skip
    blob = build(VmTree(name, base, pl011, cmdline))
    tree = vc.load(blob)
    assert tree is not None
    cfg = vc.parse(tree)
    assert cfg is not None and (cfg.image_name, cfg.base) == (name, base)
    assert vc.find(tree, "/memory") is None  # the real RM refuses a VM's own /memory
    uart = [n for n, path, _ in tree.order if path.startswith("/pl011@")]
    assert len(uart) == (pl011 is not None)
    if pl011 is not None:
        assert vc.raw(uart[0], "reg") == pl011.to_bytes(8, "big") + (0x1000).to_bytes(8, "big")
    if cmdline is not None:
        assert vc.string(vc.find(tree, "/chosen"), "bootargs") == cmdline


@pytest.mark.parametrize(("tree", "says"), [
    (VmTree(image_name=""), "image name"),
    (VmTree(image_name="x" * 80), "image name"),
    (VmTree(image_name="caf\u00e9"), "image name"),
    (VmTree(base=0x8010_0000), "2 MiB"),
    (VmTree(base=0x20_0000), "VMMIO window"),
    (VmTree(base=0), "memory base"),
    (VmTree(pl011=0x4000_0000), "PL011"),
    (VmTree(pl011=0x900_0800), "PL011"),
    (VmTree(cmdline="a\0b"), "command line"),
])  # fmt: skip
def test_trees_that_cannot_work_are_refused(tree: VmTree, says: str) -> None:
    with pytest.raises(TreeError, match=says):
        build(tree)
