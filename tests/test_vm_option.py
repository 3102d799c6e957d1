"""`gunyah boot --vm IMAGE` without booting: what the image is, the VM's
memory and tree checked (each refusal one line, exit 2), the VMM's report
read from hostile console lines, and the secondaries' calls placed among the
primary's with their VM IDs. The boot itself: tests/test_boot_vm.py."""

from __future__ import annotations

from pathlib import Path

import fdt
import pytest
from cli_helpers import assert_usage_error, gunyah
from hypothesis import given
from hypothesis import strategies as st
from test_boot_parts import _read_newc

from gunyah import outcome, render
from gunyah.abi import rm
from gunyah.boot import initramfs
from gunyah.boot import vm as bvm
from gunyah.boot.kernel import IMAGE_HEADER, IMAGE_MAGIC
from gunyah.conduit import TrapRecord
from gunyah.guest.vm_tree import vm_device_tree
from gunyah.model.secondary_log import MAX_CALLS, SecondaryLog, merge
from gunyah.rm import vm_config as vc
from gunyah.toolchain import VM_INIT_ELF
from gunyah.trace import runlog
from gunyah.vmm.devicetree import DEFAULT_BASE

RAW = (0x1400_0000).to_bytes(4, "little")  # b .


def image(size: int = 0x1000, image_size: int = 0x1000) -> bytes:
    """An arm64 Image: the header Linux's booting.rst gives, its magic at byte 56."""
    head = IMAGE_HEADER.pack(0, 0, 0, image_size, 0, 0, 0, 0, IMAGE_MAGIC, 0)
    return head + bytes(size - len(head))


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    p = tmp_path / name
    p.write_bytes(data)
    return p


# -- the image and the memory ---------------------------------------------------------
def test_the_image_header_magic_is_linuxs() -> None:
    # Documentation/arch/arm64/booting.rst: magic 0x644d5241 ("ARM\x64") at offset 56
    assert IMAGE_MAGIC == 0x644D5241 and IMAGE_HEADER.size == 64
    assert image()[56:60] == b"ARM\x64"
    assert bvm.image_kind(image()) == "linux"
    assert bvm.image_kind(RAW) == "raw"
    assert bvm.image_kind(image()[:63]) == "raw"  # a header cut short is no Image


@given(st.binary(max_size=128))
def test_any_bytes_are_an_image_only_with_the_magic(data: bytes) -> None:
    linux = len(data) >= 64 and data[56:60] == b"ARM\x64"
    elf = data[:4] == b"\x7fELF"
    assert bvm.image_kind(data) == ("linux" if linux else "elf" if elf else "raw")


# A static ELF for --vm: entered at its first byte, 32 KiB of .bss, and a
# `stacktop` symbol past its segments, as kvm-unit-tests' .elf files have
ELF_GUEST = """
	.text
	.global _start
_start:
	b	.
	.global later
later:
	b	.
	.globl	stacktop
	.set	stacktop, STACKTOP
	.bss
	.space	0x8000
"""
# a static PIE at 0 whose first byte is its entry, as kvm-unit-tests links one
PIE_LD = """ENTRY(_start)
SECTIONS
{
	. = 0;
	.text : { *(.text*) }
	.data : { *(.data*) *(.got*) }
	.dynamic : { *(.dynamic) }
	.rela.dyn : { *(.rela*) }
	.bss : { *(.bss*) }
	/DISCARD/ : { *(.interp) *(.dynsym) *(.dynstr) *(.hash) *(.gnu.hash) *(.note*) }
}
"""


def _elf(tmp_path: Path, name: str, stacktop: int, *flags: str) -> Path:
    from gunyah.toolchain import build

    src = tmp_path / f"{name}.S"
    src.write_text(ELF_GUEST.replace("STACKTOP", hex(stacktop)))
    return build([src], tmp_path / f"{name}.elf", flags)


def _ld(tmp_path: Path, name: str, text: str) -> str:
    script = tmp_path / name
    script.write_text(text)
    return f"-Wl,-T,{script}"


