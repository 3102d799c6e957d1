"""The parts of a boot, each on its own: the shipped shim, the channel's
records against the shim's header, the ABI header our module builds with,
the device-tree edit, the initramfs and the Image check."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from array import array
from pathlib import Path

import fdt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import abi, smccc
from gunyah.boot import channel, devicetree, initramfs, machine, modules
from gunyah.boot.kernel import BadKernel, find_parts, image_size
from gunyah.toolchain import SHIM_DIR, SHIM_ELF, build_shim

SHIM_H = (SHIM_DIR / "shim.h").read_text()


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


def test_shim_touches_no_fp_or_simd_register() -> None:
    """The FP/SIMD registers are the guest's and the shim saves none of them
    (zig's clang ignores -mgeneral-regs-only: toolchain.NO_FP turns them off)."""
    from elftools.elf.elffile import ELFFile

    with SHIM_ELF.open("rb") as f:
        text = ELFFile(f).get_section_by_name(".text").data()
    words = array("I", text[: len(text) // 4 * 4])
    assert len(words) > 500
    fp = [f"{4 * i:#x}: {w:#010x}" for i, w in enumerate(words) if _is_fp_simd(w)]
    assert fp == []


def _define(name: str) -> int:
    m = re.search(rf"#define {name}\s+(0x[0-9a-fA-F]+|\d+)", SHIM_H)
    assert m, name
    return int(m.group(1), 0)


def _struct_words(name: str) -> int:
    body = re.search(rf"struct {name} \{{(.*?)\}};", SHIM_H, re.S)
    assert body, name
    words = 0
    for m in re.finditer(r"uint64_t (\w+)(?:\[(\d+)\])?;", body.group(1)):
        words += int(m.group(2) or 1)
    return words


def test_channel_records_match_the_shims_header() -> None:
    assert _struct_words("request") == _struct_words("response") == channel.RECORD.size // 8
    assert re.search(r"uint64_t x\[18\];", SHIM_H)
    enum = dict(re.findall(r"(ACT_\w+) = (\d+)", SHIM_H))
    assert {k: int(v) for k, v in enum.items()} == {
        "ACT_RESUME": channel.ACTIONS[None], "ACT_CPU_ON": channel.ACTIONS["cpu_on"],
        "ACT_CPU_OFF": channel.ACTIONS["cpu_off"], "ACT_SYSTEM_OFF": channel.ACTIONS["system_off"],
        "ACT_SYSTEM_RESET": channel.ACTIONS["system_reset"],
    }  # fmt: skip
    req = dict(re.findall(r"(REQ_\w+) = (\d+)", SHIM_H))
    assert {k: int(v) for k, v in req.items()} == {
        "REQ_HVC": channel.REQ_HVC, "REQ_SMC": channel.REQ_SMC,
        "REQ_FAULT": channel.REQ_FAULT, "REQ_RESULT": channel.REQ_RESULT,
        "REQ_WAIT": channel.REQ_WAIT, "REQ_WOKE": channel.REQ_WOKE,
    }  # fmt: skip


def test_mailbox_layout_matches_the_shims_header() -> None:
    body = re.search(r"struct mailbox \{(.*?)\};", SHIM_H, re.S).group(1)
    fields = re.findall(r"(?:volatile )?(uint64_t|struct request|struct response) (\w+);", body)
    names = [n for _, n in fields]
    names[2:2] = ["pad", "pad"]
    assert names[:2] == ["req_seq", "resp_seq"]
    assert [names.index("req_seq"), names.index("resp_seq")] == [channel.REQ_SEQ, channel.RESP_SEQ]
    assert "uint64_t pad[2];" in body  # and nothing else before the request: no doorbell
    # the words before the request, then the request, then the response
    assert names.index("req") == channel.REQ_AT
    assert channel.REQ_AT + _struct_words("request") == channel.RESP_AT
    assert _define("MAILBOX_SIZE") == channel.MAILBOX_SIZE
    assert 8 * (channel.RESP_AT + _struct_words("response")) <= channel.MAILBOX_SIZE
    assert _define("SHIM_MAILBOXES") == machine.SHIM_MAILBOXES
    # every vCPU's mailbox lies in the shim's memory, above its configuration
    top = machine.SHIM_MAILBOXES + machine.MAX_CPUS * channel.MAILBOX_SIZE
    assert machine.SHIM_CONFIG + machine.CONFIG.size <= machine.SHIM_MAILBOXES
    assert top <= machine.RAM_BASE + machine.RAM_SIZE


def test_machine_layout_matches_the_shims_header() -> None:
    assert _define("SHIM_BASE") == machine.SHIM_BASE
    assert _define("SHIM_CONFIG") == machine.SHIM_CONFIG
    assert _define("SHIM_MAX_CPUS") == machine.MAX_CPUS
    assert (
        int(re.search(r"CONFIG_MAGIC (0x[0-9a-f]+)ull", SHIM_H).group(1), 16)
        == machine.CONFIG_MAGIC
    )
    assert machine.CONFIG.size == 8 * _struct_words("shim_config") == 48
    assert "channel" not in SHIM_H.split("struct shim_config")[1].split("};")[0]  # no host path
    # the shim's top 2 MiB are above the kernel's RAM and inside the machine's
    assert machine.SHIM_BASE + (2 << 20) == machine.RAM_BASE + machine.RAM_SIZE
    # the guest's stage-2 map: devices below RAM, less the fw_cfg page the DT no longer names
    assert _define("GUEST_DEVICES_END") == machine.RAM_BASE
    assert _define("FW_CFG_PAGE") == devicetree.FW_CFG_PAGE


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
    return machine.qemu_dtb(find_parts(), 2)


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
    # fw_cfg is gone (its DMA writes physical memory); the rest of QEMU's machine is untouched
    assert not tree.exist_node(devicetree.FW_CFG_NODE)
    assert tree.exist_node("cpus/cpu@1") and tree.exist_node("pl011@9000000")


def test_qemus_fw_cfg_is_where_the_shims_map_leaves_its_hole(qemu_dtb: bytes) -> None:
    reg = list(fdt.parse_dtb(qemu_dtb).get_property("reg", f"/{devicetree.FW_CFG_NODE}").data)
    assert reg[:2] == [0, devicetree.FW_CFG_PAGE] and reg[3] <= 0x1000


@given(st.text(alphabet=st.characters(blacklist_characters="\0", blacklist_categories=["Cs"]),
               max_size=300))  # fmt: skip
def test_device_tree_carries_any_command_line(qemu_dtb: bytes, text: str) -> None:
    e = devicetree.Edit("hvc", 0x4000_0000, 0x3FE0_0000, text, None, False)
    tree = fdt.parse_dtb(devicetree.edit(qemu_dtb, e))
    assert _bootargs(tree) == text.encode() + b"\0"


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

        self.ram = machine._memfd("test-ram", size=1 << 16)
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
        import time

        req = self.box + channel.REQ_AT
        self.words[req : req + 6] = array("Q", [0, kind, imm, pc, 0, 0])
        self.words[req + 6 : req + 24] = array("Q", regs + [0] * (18 - len(regs)))
        seq = self.words[self.box + channel.REQ_SEQ] + 1
        self.words[self.box + channel.REQ_SEQ] = seq
        deadline = time.monotonic() + 10
        while self.words[self.box + channel.RESP_SEQ] != seq and not self.ch.ended.is_set():
            assert time.monotonic() < deadline, "no answer"
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


@given(kind=st.one_of(st.integers(0, 5), st.integers(0, 2**64 - 1)),
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
        assert (m.ch.fault is None) == (valid or waits)  # a lone result or wake is malformed
        assert m.ch.waiting == ({0} if waits else set())
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


def _console(data: bytes, capture: bool = True) -> machine._Console:
    import io

    c = machine._Console(io.BytesIO(data), NONCE, capture)
    c.thread.join(timeout=60)
    return c


def test_console_is_bounded_by_bytes_and_takes_any_bytes() -> None:
    import sys

    endless = b"A" * (10 * machine.MAX_LINE)  # no newline at all
    c = _console(endless + b"\n\xff\xfe\x1b[2J\r\n")
    assert all(len(ln) <= machine.MAX_LINE for ln in c.lines)
    assert c.lines[-1] == "\ufffd\ufffd\x1b[2J"  # kept as text; the renderer escapes it
    # emoji cost 4 bytes a character in Python: the bound is on what the lines take
    wide = ("\U0001f600" * 1000 + "\n").encode() * 3000
    for flood in (wide, b"x\n" * 500_000, b"\n" * 500_000):
        c = _console(flood)
        kept = sum(sys.getsizeof(ln) for ln in c.lines)
        assert kept == c.kept <= machine.MAX_CONSOLE
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
    assert machine._capture(ok) == (b"hello", None)
    assert list(ok.lines) == ["boot", "done"]  # the capture is kept out of the console
    bad = _console(begin + b"\nnot base64!\n" + end + b"\n")
    assert machine._capture(bad) == (None, "the guest's capture is not valid base64")
    cut = _console(begin + b"\naGVsbG8=\n")
    assert machine._capture(cut) == (None, "the guest's capture was cut short")
    big = _console(begin + b"\n" + b"QUFB\n" * (machine.MAX_CAPTURE // 4 + 1) + end + b"\n")
    assert machine._capture(big) == (None, "the guest's capture is over 16 MiB")
    assert big.capture_bytes <= machine.MAX_CAPTURE
    # empty lines cost their newline: a flood of them is bounded too
    monkeypatch.setattr(machine, "MAX_CAPTURE", 1000)
    empty = _console(begin + b"\n" + b"\n" * 1001 + end + b"\n")
    assert machine._capture(empty)[0] is None and empty.capture_overflow
    assert machine._capture(_console(b"no capture\n"))[1] == (
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
