"""The parts of a boot, each on its own: the shipped shim, the boot's one
layout (boot/layout.py) and the files generated from it, the ABI header our module builds with,
the device-tree edit, the initramfs and the Image check."""

from __future__ import annotations

import gzip
import mmap
import os
import re
import shutil
import struct
import subprocess
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import get_args

import fdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import abi, smccc
from gunyah.abi.devicetree import RM_LINK
from gunyah.boot import (
    channel,
    console,
    devicetree,
    initramfs,
    layout,
    machine,
    modules,
    options,
    qemu,
)
from gunyah.boot.kernel import BadKernel, find_parts, image_size
from gunyah.conduit import ActionKind
from gunyah.mem import Translation
from gunyah.toolchain import SHIM_DIR, SHIM_ELF, build_shim


def test_shipped_shim_is_built_from_its_source(tmp_path: Path) -> None:
    fresh = build_shim(tmp_path / "shim.elf")
    assert fresh.read_bytes() == SHIM_ELF.read_bytes(), (
        "src/gunyah/boot/shim/shim.elf is stale: rebuild it with "
        "'python -m gunyah.toolchain' and commit it"
    )


def _is_fp_simd(word: int) -> bool:
    """An A64 instruction of the FP/SIMD classes (Arm ARM C4.1): data
    processing (op0 x111) or a load/store of a SIMD&FP register (op0 x1x0, V=1)."""
    return (
        (word >> 25) & 0b111 == 0b111
        or (word >> 25) & 0b111 == 0b110
        or ((word >> 25) & 0b101 == 0b100 and (word >> 26) & 1 == 1)
    )


def _q_pair(word: int) -> tuple[str, int, int] | None:
    """("ldp" or "stp", Qt, Qt2) for an LDP or STP of two Q registers with a
    signed offset (Arm ARM C4.1.94: opc 10, V 1, 101 then 0, index 10)."""
    if word >> 23 & 0x1FF != 0b10_101_1_010:
        return None
    return ("ldp" if word >> 22 & 1 else "stp"), word & 0x1F, word >> 10 & 0x1F