def test_an_elf_goes_whole_from_its_first_address_and_the_tree_past_its_stack(
    tmp_path: Path,
) -> None:
    """An ELF is laid out as one image from its first address, zeros for its
    .bss and up to its `stacktop`, and a page more: our VMM puts the tree
    after the image, and kvm-unit-tests asserts the tree lies above its
    stack's top (lib/arm/setup.c). Linked at the VM's base, or a static PIE,
    it goes at the base; its memory is a raw binary's."""
    at_base = _ld(tmp_path, "base.ld", PIE_LD.replace(". = 0;", f". = {DEFAULT_BASE:#x};"))
    exe = _elf(tmp_path, "exe", DEFAULT_BASE + 0x30000, at_base)
    spec = bvm.VmSpec(exe)
    p = bvm.plan(spec)
    assert (p.kind, p.image_bytes, p.memory, p.base) == ("elf", 0x31000, 2 << 20, DEFAULT_BASE)
    (data,) = [d for name, d in bvm.files(spec, p, b"vmm") if name == bvm.IMAGE_PATH]
    assert data[:8] == RAW * 2 and len(data) == 0x31000 and not any(data[8:])
    pie = _elf(tmp_path, "pie", 0x30000, "-fPIE", "-pie", _ld(tmp_path, "pie.ld", PIE_LD))
    assert (bvm.plan(bvm.VmSpec(pie)).kind, bvm.plan(bvm.VmSpec(pie)).image_bytes) == (
        "elf", 0x31000)  # fmt: skip


def test_an_elf_the_vm_cannot_run_so_is_refused_in_one_line(tmp_path: Path) -> None:
    low_ld = _ld(tmp_path, "low.ld", PIE_LD.replace(". = 0;", ". = 0x40000000;"))
    elsewhere = _elf(tmp_path, "low", 0x40030000, low_ld)
    with pytest.raises(bvm.VmError, match="linked at 0x40000000, but the VM's memory starts at "
                       "0x80000000; link it there, or as a static PIE"):  # fmt: skip
        bvm.plan(bvm.VmSpec(elsewhere))
    at_base = _ld(tmp_path, "base.ld", PIE_LD.replace(". = 0;", f". = {DEFAULT_BASE:#x};"))
    secondary_ld = Path(__file__).resolve().parent / "guests" / "secondary" / "secondary.ld"
    later = _elf(tmp_path, "later", DEFAULT_BASE, f"-Wl,-T,{secondary_ld}", "-Wl,-e,later")
    with pytest.raises(bvm.VmError, match="entry point 0x80000004 is not its first address"):
        bvm.plan(bvm.VmSpec(later))
    big = _elf(tmp_path, "big", DEFAULT_BASE + (4 << 20), at_base)  # its stack past 2 MiB
    with pytest.raises(bvm.VmError, match="more than the VM's 2 MiB; give more with --vm-memory"):
        bvm.plan(bvm.VmSpec(big))
    assert bvm.plan(bvm.VmSpec(big, memory=6 << 20)).image_bytes == (4 << 20) + 0x1000
    huge = _elf(tmp_path, "huge", DEFAULT_BASE + (300 << 20), at_base)  # past any VM's memory
    with pytest.raises(bvm.VmError, match="reaches 307200 KiB from its first address, more "
                       "than the 131072 KiB it may have"):  # fmt: skip
        bvm.plan(bvm.VmSpec(huge))


@given(st.binary(max_size=512))
def test_any_bytes_after_an_elf_magic_are_taken_or_refused_in_one_line(data: bytes) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "elf"
        path.write_bytes(b"\x7fELF" + data)
        try:
            p = bvm.plan(bvm.VmSpec(path))
        except bvm.VmError as e:
            assert "\n" not in str(e) and str(path) in str(e)
        else:
            assert p.kind == "elf" and p.image_bytes <= p.memory


def test_a_raw_binary_gets_the_measured_vms_memory_and_our_tree(tmp_path: Path) -> None:
    p = bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW)))
    assert (p.kind, p.memory, p.base, p.image_bytes) == ("raw", 2 << 20, DEFAULT_BASE, 4)
    assert p.run == "/vmm /vm/image /vm/dtb 0x200000 0x80000000"
    tree = vc.load(p.tree)
    assert tree is not None
    cfg = vc.parse(tree)
    assert cfg is not None and (cfg.affinity, cfg.base) == ("proxy", DEFAULT_BASE)
    uart = vc.find(tree, "/pl011@9000000")  # the console our VMM emulates
    assert uart is not None and vc.compatible(uart, "arm,pl011")