def test_shim_touches_fp_and_simd_registers_only_to_switch_them() -> None:
    """The FP/SIMD registers are the guests': the shim's C code uses none of
    them (zig's clang ignores -mgeneral-regs-only: toolchain.NO_FP turns them
    off), and the world switch (start.S, world_switch to world_switch_end)
    only moves Q0..Q31 whole, four times each: the primary's saved and the
    secondary's loaded at the switch in, the other way at the switch out."""
    from elftools.elf.elffile import ELFFile

    with SHIM_ELF.open("rb") as f:
        elf = ELFFile(f)
        section = elf.get_section_by_name(".text")
        text, base = section.data(), section["sh_addr"]
        symbols = {s.name: s["st_value"] for s in elf.get_section_by_name(".symtab").iter_symbols()}
    words = array("I", text[: len(text) // 4 * 4])
    assert len(words) > 500
    lo, hi = symbols["world_switch"] - base, symbols["world_switch_end"] - base
    outside = [f"{4 * i:#x}: {w:#010x}" for i, w in enumerate(words)
               if _is_fp_simd(w) and not lo <= 4 * i < hi]  # fmt: skip
    assert outside == []
    inside = [w for w in words[lo // 4 : hi // 4] if _is_fp_simd(w)]
    pairs = [_q_pair(w) for w in inside]
    assert None not in pairs, [f"{w:#010x}" for w in inside]
    for kind in ("ldp", "stp"):
        regs = sorted(r for p in pairs if p is not None and p[0] == kind for r in p[1:])
        assert regs == sorted(list(range(32)) * 2), kind


def _x_macro(source: str, name: str) -> list[str]:
    """The register names of shim.c's X-macro `name` (`#define NAME(X) X(a) X(b) ...`)."""
    found = re.search(rf"#define {name}\(X\)((?:[^\n]*\\\n)*[^\n]*)", source)
    assert found, name
    return re.findall(r"X\((\w+)\)", found[1])


def test_the_shims_register_lists_are_the_layouts() -> None:
    """The shim moves a context's EL1 registers and PMU registers by X-macro
    lists that must name them in the order of vcpu_context's words
    (layout.EL1_SYSREGS, layout.PMU_REGS: docs/boot.md sections 12 and 19);
    a list out of order would load one register's value into another."""
    source = (SHIM_DIR / "shim.c").read_text()
    assert _x_macro(source, "EL1_SYSREGS") == list(layout.EL1_SYSREGS)
    plain = _x_macro(source, "PMU_PLAIN")
    assert plain == list(layout.PMU_REGS[: len(plain)]) and len(plain) == 5
    assert _x_macro(source, "PAIRS") == [str(n) for n in range(layout.DEBUG_PAIRS)]


def test_generated_layout_files_are_fresh() -> None:
    """shim/layout.h and shim/layout.ld are what boot/layout.py says now: the
    shim and the compiled serving loop build from the Python declaration."""
    for name, text in layout.generated().items():
        assert (SHIM_DIR / name).read_text() == text, (
            f"src/gunyah/boot/shim/{name} is stale: run 'python -m gunyah.toolchain' "
            "(it writes it and rebuilds the shim) and commit both"
        )


def test_layout_spells_the_mailbox_and_records_the_shim_writes() -> None:
    # struct request/response: six header words and X0..X17, the trap's registers
    assert layout.REQUEST.words == layout.RESPONSE.words == 6 + 18 == channel.RECORD.size // 8
    assert layout.REQUEST.offset("x") == layout.RESPONSE.offset("x") == channel.HEADER_WORDS == 6
    request = ["cpu", "kind", "imm", "pc", "esr", "far", "x"]
    assert [f.name for f in layout.REQUEST.fields] == request
    assert [f.name for f in layout.RESPONSE.fields][:6] == [
        "action", "target", "mpidr", "entry", "context", "irqs"]  # fmt: skip
    assert layout.RESPONSE_IRQS == channel.IRQS_AT == 5 and layout.IRQ_SLOTS * layout.IRQ_BITS == 64
    # struct mailbox: the two sequence words, two pads (no doorbell), the request,
    # the response, then the EL1 translation the host walks guest addresses with,
    # then the world switch's two sequence words and what to run, then the
    # counter value an idle CPU wakes at for a secondary's timer
    assert [f.name for f in layout.MAILBOX.fields] == [
        "req_seq", "resp_seq", "pad", "req", "resp", "mmu", "run_seq", "exit_seq", "world",
        "wake_at"]  # fmt: skip
    assert (channel.REQ_SEQ, channel.RESP_SEQ, channel.REQ_AT, channel.RESP_AT,
            channel.MMU_AT) == (0, 1, 4, 28, 52)  # fmt: skip
    assert (channel.RUN_SEQ, channel.EXIT_SEQ, channel.WORLD_AT, channel.WAKE_AT) == (
        56, 57, 58, 63)  # fmt: skip
    assert [f.name for f in layout.WORLD.fields] == ["context", "vttbr", "flush", "kick",
                                                    "slice_us"]
    assert [f.name for f in layout.TRANSLATION.fields] == list(Translation.__dataclass_fields__)
    assert 8 * layout.MAILBOX.words <= layout.MAILBOX_SIZE == channel.MAILBOX_SIZE
    # struct shim_config, with its magic "GYHCFG03"; nothing in it names a host path;
    # its last word the first SPI only the host raises (the RM link's tx, 0x100)
    assert layout.CONFIG.size == 8 * layout.SHIM_CONFIG_RECORD.words == 56
    assert layout.CONFIG_MAGIC.to_bytes(8, "little") == b"GYHCFG03"
    assert layout.SHIM_CONFIG_RECORD.fields[-1].name == "host_irqs"
    assert not any("channel" in f.name for f in layout.SHIM_CONFIG_RECORD.fields)
    # the kinds and actions as the shim's switch numbers them; every action the
    # model can ask for has one
    assert channel.ACTIONS == {None: 0, "cpu_on": 1, "cpu_off": 2, "system_off": 3,
                               "system_reset": 4}  # fmt: skip
    assert set(channel.ACTIONS) - {None} == set(get_args(ActionKind))
    assert layout.REQUESTS == {"REQ_HVC": 0, "REQ_SMC": 1, "REQ_FAULT": 2, "REQ_RESULT": 3,
                               "REQ_WAIT": 4, "REQ_WOKE": 5, "REQ_TICK": 6}  # fmt: skip


@given(st.lists(st.integers(0, (1 << 64) - 1), min_size=layout.MAILBOX.words,
                max_size=layout.MAILBOX.words))  # fmt: skip
def test_a_mailbox_read_by_the_layouts_offsets_gives_each_field_its_words(words: list[int]) -> None:
    """Any mailbox contents: the request and the response the host reads at
    the layout's offsets are the words the shim's struct puts there."""
    raw = layout.MAILBOX.format().pack(*words)
    assert layout.MAILBOX.format().unpack(raw) == tuple(words)
    request = layout.RECORD.unpack_from(raw, 8 * layout.MAILBOX_REQ)
    response = layout.RECORD.unpack_from(raw, 8 * layout.MAILBOX_RESP)
    assert request == tuple(words[4:28]) and response == tuple(words[28:52])
    assert request[layout.HEADER_WORDS :] == tuple(words[10:28])  # X0..X17
    mmu = struct.unpack_from("<4Q", raw, 8 * layout.MAILBOX_MMU)
    assert mmu == tuple(words[52:56])
    assert (words[layout.MAILBOX_REQ_SEQ], words[layout.MAILBOX_RESP_SEQ]) == tuple(words[:2])


def test_layout_regions_share_the_shims_two_mib_without_overlap() -> None:
    # the shim's top 2 MiB are above the kernel's RAM and inside the machine's
    assert layout.SHIM_BASE + layout.SHIM_SIZE == layout.RAM_BASE + layout.RAM_SIZE
    assert options.MAX_MEMORY == layout.SHIM_BASE - layout.RAM_BASE
    regions = sorted(layout.REGIONS, key=lambda r: r.start)
    assert regions[0].start == layout.SHIM_BASE
    for below, above in zip(regions, regions[1:], strict=False):
        assert below.end <= above.start, (below, above)
    assert regions[-1].end <= layout.RAM_BASE + layout.RAM_SIZE
    assert 8 * layout.SHIM_CONFIG_RECORD.words <= layout.CONFIG_SIZE
    # the guest's device window ends where its RAM begins; the fw_cfg hole is in it
    assert layout.GUEST_DEVICES_END == layout.RAM_BASE
    assert layout.FW_CFG_PAGE < layout.GUEST_DEVICES_END


def test_compiled_loop_serves_max_cpus_and_refuses_one_more() -> None:
    """The serving loop's arrays are sized by the layout's MAX_CPUS (its
    header is generated): it takes MAX_CPUS mailboxes and refuses one more."""
    from gunyah import _mailbox as mailbox  # the test install builds it (test below)
    words = bytearray((layout.MAX_CPUS + 1) * layout.MAILBOX_SIZE)
    boxes = [cpu * layout.MAILBOX_SIZE // 8 for cpu in range(layout.MAX_CPUS + 1)]
    ring, count, stop = bytearray(channel._CALL.size), array("Q", [0]), array("Q", [1])

    def serve(n: int) -> None:
        mailbox.serve(words, boxes[:n], None, None, None, ring, count, stop, 0.0, 0.0, [], None)

    serve(layout.MAX_CPUS)  # the stop word is set: it looks once and returns
    with pytest.raises(ValueError, match="bad sizes"):
        serve(layout.MAX_CPUS + 1)


def test_shipped_shim_fits_below_its_configuration_block() -> None:
    """The shim's code, data and stacks (SHIM_STACK a vCPU and one more) end
    before the block the host writes: more vCPUs or bigger stacks that would
    not fit fail here, not in a boot."""
    from elftools.elf.elffile import ELFFile

    with SHIM_ELF.open("rb") as f:
        elf = ELFFile(f)
        assert elf["e_entry"] == layout.SHIM_BASE
        loaded = [s for s in elf.iter_sections() if s["sh_flags"] & 2]  # SHF_ALLOC
        assert min(s["sh_addr"] for s in loaded) == layout.SHIM_BASE
        end = max(s["sh_addr"] + s["sh_size"] for s in loaded)
    assert end <= layout.SHIM_CONFIG
    assert end - layout.SHIM_BASE > layout.SHIM_STACK * (layout.MAX_CPUS + 1)


def test_abi_header_spells_the_abi_tables() -> None:
    text = modules.abi_header()
    values = dict(re.findall(r"#define (GUNYAH_\w+) (\S+)", text))
    assert (
        int(values["GUNYAH_VENDOR_HYP_CALL_UID"].rstrip("U"), 16)
        == smccc.VENDOR_HYP_CALL_UID
        == 0x8600FF01
    )
    assert int(values["GUNYAH_HYP_IDENTIFY"].rstrip("U"), 16) == abi.HYP_IDENTIFY == 0xC6008000
    for name in ("api_version", "big_endian", "is_64bit", "variant"):
        field = abi.API_INFO[name]
        assert int(values[f"GUNYAH_{name.upper()}_LSB"]) == field.lsb
        assert int(values[f"GUNYAH_{name.upper()}_WIDTH"]) == field.width
    uids = [
        int(w, 16)
        for w in re.findall(r"0x[0-9a-f]{8}", text.split("KNOWN_UIDS ")[1].split("\n")[0])
    ]
    # the UIDs the Linux driver's final form takes, as our driver does: the standard one
    assert uids == list(abi.UIDS_BY_KEY["gunyah"].words)


@pytest.fixture(scope="module")
def qemu_dtb(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if shutil.which("qemu-system-aarch64") is None:
        pytest.fail("QEMU is missing: the README's test command runs 'gunyah boot-setup' first")
    return qemu.qemu_dtb(find_parts(), 2)


def _bootargs(tree) -> bytes:
    """/chosen/bootargs as the kernel reads it (fdt parses printable ones as strings)."""
    prop = tree.get_property("bootargs", "/chosen")
    if isinstance(prop, fdt.PropStrings):
        return b"".join(v.encode() + b"\0" for v in prop.data)
    if isinstance(prop, fdt.PropWords):
        return b"".join(w.to_bytes(4, "big") for w in prop.data)
    return bytes(prop.data)


@pytest.mark.parametrize("gunyah", [True, False])
def test_device_tree_edit(qemu_dtb: bytes, gunyah: bool) -> None:
    e = devicetree.Edit(
        "smc", 0x4000_0000, 0x3FE0_0000, "console=ttyAMA0 x=y", (0x4D00_0000, 0x4D12_3456), gunyah
    )
    tree = fdt.parse_dtb(devicetree.edit(qemu_dtb, e))
    assert tree.get_property("method", "/psci").value == "smc"
    assert list(tree.get_property("reg", "/memory@40000000").data) == [
        0,
        0x4000_0000,
        0,
        0x3FE0_0000,
    ]
    assert _bootargs(tree) == b"console=ttyAMA0 x=y\0"
    assert list(tree.get_property("linux,initrd-end", "/chosen").data) == [0, 0x4D12_3456]
    assert tree.exist_node("hypervisor") is gunyah
    if gunyah:
        assert list(tree.get_property("compatible", "/hypervisor").data) == [
            "qcom,gunyah-hypervisor-1.0", "qcom,gunyah-hypervisor", "simple-bus"]  # fmt: skip
        vm = tree.get_property("compatible", "/hypervisor/qcom,gunyah-vm").data
        assert list(vm) == ["qcom,gunyah-vm-id-1.0", "qcom,gunyah-vm-id"]
        # the RM's queue interrupts: the machine's SPIs 0xc0 (tx), 0xc1 (rx), rising edge
        rpc = "/hypervisor/qcom,resource-manager-rpc@0000000000000000"
        assert list(tree.get_property("interrupts", rpc).data) == [0, 0xC0, 1, 0, 0xC1, 1]
        assert list(tree.get_property("qcom,free-irq-start", rpc).data) == [0xE2]
    # fw_cfg is gone (its DMA writes physical memory); the rest of QEMU's machine is untouched
    assert not tree.exist_node(devicetree.FW_CFG_NODE)
    assert tree.exist_node("cpus/cpu@1") and tree.exist_node("pl011@9000000")


def _device_spis(tree) -> set[int]:
    """Every SPI a node of QEMU's tree names (3-cell GIC specifiers)."""
    spis = set()
    for _path, _nodes, props in tree.walk():
        for prop in props:
            if prop.name == "interrupts" and isinstance(prop, fdt.PropWords):
                cells = list(prop.data)
                spis |= {cells[i + 1] for i in range(0, len(cells) - 2, 3) if cells[i] == 0}
    return spis


def test_the_boots_rm_interrupts_are_in_the_machines_gic_and_no_devices(qemu_dtb: bytes) -> None:
    """The virt machine's GICv3: 224 SPIs (measured, docs/boot.md section 11);
    a15irqmap's devices at SPIs 1..9 and 16..175 (the platform bus's 64 from
    112 the last). The measured numbers (SPIs 0x3a0/0x3a1, IDs from 0x3c0)
    are past this GIC's 256 lines; the boot's are inside it, and no device
    of QEMU's own tree names them. The host's IDs fill one enable word."""
    link = layout.BOOT_RM_LINK
    assert layout.GIC_LINES == 256
    assert [(r.start, r.stop) for r in layout.VIRT_DEVICE_SPIS] == [(1, 10), (16, 176)]
    ours = {link.tx_virq, link.rx_virq, link.free_irq_start - 32}
    assert (link.tx_virq, link.rx_virq, link.free_irq_start) == (0xC0, 0xC1, 0xE2)
    assert (link.tx_intid, layout.GIC_LINES) == (32 * 7, 32 * 8)  # GICD_ISENABLER7 whole
    assert all(32 + spi < layout.GIC_LINES for spi in ours)
    assert not any(spi in r for spi in ours for r in layout.VIRT_DEVICE_SPIS)
    device_spis = _device_spis(fdt.parse_dtb(qemu_dtb))
    assert device_spis and all(any(s in r for r in layout.VIRT_DEVICE_SPIS) for s in device_spis)
    assert not ours & device_spis
    assert RM_LINK.rx_intid >= layout.GIC_LINES  # why the measured ones cannot be used here
    assert link.tx_intid < link.rx_intid < link.free_irq_start  # wake-up virqs after both


def test_qemus_fw_cfg_is_where_the_shims_map_leaves_its_hole(qemu_dtb: bytes) -> None:
    reg = list(fdt.parse_dtb(qemu_dtb).get_property("reg", f"/{devicetree.FW_CFG_NODE}").data)
    assert reg[:2] == [0, devicetree.FW_CFG_PAGE] and reg[3] <= 0x1000


def _reg(tree, node: str) -> list[int]:
    """A node's reg as (address, size) 64-bit pairs, QEMU's two cells each."""
    cells = list(tree.get_property("reg", node).data)
    return [cells[i] << 32 | cells[i + 1] for i in range(0, len(cells), 2)]


def test_qemus_virt_machine_is_where_the_layout_says(qemu_dtb: bytes) -> None:
    """The layout's devices and RAM, against QEMU's own description of the
    machine the boot runs (its device tree)."""
    tree = fdt.parse_dtb(qemu_dtb)
    assert _reg(tree, f"/memory@{layout.RAM_BASE:x}") == [layout.RAM_BASE, layout.RAM_SIZE]
    assert _reg(tree, f"/pl011@{layout.UART_BASE:x}")[0] == layout.UART_BASE
    gic = _reg(tree, f"/intc@{layout.GICD_BASE:x}")
    assert (gic[0], gic[2]) == (layout.GICD_BASE, layout.GICR_BASE)
    assert gic[3] // layout.GICR_STRIDE >= layout.MAX_CPUS  # a redistributor each
    assert "arm,gic-v3" in tree.get_property("compatible", f"/intc@{layout.GICD_BASE:x}")
    assert tree.get_property("#redistributor-regions", f"/intc@{layout.GICD_BASE:x}").value == 1
    assert not [
        n for n in tree.get_node(f"/intc@{layout.GICD_BASE:x}").nodes if "its" in n.name
    ]  # its=off: no LPIs the halted detection cannot see
    devices = [n for n in tree.root.nodes if "@" in n.name and not n.name.startswith("memory")]
    assert all(int(n.name.split("@")[1], 16) < layout.GUEST_DEVICES_END for n in devices)


def test_qemu_numbers_max_cpus_as_the_shim_does() -> None:
    """MAX_CPUS is the project's bound, within the GICv3 machine's (one
    redistributor a CPU): QEMU takes that many, gives them MPIDR Aff0 0 up
    (16 in a cluster with a GICv3), the index the shim's cpu_index reads and
    its redistributor's place; QEMU itself refuses past its redistributors."""
    parts = find_parts()
    tree = fdt.parse_dtb(qemu.qemu_dtb(parts, layout.MAX_CPUS))
    cpus = [n for n in tree.get_node("/cpus").nodes if n.name.startswith("cpu@")]
    assert sorted(tree.get_property("reg", f"/cpus/{n.name}").value for n in cpus) == list(
        range(layout.MAX_CPUS)
    )
    redistributors = _reg(tree, f"/intc@{layout.GICD_BASE:x}")[3] // layout.GICR_STRIDE
    assert redistributors == 123
    with pytest.raises(options.BootError, match=f"redist regions\\({redistributors}\\)"):
        qemu.qemu_dtb(parts, redistributors + 1)


@given(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]),
               max_size=300))  # fmt: skip
def test_device_tree_carries_any_command_line(qemu_dtb: bytes, text: str) -> None:
    e = devicetree.Edit("hvc", 0x4000_0000, 0x3FE0_0000, text, None, False)
    tree = fdt.parse_dtb(devicetree.edit(qemu_dtb, e))
    assert _bootargs(tree) == text.encode() + b"\0"


def _reserves(dtb: bytes) -> bytes:
    """The first entry of a tree's memory reserve map, as a kernel reads it."""
    at = struct.unpack_from(">I", dtb, 16)[0]
    return dtb[at : at + 16]


def test_memory_reserved_in_a_tree_parsed_before_reaches_no_tree_of_ours(qemu_dtb: bytes) -> None:
    """The fdt library appends every parsed tree's /memreserve/ entries to
    one list its trees share: a tree parsed earlier in the process (a user's,
    a VM's) must not reserve memory in the ones we write."""
    from gunyah.guest.vm_tree import vm_device_tree

    reserving = fdt.parse_dtb(qemu_dtb)
    reserving.entries = [{"address": 0x4800_0000, "size": 0x1000}]
    blob = reserving.to_dtb(version=17)
    fdt.parse_dtb(blob)  # the library's shared list now holds the entry
    e = devicetree.Edit("hvc", 0x4000_0000, 0x3FE0_0000, "", None, True)
    assert _reserves(devicetree.edit(qemu_dtb, e)) == bytes(16)
    assert _reserves(vm_device_tree()) == bytes(16)
    with pytest.raises(devicetree.DeviceTreeError, match="reserves memory"):
        devicetree.edit(blob, e)


def test_device_tree_that_is_not_qemus() -> None:
    with pytest.raises(devicetree.DeviceTreeError):
        devicetree.edit(
            b"\xd0\x0d\xfe\xed" + b"\0" * 60, devicetree.Edit("hvc", 0, 1, "", None, False)
        )


def _read_newc(data: bytes) -> dict[str, tuple[int, bytes, tuple[int, int]]]:
    """A reader of the newc format, to check the writer by."""
    out, pos = {}, 0
    while True:
        assert data[pos : pos + 6] == b"070701"
        f = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        namesize, filesize = f[11], f[6]
        name = data[pos + 110 : pos + 110 + namesize - 1].decode()
        pos += 110 + namesize
        pos += -pos % 4
        body = data[pos : pos + filesize]
        pos += filesize + (-filesize % 4)
        if name == "TRAILER!!!":
            return out
        out[name] = (f[1], body, (f[9], f[10]))


@given(st.lists(st.tuples(st.from_regex(r"[a-z_]{1,12}", fullmatch=True), st.binary(max_size=300)),
                max_size=4, unique_by=lambda t: t[0]))  # fmt: skip
def test_initramfs_holds_init_busybox_console_and_the_modules(tmp_path_factory, mods) -> None:
    d = tmp_path_factory.mktemp("initrd")
    busybox = d / "busybox"
    busybox.write_bytes(b"\x7fELF busybox")
    paths = []
    for name, body in mods:
        (d / f"{name}.ko").write_bytes(body)
        paths.append(d / f"{name}.ko")
    files = _read_newc(gzip.decompress(initramfs.build(busybox, paths, "n0nce")))
    assert files["init"][1].decode() == initramfs.init_script("n0nce", True, False)
    assert "gunyah-verdict-n0nce: " in files["init"][1].decode()
    assert files["init"][0] & 0o777 == 0o755
    assert files["bin/busybox"][1] == busybox.read_bytes()
    assert files["dev/console"][2] == (5, 1)
    assert files["modules/order"][1].decode().split() == [f"{n}.ko" for n, _ in mods]
    for name, body in mods:
        assert files[f"modules/{name}.ko"][1] == body


@given(st.binary(max_size=200))
def test_image_check_refuses_what_is_not_an_arm64_image(tmp_path_factory, data: bytes) -> None:
    f = tmp_path_factory.mktemp("img") / "Image"
    f.write_bytes(data)
    with pytest.raises(BadKernel):
        image_size(f)


def test_image_check_reads_the_header(tmp_path: Path) -> None:
    head = bytearray(64)
    head[16:24] = (0x200_0000).to_bytes(8, "little")  # image_size: 32 MiB
    head[56:60] = b"ARM\x64"
    f = tmp_path / "Image"
    f.write_bytes(bytes(head))
    assert image_size(f) == 0x200_0000
    fifo = tmp_path / "fifo"
    subprocess.run(["mkfifo", str(fifo)], check=True)
    with pytest.raises(BadKernel, match="not a regular file"):
        image_size(fifo)  # refused, not waited on


class _Mailbox:
    """A Channel over a memory file of our own, driven as the shim drives it."""

    def __init__(self, compiled: bool, persona: str = "gunyah", cpus: int = 1) -> None:
        from gunyah.model import Hypervisor

        self.ram = qemu.memfd("test-ram", size=1 << 16)
        self.ch = channel.Channel(Hypervisor(persona, cpus=cpus), cpus, self.ram, 0x1000, compiled)
        assert self.ch.compiled == compiled
        self.words = self.ch._words
        self.box = self.ch._first

    def __enter__(self) -> _Mailbox:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.ch.close()
        os.close(self.ram)

    def call(self, kind: int, imm: int, pc: int, regs: list[int]) -> tuple[list[int], list[int]]:
        req = self.box + channel.REQ_AT
        self.words[req : req + 6] = array("Q", [0, kind, imm, pc, 0, 0])
        self.words[req + 6 : req + 24] = array("Q", regs + [0] * (18 - len(regs)))
        seq = self.words[self.box + channel.REQ_SEQ] + 1
        self.words[self.box + channel.REQ_SEQ] = seq
        deadline = time.monotonic() + 10
        while self.words[self.box + channel.RESP_SEQ] != seq and not self.ch.ended.is_set():
            assert time.monotonic() < deadline, "no answer"
            time.sleep(0)  # lets the serving thread have the GIL now, not at the next switch
        resp = self.box + channel.RESP_AT
        return self.words[resp : resp + 6].tolist(), self.words[resp + 6 : resp + 24].tolist()


# both serving loops: the compiled one (built by the install) and its Python reference
LOOPS = [pytest.param(True, id="compiled"), pytest.param(False, id="python")]


def test_the_compiled_loop_is_built() -> None:
    """The test install has a C compiler: the loop `gunyah boot` uses is the compiled one."""
    assert channel._mailbox is not None


@pytest.mark.parametrize("compiled", LOOPS)
def test_channel_answers_from_the_model_and_records_the_call(compiled: bool) -> None:
    with _Mailbox(compiled) as m:
        header, regs = m.call(channel.REQ_HVC, 0, 0xFFFF_8000_0000_1234, [0x8600FF01])
        assert header == [0] * 6
        assert regs[:4] == [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]
        header, _ = m.call(channel.REQ_SMC, 0, 0x1000, [0x84000008])  # SYSTEM_OFF
        assert header[0] == channel.ACTIONS["system_off"] and m.ch.ended.is_set()
        m.ch.close()  # the serving thread keeps a call once the guest has its answer
        calls = [c.to_dict() for c in m.ch.calls]
        assert [(c["pc"], c["conduit"], c["name"]) for c in calls] == [
            (0xFFFF_8000_0000_1234, "hvc", "VENDOR_HYP_CALL_UID"),
            (0x1000, "smc", "PSCI_SYSTEM_OFF"),
        ]


@pytest.mark.parametrize("compiled", LOOPS)
def test_an_answer_carries_the_interrupts_the_model_raised(compiled: bool) -> None:
    """The interrupts raised in the primary VM go to the shim with the next
    answer, IRQ_SLOTS at most, oldest first; the rest with the one after; an
    answer with none pending says none."""
    with _Mailbox(compiled) as m:
        vic = m.ch.hyp.vm.vic
        for virq in (0x100, 0x101, 0x102, 0x103, 0x104, 0x101):  # 0x101 twice: one edge
            vic.assert_virq(virq)
        header, regs = m.call(channel.REQ_HVC, 0, 0x1000, [0x8600FF01])
        assert layout.unpack_irqs(header[layout.RESPONSE_IRQS]) == [0x100, 0x101, 0x102, 0x103]
        assert regs[0] == 0xCD8FD5C1  # the call's own answer is untouched
        header, _ = m.call(channel.REQ_SMC, 0, 0x1000, [0x84000000])  # PSCI_VERSION
        assert layout.unpack_irqs(header[layout.RESPONSE_IRQS]) == [0x104]
        header, _ = m.call(channel.REQ_HVC, 0, 0x1000, [0x8600FF01])
        assert header == [0] * 6 and m.ch.irq_count == 5
        vic.assert_virq(0x1_0000)  # no 16-bit ID: dropped, never sent as another
        vic.assert_virq(0x105)
        header, _ = m.call(channel.REQ_WAIT, 0, 0x1000, [])  # not a call: answered all the same
        assert layout.unpack_irqs(header[layout.RESPONSE_IRQS]) == [0x105]
        m.ch.ended.clear()  # (a wait is news for the watcher)
        vic.assert_virq(0x106)
        header, _ = m.call(channel.REQ_SMC, 0, 0x1000, [0x84000008])  # SYSTEM_OFF: an action
        assert header[0] == channel.ACTIONS["system_off"]
        assert layout.unpack_irqs(header[layout.RESPONSE_IRQS]) == [0x106]


@pytest.mark.parametrize("compiled", LOOPS)
def test_a_tick_is_told_the_counter_and_its_answer_carries_what_it_raised(compiled: bool) -> None:
    """REQ_TICK (docs/boot.md section 17): the channel's `tick` hears the
    counter the shim sent (x[0]) before the answer is written, so the
    wake-up interrupts it raises go with it; set_wake_at writes every CPU's
    mailbox; a tick with no one listening is answered all the same."""
    with _Mailbox(compiled, cpus=2) as m:
        heard: list[int] = []
        m.ch.tick = lambda counter: (heard.append(counter), m.ch.hyp.vm.vic.assert_virq(0x104))
        header, _ = m.call(layout.REQ_TICK, 0, 0x1000, [0x1234_5678])
        assert heard == [0x1234_5678]
        assert layout.unpack_irqs(header[layout.RESPONSE_IRQS]) == [0x104]
        assert m.ch.fault is None and m.ch.call_count == 0  # not a call
        m.ch.set_wake_at(777)
        boxes = [m.box, m.box + layout.MAILBOX_SIZE // 8]
        assert [m.words[b + channel.WAKE_AT] for b in boxes] == [777, 777]
        m.ch.tick = None
        header, _ = m.call(layout.REQ_TICK, 0, 0x1000, [1])
        assert header == [0] * 6 and m.ch.fault is None


@given(st.lists(st.integers(1, 0xFFFF), max_size=layout.IRQ_SLOTS))
def test_an_irqs_word_names_its_ids_back(ids: list[int]) -> None:
    assert layout.unpack_irqs(layout.pack_irqs(ids)) == ids


@given(st.integers(0, 2**64 - 1))
def test_any_irqs_word_names_at_most_its_slots(word: int) -> None:
    ids = layout.unpack_irqs(word)
    assert len(ids) <= layout.IRQ_SLOTS and all(0 < i <= 0xFFFF for i in ids)


def test_pack_irqs_refuses_what_a_word_cannot_hold() -> None:
    for bad in ([0], [0x1_0000], [1] * (layout.IRQ_SLOTS + 1)):
        with pytest.raises(ValueError):
            layout.pack_irqs(bad)


@pytest.mark.parametrize("compiled", LOOPS)
def test_a_call_posted_before_the_channel_looks_is_answered(compiled: bool) -> None:
    """The serving thread starts after the channel is made; a request already
    in the mailbox by then (a vCPU that was quick) is not taken as answered."""
    from gunyah.model import Hypervisor

    ram = qemu.memfd("test-ram", size=1 << 16)
    mem = mmap.mmap(ram, 1 << 16)
    try:
        words = memoryview(mem).cast("Q")
        box = 0x1000 // 8
        req = box + channel.REQ_AT
        words[req + 1], words[req + 6] = channel.REQ_HVC, 0x8600FF01  # CALL_UID
        words[box + channel.REQ_SEQ] = 1
        ch = channel.Channel(Hypervisor("gunyah"), 1, ram, 0x1000, compiled)
        deadline = time.monotonic() + 10
        while words[box + channel.RESP_SEQ] != 1 and time.monotonic() < deadline:
            time.sleep(0.001)
        ch.close()
        assert words[box + channel.RESP_SEQ] == 1
        assert words[box + channel.RESP_AT + 6] == 0xCD8FD5C1
        words.release()
    finally:
        mem.close()
        os.close(ram)


@given(kind=st.one_of(st.integers(0, 6), st.integers(0, 2**64 - 1)),
       imm=st.one_of(st.integers(0, 0xFFFF), st.integers(0, 2**64 - 1)),
       regs=st.lists(st.integers(0, 2**64 - 1), min_size=18, max_size=18),
       compiled=st.booleans())  # fmt: skip
def test_channel_takes_any_mailbox_contents(kind, imm, regs, compiled) -> None:
    from gunyah.model import Hypervisor

    with _Mailbox(compiled) as m:
        header, answer = m.call(kind, imm, 0x40, regs)
        m.ch.close()
        assert m.ch.error is None
        valid = kind in (channel.REQ_HVC, channel.REQ_SMC) and imm <= 0xFFFF
        waits = kind == channel.REQ_WAIT  # not a call, but the shim writes it
        ticks = kind == channel.REQ_TICK  # nor this
        assert (m.ch.fault is None) == (valid or waits or ticks)  # a lone result or wake is
        assert m.ch.waiting == ({0} if waits else set())  # malformed
        if m.ch.fault is not None and kind != channel.REQ_FAULT:
            assert "malformed" in m.ch.fault.describe()
        if valid:  # answered as the model answers, and kept as it was asked and answered
            expected = list(regs)
            Hypervisor("gunyah").handle(expected, ("hvc", "smc")[kind], imm, 0, 0x40)
            assert answer == expected
            (call,) = m.ch.calls
            assert (call.pc, call.imm, list(call.before)) == (0x40, imm, regs)
            assert list(call.after) == expected[:8]
        else:
            assert m.ch.calls == []


@pytest.mark.parametrize("compiled", LOOPS)
def test_a_cpu_on_qemu_could_not_carry_out_leaves_the_model_as_it_was(compiled: bool) -> None:
    from gunyah import psci

    with _Mailbox(compiled, cpus=2) as m:
        cpu_on = [psci.fn64(psci.CPU_ON), 1, 0x4008_0000, 0xC0DE]
        header, regs = m.call(channel.REQ_HVC, 0, 0x100, cpu_on)
        assert header[:2] == [channel.ACTIONS["cpu_on"], 1] and regs[0] == psci.SUCCESS
        assert m.ch.hyp.power.on == [True, True]  # as the model answered
        failure = psci.INTERNAL_FAILURE & (2**64 - 1)
        m.call(channel.REQ_RESULT, 0, 0x100, [failure])  # the shim: QEMU would not start it
        assert m.ch.hyp.power.on == [True, False]
        header, regs = m.call(channel.REQ_HVC, 0, 0x104, cpu_on)  # so it can be tried again
        assert regs[0] == psci.SUCCESS
        m.call(channel.REQ_RESULT, 0, 0x104, [psci.SUCCESS])
        m.ch.close()
        assert m.ch.fault is None and m.ch.hyp.power.on == [True, True]
        # the trace shows what the guest received
        assert [c.after[0] for c in m.ch.calls] == [failure, psci.SUCCESS]


@pytest.mark.parametrize("compiled", LOOPS)
def test_the_channel_knows_which_vcpus_wait_with_nothing_to_wake_them(compiled: bool) -> None:
    with _Mailbox(compiled, cpus=2) as m:
        m.ch.ended.clear()
        m.call(channel.REQ_WAIT, 0, 0x40, [])
        assert m.ch.waiting == {0} and m.ch.wait_changes == 1 and m.ch.ended.is_set()
        m.ch.ended.clear()  # (the watcher's news; `call` would not wait for the answer)
        m.call(channel.REQ_WOKE, 0, 0x40, [])
        assert m.ch.waiting == set() and m.ch.wait_changes == 2
        assert m.ch.fault is None and m.ch.calls == []  # neither is a call
        m.call(channel.REQ_WOKE, 0, 0x40, [])  # the shim never wakes what did not wait
        assert m.ch.fault is not None and "a wake with no wait" in m.ch.fault.describe()


@pytest.mark.parametrize("compiled", LOOPS)
def test_a_result_with_no_cpu_on_is_malformed(compiled: bool) -> None:
    with _Mailbox(compiled) as m:
        m.call(channel.REQ_RESULT, 0, 0, [0])
        assert m.ch.fault is not None and "with no CPU_ON" in m.ch.fault.describe()


@pytest.mark.parametrize("compiled", LOOPS)
def test_the_channel_keeps_the_last_calls_and_counts_the_rest(compiled: bool, monkeypatch) -> None:
    """The ring at a small size, wrapped three times and then some (both
    loops size it from MAX_CALLS); bench/stress.py fills the real one."""
    keep = 16
    monkeypatch.setattr(channel, "MAX_CALLS", keep)
    with _Mailbox(compiled) as m:
        for i in range(3 * keep + 5):
            m.call(channel.REQ_HVC, 0, i, [0x8600FF01])
        m.ch.close()
        assert m.ch.call_count == 3 * keep + 5 and m.ch.calls_dropped == 2 * keep + 5
        assert [c.pc for c in m.ch.calls] == list(range(2 * keep + 5, 3 * keep + 5))
        assert all(c.after[:4] == (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)
                   for c in m.ch.calls)  # fmt: skip


NONCE = "0123456789abcdef0123456789abcdef"


def _console(data: bytes, capture: bool = True) -> console.Console:
    import io

    c = console.Console(io.BytesIO(data), NONCE, capture)
    c.thread.join(timeout=60)
    return c


def test_console_is_bounded_by_bytes_and_takes_any_bytes() -> None:
    import sys

    endless = b"A" * (10 * console.MAX_LINE)  # no newline at all
    c = _console(endless + b"\n\xff\xfe\x1b[2J\r\n")
    assert all(len(ln) <= console.MAX_LINE for ln in c.lines)
    assert c.lines[-1] == "\ufffd\ufffd\x1b[2J"  # kept as text; the renderer escapes it
    # emoji cost 4 bytes a character in Python: the bound is on what the lines take
    wide = ("\U0001f600" * 1000 + "\n").encode() * 3000
    for flood in (wide, b"x\n" * 500_000, b"\n" * 500_000):
        c = _console(flood)
        kept = sum(sys.getsizeof(ln) for ln in c.lines)
        assert kept == c.kept <= console.MAX_CONSOLE
        assert c.count == flood.count(b"\n") and len(c.lines) < c.count  # the drop is counted


def test_only_inits_line_with_the_nonce_gives_the_verdict() -> None:
    from gunyah.boot import initramfs

    ours = initramfs.verdict_prefix(NONCE).encode()
    c = _console(b"Kernel command line: gunyah-verdict: supported\n"
                 b"[ 1.0] gunyah-verdict: supported\n"
                 b"gunyah-verdict-" + b"f" * 32 + b": supported\n"
                 + ours + b"not-gunyah\n" + ours + b"supported\n")  # fmt: skip
    assert c.verdict == "not-gunyah"  # the first with the nonce; a later one is a forgery


def test_capture_from_the_console_garbage_cut_short_and_too_big(monkeypatch) -> None:
    from gunyah.boot import initramfs

    begin, end = (m.encode() for m in initramfs.capture_markers(NONCE))
    ok = _console(b"boot\n" + begin + b"\naGVsbG8=\n" + end + b"\ndone\n")
    assert console.capture(ok) == (b"hello", None)
    assert list(ok.lines) == ["boot", "done"]  # the capture is kept out of the console
    bad = _console(begin + b"\nnot base64!\n" + end + b"\n")
    assert console.capture(bad) == (None, "the guest's capture is not valid base64")
    cut = _console(begin + b"\naGVsbG8=\n")
    assert console.capture(cut) == (None, "the guest's capture was cut short")
    big = _console(begin + b"\n" + b"QUFB\n" * (console.MAX_CAPTURE // 4 + 1) + end + b"\n")
    assert console.capture(big) == (None, "the guest's capture is over 16 MiB")
    assert big.capture_bytes <= console.MAX_CAPTURE
    # empty lines cost their newline: a flood of them is bounded too
    monkeypatch.setattr(console, "MAX_CAPTURE", 1000)
    empty = _console(begin + b"\n" + b"\n" * 1001 + end + b"\n")
    assert console.capture(empty)[0] is None and empty.capture_overflow
    assert console.capture(_console(b"no capture\n"))[1] == (
        "the guest never began sending its capture"
    )


def test_a_kernel_matrix_row_keeps_the_last_calls_and_counts_the_rest() -> None:
    """15 boots of 10,000 calls each would not stay within the README's memory."""
    from gunyah.boot import matrix
    from gunyah.conduit import TrapRecord
    from gunyah.model import get_persona

    calls = [TrapRecord(i, "hvc", 0, (0x8600FF01,) + (0,) * 17, (0,) * 8) for i in range(1000)]
    result = machine.BootResult("poweroff", 0, 1.0, ["x"] * 100, 0, calls, 9000, [],
                                "supported", "gunyah", 1)  # fmt: skip
    row = matrix._row("m.ko", get_persona("gunyah"), result)
    assert len(row.calls) == matrix.CALLS_TAIL and row.calls[-1].pc == 999
    assert row.calls_dropped == 9000 + 1000 - matrix.CALLS_TAIL
    assert row.to_dict()["calls_dropped"] == row.calls_dropped
    assert len(row.console) == matrix.CONSOLE_TAIL and row.passed
    none = machine.BootResult("poweroff", 5, 1.0, [], 0, [], 0, [], None, "gunyah", 1,
                              problem="no verdict line")  # fmt: skip
    assert matrix._row("m.ko", get_persona("gunyah"), none).observed == "no verdict"


def test_console_signatures_are_what_the_kernel_prints() -> None:
    """Each console signature (triage/console.json) is the start of a printk
    format in the kernel the boot runs: KERN_SOH, a level, then the text."""
    from gunyah.triage.console import console_signatures

    image = find_parts().image.read_bytes()
    signatures = console_signatures()
    assert {"panic", "panic-end", "power-down", "reboot", "oops", "bad-access"} <= set(signatures)
    for sig in signatures.values():
        text = sig.text.encode()
        assert any(b"\x01" + bytes([level]) + text in image for level in b"01234567"), sig.id
        assert sig.source.startswith("Linux ") and sig.meaning
    # the boot's console ends a boot on these, and only on these
    ends = [signatures[k].text for k in ("panic", "panic-end", "power-down")]
    assert ends == [console.PANIC, console.PANIC_END, console.POWER_DOWN]


@pytest.mark.parametrize(
    ("line", "panic", "ended", "power_down"),
    [
        ("[    1.2] Kernel panic - not syncing: Attempted to kill init!", True, False, False),
        ("[    1.3] ---[ end Kernel panic - not syncing: Attempted to kill init! ]---",
         True, True, False),
        ("[    2.0] reboot: Power down", False, False, True),
        ("[    2.0] reboot: Restarting system", False, False, False),
        ("Kernel panic is a phrase, not a panic", False, False, False),
    ],
)  # fmt: skip
def test_console_notes_the_lines_a_boot_ends_on(
    line: str, panic: bool, ended: bool, power_down: bool
) -> None:
    c = _console(line.encode() + b"\n", capture=False)
    assert (c.panic_at is not None, c.panic_ended, c.power_down_at is not None) == (
        panic, ended, power_down)  # fmt: skip


def test_a_secondarys_run_is_posted_in_the_calling_cpus_mailbox_and_waits_for_its_exit() -> None:
    """Channel.run_world (docs/boot.md section 12): the context, VTTBR and
    flush in `struct world` of that CPU's mailbox, run_seq bumped after them,
    and back once the shim sets exit_seq to it; the call's own sequence
    words untouched. A boot that stops meanwhile, or a CPU with no mailbox,
    is an error, not a wait for ever."""
    import threading

    with _Mailbox(True, cpus=2) as m:
        box = m.box + layout.MAILBOX_SIZE // 8  # CPU 1's
        seen: list[list[int]] = []

        def shim() -> None:
            deadline = time.monotonic() + 10
            while m.words[box + channel.RUN_SEQ] == m.words[box + channel.EXIT_SEQ]:
                assert time.monotonic() < deadline
                time.sleep(0.001)
            seen.append(m.words[box + channel.WORLD_AT : box + channel.WORLD_AT + 4].tolist())
            m.words[box + channel.EXIT_SEQ] = m.words[box + channel.RUN_SEQ]

        t = threading.Thread(target=shim)
        t.start()
        m.ch.run_world(1, layout.VCPU_CONTEXTS_BASE, layout.GUEST_STAGE2_POOL | 0x80 << 48, True,
                       kick=0b1)  # fmt: skip
        t.join()
        assert seen == [[layout.VCPU_CONTEXTS_BASE, layout.GUEST_STAGE2_POOL | 0x80 << 48, 1, 1]]
        assert m.words[box + channel.RUN_SEQ] == m.words[box + channel.EXIT_SEQ] == 1
        assert m.words[box + channel.REQ_SEQ] == m.words[box + channel.RESP_SEQ] == 0
        assert m.ch.world_runs == 1
        with pytest.raises(RuntimeError, match="no mailbox"):
            m.ch.run_world(2, layout.VCPU_CONTEXTS_BASE, 0, False)
        m.ch._stop[0] = 1  # the boot ends while nothing comes back
        with pytest.raises(RuntimeError, match="boot ended"):
            m.ch.run_world(0, layout.VCPU_CONTEXTS_BASE, 0, False)


@pytest.mark.parametrize("compiled", LOOPS)
def test_another_cpus_vcpu_run_is_answered_while_a_secondary_runs(compiled: bool) -> None:
    """While CPU 0's call runs a secondary (Channel.run_world waits for its
    exit), CPU 1's vcpu_run, in its SMCCC and its native form, is answered
    at once, and the model's record of the caller is CPU 0's again after it
    (docs/boot.md section 15); CPU 1's other calls wait for CPU 0's answer,
    and nothing is answered twice (both serving loops)."""

    from gunyah.abi.calls import HYPERCALL_NUMBERS, hypercall_id, native_imm
    from gunyah.model import Hypervisor

    number = HYPERCALL_NUMBERS["vcpu_run"]
    hyp = Hypervisor("gunyah", cpus=2)
    seen: list[tuple[int, int]] = []  # (the CPU served, whether CPU 0's run is in flight)
    after: list[int] = []

    def handle(regs: list[int], kind: str, imm: int, cpu: int = 0, pc: int = 0) -> None:
        hyp.cpu = cpu
        seen.append((cpu, int(0 in ch._running)))
        if cpu == 0 and regs[1] == 0xA:  # CPU 0's vcpu_run: a run, until the shim's exit
            ch.run_world(0, layout.VCPU_CONTEXTS_BASE, layout.GUEST_STAGE2_POOL, False)
            after.append(hyp.cpu)
        regs[0] = 0
        return None

    hyp.handle = handle  # type: ignore[method-assign]
    ram = qemu.memfd("test-ram", size=1 << 16)
    ch = channel.Channel(hyp, 2, ram, 0x1000, compiled)
    words, boxes = ch._words, [ch._first, ch._first + layout.MAILBOX_SIZE // 8]

    def post(cpu: int, imm: int, regs: list[int]) -> int:
        box = boxes[cpu]
        words[box + channel.REQ_AT : box + channel.REQ_AT + 6] = array(
            "Q", [cpu, channel.REQ_HVC, imm, 0x1000, 0, 0])
        words[box + channel.REQ_AT + 6 : box + channel.REQ_AT + 24] = array(
            "Q", regs + [0] * (18 - len(regs)))  # fmt: skip
        seq = words[box + channel.REQ_SEQ] + 1
        words[box + channel.REQ_SEQ] = seq
        return seq

    def until(cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + 10
        while not cond():
            assert time.monotonic() < deadline and ch.error is None, ch.error
            time.sleep(0.001)

    try:
        post(0, 0, [hypercall_id(number), 0xA])
        until(lambda: words[boxes[0] + channel.RUN_SEQ] == 1)  # CPU 0's secondary runs
        s1 = post(1, 0, [hypercall_id(number), 0xB])
        until(lambda: words[boxes[1] + channel.RESP_SEQ] == s1)
        s2 = post(1, native_imm(number), [0xB])
        until(lambda: words[boxes[1] + channel.RESP_SEQ] == s2)
        s3 = post(1, 0, [0x84000000])  # PSCI_VERSION: waits for CPU 0's answer
        time.sleep(0.05)
        assert words[boxes[1] + channel.RESP_SEQ] == s2
        assert words[boxes[0] + channel.RESP_SEQ] == 0
        words[boxes[0] + channel.EXIT_SEQ] = 1  # the secondary comes back
        until(lambda: words[boxes[1] + channel.RESP_SEQ] == s3)
        until(lambda: words[boxes[0] + channel.RESP_SEQ] == 1)
    finally:
        ch.close()
        os.close(ram)
    assert seen == [(0, 0), (1, 1), (1, 1), (1, 0)] and after == [0]
    assert ch.call_count == 4 and ch.error is None


def test_a_secondarys_panic_relayed_by_our_vmm_is_not_the_primarys() -> None:
    """Our VMM prints a secondary's console as "vmm: console ..." lines: a
    Linux secondary's panic or power-down there is kept but does not end the
    boot as the primary's would."""
    panic = console.PANIC.encode()
    c = _console(b"vmm: console [ 20.4] " + panic + b": VFS\n" + b"vmm: console "
                 + console.POWER_DOWN.encode() + b"\n")  # fmt: skip
    c.thread.join()
    assert c.panic_at is None and c.power_down_at is None and c.count == 2
    c = _console(b"[ 20.4] " + panic + b": VFS\n")
    c.thread.join()
    assert c.panic_at is not None