def test_an_image_gets_more_memory_and_its_bss_is_counted(tmp_path: Path) -> None:
    p = bvm.plan(bvm.VmSpec(write(tmp_path, "Image", image()), cmdline="console=ttyAMA0"))
    assert (p.kind, p.memory) == ("linux", 128 << 20)
    tree = vc.load(p.tree)
    assert tree is not None
    chosen = vc.find(tree, "/chosen")
    assert chosen is not None and vc.string(chosen, "bootargs") == "console=ttyAMA0"
    big = write(tmp_path, "big", image(image_size=4 << 20))  # 4 KiB of file, 4 MiB of bss
    with pytest.raises(bvm.VmError, match="give more with --vm-memory"):
        bvm.plan(bvm.VmSpec(big, memory=4 << 20))
    assert bvm.plan(bvm.VmSpec(big, memory=6 << 20)).memory == 6 << 20


@pytest.mark.parametrize("size", [0, 1 << 20, 3 << 20, 258 << 20, 1 << 30])
def test_vm_memory_out_of_bounds_is_refused(size: int, tmp_path: Path) -> None:
    with pytest.raises(bvm.VmError, match="2 to 256 MiB, in steps of 2 MiB"):
        bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW), memory=size))


def _chosen_initrd(blob: bytes) -> tuple[int, int]:
    tree = fdt.parse_dtb(blob)
    start, end = (list(tree.get_property(f"linux,initrd-{n}", "/chosen").data)
                  for n in ("start", "end"))  # fmt: skip
    return start[0] << 32 | start[1], end[0] << 32 | end[1]


def test_an_image_gets_our_initramfs_at_the_top_of_its_memory(tmp_path: Path) -> None:
    """A Linux secondary boots to an init and powers off (docs/boot.md section
    14): ours, /init (vmm/vm_init.c) and /dev/console (5, 1) in a newc archive
    at the top of the VM's memory, page-aligned, its place in /chosen as
    Linux's drivers/of/fdt.c reads it (the end exclusive)."""
    p = bvm.plan(bvm.VmSpec(write(tmp_path, "Image", image())))
    files = dict(bvm.files(bvm.VmSpec(tmp_path / "Image"), p, b"vmm"))
    archive = _read_newc(files["/vm/initrd"])
    assert archive["init"] == (0o100755, VM_INIT_ELF.read_bytes(), (0, 0))
    assert archive["dev/console"][0::2] == (0o20600, (5, 1))
    size = len(files["/vm/initrd"])
    assert p.initrd_bytes == size and p.initrd_offset == (128 << 20) - -(-size // 4096) * 4096
    assert _chosen_initrd(p.tree) == (DEFAULT_BASE + p.initrd_offset,
                                      DEFAULT_BASE + p.initrd_offset + size)  # fmt: skip
    assert p.run == f"/vmm /vm/image /vm/dtb 0x8000000 0x80000000 /vm/initrd {p.initrd_offset:#x}"
    raw = bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW)))  # a raw binary: none unless given
    assert raw.initrd_bytes == 0 and "/vm/initrd" not in raw.run
    assert "/vm/initrd" not in dict(bvm.files(bvm.VmSpec(tmp_path / "raw"), raw, b"vmm"))


def test_a_users_initramfs_goes_where_theirs_would_and_must_fit(tmp_path: Path) -> None:
    rd = write(tmp_path, "rd", b"\x1f\x8b" + bytes(5000))
    spec = bvm.VmSpec(write(tmp_path, "raw", RAW), initrd=rd)
    p = bvm.plan(spec)
    assert (p.initrd_bytes, p.initrd_offset) == (5002, (2 << 20) - 0x2000)
    assert dict(bvm.files(spec, p, b""))["/vm/initrd"] == rd.read_bytes()
    blob = vm_device_tree(config="gunyah-vm-config")  # the user's tree gets the place too
    own = bvm.plan(bvm.VmSpec(tmp_path / "raw", dtb=write(tmp_path, "dtb", blob), initrd=rd))
    assert _chosen_initrd(own.tree) == (DEFAULT_BASE + own.initrd_offset,
                                        DEFAULT_BASE + own.initrd_offset + 5002)  # fmt: skip
    with pytest.raises(bvm.VmError, match="empty; give a cpio archive"):
        bvm.plan(bvm.VmSpec(tmp_path / "raw", initrd=write(tmp_path, "e", b"")))
    too_big = write(tmp_path, "too-big", bytes(3 << 20))
    with pytest.raises(bvm.VmError, match="3072 KiB, more than the VM's 2 MiB; give more"):
        bvm.plan(bvm.VmSpec(tmp_path / "raw", initrd=too_big))
    with pytest.raises(bvm.VmError, match="over 2048 KiB"):  # not read past the VM's memory
        bvm.plan(bvm.VmSpec(tmp_path / "raw", initrd=too_big, memory=2 << 20))
    # image, tree and its room to grow (64 KiB), initramfs: 2 MiB cannot hold them all
    big = write(tmp_path, "big", bytes((2 << 20) - 0x11000))
    with pytest.raises(bvm.VmError, match="its room to grow and the initramfs .* give more"):
        bvm.plan(bvm.VmSpec(big, initrd=rd))
    assert bvm.plan(bvm.VmSpec(big, initrd=rd, memory=4 << 20)).initrd_bytes == 5002


@given(span=st.integers(1, 64), rd=st.integers(1, 64), mb=st.integers(1, 4))
def test_the_image_tree_and_initramfs_never_overlap(span: int, rd: int, mb: int) -> None:
    """Any sizes: refused, or laid out as our VMM checks it (vmm.c: the
    initramfs page-aligned, past the tree's room, inside the memory)."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        im = write(Path(d), "Image", image(image_size=span << 15))
        spec = bvm.VmSpec(im, memory=mb << 21, initrd=write(Path(d), "rd", bytes(rd << 15)))
        try:
            p = bvm.plan(spec)
        except bvm.VmError as e:
            assert "give more with --vm-memory" in str(e)
            return
    dt_off = max(-(-(span << 15) // 4096) * 4096, 4096)
    room = max(min(bvm.DT_ROOM, p.memory - dt_off), len(p.tree))
    assert p.initrd_offset % 4096 == 0 and dt_off + room <= p.initrd_offset
    assert p.initrd_offset + p.initrd_bytes <= p.memory


def test_vm_cpus_are_our_trees_cpus_and_a_users_tree_names_its_own(tmp_path: Path) -> None:
    """--vm-cpus N: our tree names cpu@0..N-1, which our VMM counts (a thread
    a vCPU: docs/boot.md section 15); the user's tree's cpus are its own."""
    p = bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW), cpus=3))
    tree = vc.load(p.tree)
    cfg = None if tree is None else vc.parse(tree)
    assert cfg is not None and [c.path for c in cfg.cpus] == [f"/cpus/cpu@{i}" for i in range(3)]
    assert p.cpus == 3
    own = write(tmp_path, "dtb", vm_device_tree(cpus=2))
    assert bvm.plan(bvm.VmSpec(tmp_path / "raw", dtb=own)).cpus == 2


def test_the_vmms_room_for_the_tree_is_the_plans() -> None:
    source = (VM_INIT_ELF.parent / "vmm.c").read_text()
    assert f"#define DT_ROOM {bvm.DT_ROOM:#x}UL" in source


def test_an_image_bigger_than_the_vm_is_refused_before_it_is_read_whole(tmp_path: Path) -> None:
    raw = write(tmp_path, "raw", bytes(3 << 20))
    with pytest.raises(bvm.VmError, match="over 2048 KiB"):
        bvm.plan(bvm.VmSpec(raw, memory=2 << 20))
    with pytest.raises(bvm.VmError, match=r"need 307[3-9] KiB, more than the VM's 2 MiB"):
        bvm.plan(bvm.VmSpec(raw))  # the default for a raw binary
    with pytest.raises(bvm.VmError, match="empty"):
        bvm.plan(bvm.VmSpec(write(tmp_path, "empty", b"")))
    with pytest.raises(bvm.VmError, match="not a regular file"):
        bvm.plan(bvm.VmSpec(tmp_path))


# -- the user's tree -------------------------------------------------------------------
def test_a_users_tree_gets_what_the_rm_needs_and_keeps_the_rest(tmp_path: Path) -> None:
    extra = fdt.Node("mine")
    extra.append(fdt.PropStrings("compatible", "acme,thing"))
    blob = vm_device_tree(config="nothing-of-ours", vcpus=[], extra=[extra])
    spec = bvm.VmSpec(write(tmp_path, "raw", RAW), dtb=write(tmp_path, "dtb", blob),
                      cmdline="quiet")  # fmt: skip
    p = bvm.plan(spec)
    tree = vc.load(p.tree)
    assert tree is not None
    cfg = vc.parse(tree)
    assert cfg is not None
    assert (cfg.image_name, cfg.affinity, cfg.base) == ("vm", "proxy", DEFAULT_BASE)
    assert vc.find(tree, "/mine") is not None and vc.find(tree, "/nothing-of-ours") is not None
    chosen = vc.find(tree, "/chosen")
    assert chosen is not None and vc.string(chosen, "bootargs") == "quiet"
    assert vc.find(tree, "/pl011@9000000") is None  # not ours: the user's tree as given


def test_a_users_memory_base_is_where_the_vmm_maps_the_vm(tmp_path: Path) -> None:
    base = 0x1_0000_0000
    blob = vm_device_tree(memory_props=[fdt.PropWords("base-address", base >> 32, 0)])
    p = bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW), dtb=write(tmp_path, "dtb", blob)))
    assert p.base == base and p.run.endswith(f" {base:#x}")


@pytest.mark.parametrize(
    ("blob", "says"),
    [
        (b"not a tree", "not a device tree blob"),
        (vm_device_tree(cpus=0), "at VM_INIT: no vCPU enabled at boot"),
        (vm_device_tree(root_parent=False), "no GICv3"),
        (vm_device_tree(memory_props=[fdt.PropWords("base-address", 0, 0x2000_0000)]),
         "lies in the VMMIO window"),
        (vm_device_tree(image_name="x" * 80), "the RM would refuse it at VM_INIT"),
    ],
)  # fmt: skip
def test_a_tree_the_rm_would_refuse_is_refused_first(blob: bytes, says: str,
                                                     tmp_path: Path) -> None:  # fmt: skip
    with pytest.raises(bvm.VmError, match=says):
        bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW), dtb=write(tmp_path, "dtb", blob)))


def test_a_memory_node_is_refused_as_the_rm_refuses_it(tmp_path: Path) -> None:
    mem = fdt.Node("ram@80000000")
    mem.append(fdt.PropStrings("device_type", "memory"))
    blob = vm_device_tree(extra=[mem])
    with pytest.raises(bvm.VmError, match="VM_INIT: /ram@80000000 is a memory node other than"):
        bvm.plan(bvm.VmSpec(write(tmp_path, "raw", RAW), dtb=write(tmp_path, "dtb", blob)))


@given(st.binary(max_size=512))
def test_any_bytes_as_a_tree_are_taken_or_refused_in_one_line(data: bytes) -> None:
    try:
        out, cfg = bvm.user_tree(data, Path("dtb"), None, None)
    except bvm.VmError as e:
        assert "\n" not in str(e)
    else:
        assert vc.load(out) is not None and cfg.base >= 0x4000_0000


@given(config=st.sampled_from(["gunyah-vm-config", "qcom,vm-config", "other"]),
       name=st.one_of(st.none(), st.text("ax", min_size=1, max_size=90)),
       cpus=st.integers(0, 10), psci=st.booleans(), parent=st.booleans(),
       chosen=st.booleans(), affinity=st.sampled_from(["proxy", "static", "pinned"]))  # fmt: skip
def test_a_users_tree_is_one_the_rm_takes_or_refused(config: str, name: str | None, cpus: int,
                                                     psci: bool, parent: bool, chosen: bool,
                                                     affinity: str) -> None:  # fmt: skip
    blob = vm_device_tree(config=config, image_name=name, cpus=cpus, psci=psci,
                          root_parent=parent, chosen=chosen,
                          vcpus=[fdt.PropStrings("affinity", affinity)])  # fmt: skip
    try:
        out, cfg = bvm.user_tree(blob, Path("dtb"), "x", None)
        base = cfg.base
    except bvm.VmError as e:
        assert "\n" not in str(e) and str(e).startswith("--vm-dtb dtb: ")
        assert not (0 < cpus <= 8 and parent) or (name is not None and len(name) >= 80)
        return
    tree = vc.load(out)
    assert tree is not None
    cfg = vc.parse(tree)
    assert cfg is not None and cfg.affinity == "proxy" and 0 < len(cfg.cpus) <= 8
    assert base == cfg.base == DEFAULT_BASE and vc.find(tree, "/chosen") is not None


# -- the command line ------------------------------------------------------------------
def test_refusals_come_before_any_boot_as_one_line(tmp_path: Path) -> None:
    raw = write(tmp_path, "raw", RAW)
    assert_usage_error(gunyah("boot", "--vm", str(tmp_path / "missing")),
                       "missing: not a regular file")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--vm-memory", "1G"),
                       "--vm-memory: 1024 MiB; a VM is given 2 to 256 MiB")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--vm-dtb", str(raw)),
                       "not a device tree blob")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm-memory", "4M"), "give --vm too")
    assert_usage_error(gunyah("boot", "--vm-initrd", str(raw)), "--vm-initrd: for the VM of")
    for n in ("0", "9"):
        assert_usage_error(gunyah("boot", "--vm", str(raw), "--vm-cpus", n),
                           f"--vm-cpus: {n}; a VM is given 1 to 8 vCPUs")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--vm-cpus", "2", "--vm-dtb",
                              str(write(tmp_path, "dtb", vm_device_tree()))),
                       "--vm-cpus: for our tree")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--vm-initrd", str(tmp_path)),
                       f"--vm-initrd {tmp_path}: not a regular file")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--persona", "kvm"),
                       "no resource manager")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--run", "true"),
                       "cannot go with --run")  # fmt: skip
    assert_usage_error(gunyah("boot", "--no-vm-manager", "--module", str(raw)),
                       "--no-vm-manager: for the VM of --vm IMAGE; give --vm too")  # fmt: skip
    assert_usage_error(gunyah("boot", "--vm", str(raw), "--no-vm-manager"),
                       "--no-vm-manager: give your VM manager with --module")  # fmt: skip


def test_help_explains_each_option_and_the_vm_exit_status() -> None:
    text = " ".join(gunyah("boot", "--help").stdout.split())
    for option in ("--vm IMAGE", "--vm-memory SIZE", "--vm-cmdline STRING", "--vm-dtb FILE",
                   "--vm-initrd FILE", "--no-vm-manager"):  # fmt: skip
        assert option in text
    assert f"{outcome.EXIT_VM_FAILED} with --vm when the boot would exit 0" in text
    assert outcome.EXIT_VM_FAILED not in (0, 1, 2, 3, 4, 5, 125)  # no other meaning


# -- the VMM's report --------------------------------------------------------------------
def _plan(tmp_path: Path) -> tuple[bvm.VmPlan, bvm.VmSpec]:
    spec = bvm.VmSpec(write(tmp_path, "raw", RAW))
    return bvm.plan(spec), spec


def test_the_report_names_the_end_and_counts_the_exits(tmp_path: Path) -> None:
    p, spec = _plan(tmp_path)
    lines = ["[    1.6] gunyah-vm: VM_ALLOCATE gave VMID 0x80",
             "vmm: started VM, image 0x4 bytes at 0x80000000, DTB at 0x80001000",
             "vmm: console hi vm", "vmm: mmio write 0x6000 8 0x1",
             "vmm: exit powered-off type 1 reason 0x0", "vmm: vcpu_run returned 9 times",
             "vmm: life cycle 2345 us", "vmm: life cycle 1 us", "vmm: done",
             f"{initramfs.RAN}0"]  # fmt: skip
    r = bvm.report(lines, p, spec, 0x80, (1, 0))
    assert r["console"] == ["hi vm"] and r["exits"] == 9 and r["vmid"] == 0x80
    assert r["life_cycle_us"] == 2345  # the first the VMM said
    assert bvm.report(lines[:5], p, spec, 0x80)["life_cycle_us"] is None
    assert r["hypervisor_end"] == {"exit_type": 1, "exit_type_name": "PLATFORM_OFF",
                                   "reason": 0, "reason_name": "NORMAL"}  # fmt: skip
    assert r["end"] == {"status": "powered-off", "exit_type": 1, "exit_type_name": "PLATFORM_OFF",
                        "reason": 0, "reason_name": "NORMAL"}  # fmt: skip
    assert rm.EXIT_TYPES[1] == "PLATFORM_OFF"  # include/vm_mgnt.h
    assert r["ok"] and r["problem"] is None and (r["vmm"], r["vmm_status"]) == ("done", 0)
    text = "\n".join(render.vm_report(r))
    assert "  | hi vm" in text and "life cycle (create to teardown) 2.3 ms" in text
    assert "exit type PLATFORM_OFF (1), reason NORMAL (0x0); 9 exits" in text
    assert "as the hypervisor told the RM" not in text  # the two agree
    assert r["test_status"] is None and "vm test:" not in text
    # a poll: our VMM prints the exit once and counts the rest
    polled = ["vmm: started VM", "vmm: mmio read 0x7030 8 -> 0x0", "vmm: the same again 99 times",
              "vmm: cpu1 the same again 5 times", "vmm: the same again x times"]  # fmt: skip
    assert bvm.report(polled, p, spec, 0x80)["exits"] == 1 + 99 + 5
    # a kvm-unit-tests test's end (lib/arm/io.c: STATUS (code << 1) | 1): its
    # code 0 passes, 77 >> 1 skips, any other fails the VM; an even STATUS is
    # no such end
    for status, code, ok in ((1, 0, True), (77, 38, True), (3, 1, False), (4, None, True)):
        t = bvm.report(lines[:3] + [f"vmm: console EXIT: STATUS={status}"] + lines[3:], p, spec,
                       0x80)  # fmt: skip
        assert (t["test_status"], t["ok"]) == (code, ok), status
        said = "\n".join(render.vm_report(t))
        assert (f"vm test: exited {code}" in said) == (code is not None)
    assert "the VM's test failed: it exited 1 (EXIT: STATUS=3 on its console" in str(
        bvm.report(lines[:3] + ["vmm: console EXIT: STATUS=3"] + lines[3:], p, spec, 0x80)[
            "problem"])  # fmt: skip
    lied = "\n".join(render.vm_report(bvm.report(lines, p, spec, 0x80, (5, 1))))
    assert "as the hypervisor told the RM: exit type SOFTWARE_ERROR (5), reason " \
        "SOFTWARE_ERROR (0x1)" in lied  # fmt: skip


@pytest.mark.parametrize(
    ("lines", "says"),
    [
        ([], "our VMM never started the VM"),
        (["vmm: started VM", "vmm: error GH_VCPU_RUN errno 22"],
         "our VMM failed: error GH_VCPU_RUN"),
        (["vmm: error GH_VM_SET_USER_MEM_REGION errno 7"], "give less with --vm-memory"),
        (["vmm: error GH_VM_START errno 12"], "no room for this VM: give less with --vm-memory"),
        (["vmm: started VM"], "the VM never ended"),
        (["vmm: started VM", "vmm: exit crashed type 5 reason 0x1", "vmm: done"],
         "the VM ended crashed: SOFTWARE_ERROR, reason SOFTWARE_ERROR"),
        (["vmm: started VM", "vmm: exit powered-off type 7 reason 0x0", "vmm: done"],
         "VM_STOP_FORCED"),
        (["vmm: started VM", "vmm: exit load-failed", "vmm: done"], "ended with load-failed"),
        (["vmm: started VM", "vmm: exit powered-off type 1 reason 0x0"], "our VMM did not finish"),
    ],
)  # fmt: skip
def test_each_way_a_vm_fails_is_said_in_one_line(lines: list[str], says: str,
                                                 tmp_path: Path) -> None:  # fmt: skip
    p, spec = _plan(tmp_path)
    r = bvm.report(lines, p, spec, None)
    assert not r["ok"] and says in r["problem"] and "\n" not in r["problem"]


def test_a_linux_secondary_that_never_ends_says_what_to_do() -> None:
    """A Linux secondary boots to its init (docs/boot.md section 14); one that
    never ends has most likely found no init in the user's initramfs and
    panicked: the problem says what to do. A raw one gets no such hint."""
    spec = bvm.VmSpec(Path("Image"))
    linux = bvm.VmPlan("linux", 4, 128 << 20, DEFAULT_BASE, b"")
    r = bvm.report(["vmm: started VM"], linux, spec, 0x80)
    assert r["problem"].startswith("the VM never ended")
    assert "--vm-cmdline with panic=-1" in r["problem"] and "leave out --vm-initrd" in r["problem"]
    raw = bvm.VmPlan("raw", 4, 2 << 20, DEFAULT_BASE, b"")
    assert "panic" not in bvm.report(["vmm: started VM"], raw, spec, 0x80)["problem"]


def test_our_inits_uptime_is_read_from_its_line_and_shown(tmp_path: Path) -> None:
    p = bvm.plan(bvm.VmSpec(write(tmp_path, "Image", image())))
    line = "vmm: console gunyah-vm-init: pid 1 up 1.517386 s on 2 CPUs, powering off"
    lines = ["vmm: started VM", "vmm: console gunyah-vm-init: pid 1 up 9 s on 1 CPUs, powering off",
             line, line.replace("1.5", "7.5"), "vmm: exit powered-off type 1 reason 0x0",
             "vmm: done", f"{initramfs.RAN}0"]  # fmt: skip
    r = bvm.report(lines, p, bvm.VmSpec(tmp_path / "Image"), 0x80)
    assert (r["init_seconds"], r["init_cpus"]) == (1.517386, 2) and r["ok"]  # the first well-formed
    assert r["initrd"] == {"bytes": p.initrd_bytes, "address": DEFAULT_BASE + p.initrd_offset,
                           "ours": True}  # fmt: skip
    head = render.vm_report(r)[0]
    assert head.endswith(f"our initramfs of {p.initrd_bytes} bytes at "
                         f"{DEFAULT_BASE + p.initrd_offset:#x}, VMID 0x80) console:")  # fmt: skip
    assert bvm.report(lines[:1], p, bvm.VmSpec(tmp_path / "Image"), 0x80)["init_seconds"] is None


def test_the_first_end_counts_and_the_console_is_bounded(tmp_path: Path) -> None:
    p, spec = _plan(tmp_path)
    lines = ["vmm: started VM"] + [f"vmm: console {i}" for i in range(bvm.MAX_LINES + 5)] + [
        "vmm: exit powered-off type 1 reason 0x0", "vmm: exit crashed type 5 reason 0x0",
        "vmm: done", "vmm: error later errno 1", f"{initramfs.RAN}0",
        f"{initramfs.RAN}1"]  # fmt: skip
    r = bvm.report(lines, p, spec, None)
    assert len(r["console"]) == bvm.MAX_LINES and r["console_dropped"] == 5
    assert r["console"][-1] == str(bvm.MAX_LINES + 4)
    assert r["end"]["exit_type"] == 1 and r["vmm"] == "done" and r["vmm_status"] == 0 and r["ok"]


@given(st.lists(st.one_of(st.text(max_size=60), st.from_regex(
    r"vmm: (exit (powered-off|crashed) type \d{1,12} reason 0x[0-9a-f]{1,20}|console .*|"
    r"vcpu_run returned \d{1,12} times|life cycle \d{1,20} us|error .* errno \d+|done)",
    fullmatch=True)),
    max_size=30))  # fmt: skip
def test_any_console_gives_a_report_never_an_error(lines: list[str]) -> None:
    spec = bvm.VmSpec(Path("image"))
    p = bvm.VmPlan("raw", 4, 2 << 20, DEFAULT_BASE, b"")
    r = bvm.report(lines, p, spec, None)
    assert r["ok"] is (r["problem"] is None)
    assert len(r["console"]) <= bvm.MAX_LINES
    "\n".join(render.vm_report(r))


# -- the calls, with their VMs ----------------------------------------------------------------
def _call(n: int, vmid: int) -> TrapRecord:
    return TrapRecord(0x1000 + n, "hvc", 0, (0x84000008,) + (0,) * 17, (0,) * 8, cpu=0, vmid=vmid)


def test_a_secondarys_calls_come_before_the_vcpu_run_that_served_them() -> None:
    count = [0]
    log = SecondaryLog(clock=lambda: count[0])

    class Inner:
        def handle(self, regs: list[int], kind: str, imm: int, cpu: int = 0,
                   pc: int = 0) -> None:  # fmt: skip
            regs[0] = 0

    handler = log.wrap(0x80, Inner())
    log.vm_started(0x80)
    count[0] = 2  # while the primary's third call (number 2) is served
    regs = [0x84000008] + [0] * 17
    handler.handle(regs, "hvc", 0, 0, 0x80000020)
    (seq, rec), = log.calls
    assert seq == 2 and (rec.vmid, rec.cpu, rec.pc, rec.after[0]) == (0x80, 0, 0x80000020, 0)
    primary = [_call(n, 3) for n in range(4)]
    merged = merge(primary, 0, log.calls)
    assert [c.vmid for c in merged] == [3, 3, 0x80, 3, 3]
    assert log.started == [0x80]
    log.vm_ended(0x80, 1, 0)
    log.vm_ended(0x80, 7, 0)  # the first end is the VM's
    assert log.ended == {0x80: (1, 0)}
    assert rec.to_dict()["vmid"] == 0x80


def test_the_log_keeps_the_last_calls_and_counts_the_rest() -> None:
    log = SecondaryLog()
    h = log.wrap(0x80, type("Nop", (), {"handle": lambda *a: None})())
    for _ in range(MAX_CALLS + 3):
        h.handle([0] * 18, "hvc", 0)
    assert len(log.calls) == MAX_CALLS and log.calls_dropped == 3


def test_a_traced_call_names_its_vm_and_trace_reads_it_back() -> None:
    line = render.trap_record(_call(0, 0x80).to_dict())
    assert line.startswith("vm0x80 cpu0 0x0000000000001000 hvc #0x0 x0=0x84000008 ")
    (rec,) = [r for _, _, r in runlog.records(iter([line])) if r is not None]
    assert rec["cpu"] == "0" and rec["function_id"] == "0x84000008"
    python = TrapRecord(None, "hvc", 0, (1,) * 18, (0,) * 8).to_dict()
    assert "vmid" not in python  # `run --json`'s calls stay as they were: one VM
    assert render.trap_record(python).startswith("(python) ")
