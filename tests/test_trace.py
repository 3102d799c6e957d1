"""Trace reading: every format, bad lines, and the compiled scanner against the numpy parser."""

from __future__ import annotations

import contextlib
import gzip
import importlib.util
import json
import mmap
import os
import shutil
import subprocess
import sys
import sysconfig
from collections import Counter
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from cli_helpers import assert_usage_error, gunyah, gunyah_json
from hypothesis import given
from hypothesis import strategies as st

from gunyah import trace

HEAD = "       CPU 0/KVM-4018    [002] d..1. 65536.123456: "


def ev(kind: str, pc: int, r0: int, imm: int, wide: bool = True) -> str:
    w = 16 if wide else 8
    name = "kvm_smc_arm64" if kind == "SMC" else "kvm_hvc_arm64"
    return f"{HEAD}{name}: {kind} at 0x{pc:0{w}x} (r0: 0x{r0:0{w}x}, imm: 0x{imm:x})"


BOOT = "\n".join([
    "# tracer: nop",
    "#",
    ev("HVC", 0x40080000, 0x84000000, 0),            # PSCI_VERSION
    f"{HEAD}kvm_exit: TRAP: HSR_EC: 0x0016 (HVC64), PC: 0x0000000040080004",
    ev("HVC", 0x40080010, 0x80000000, 0, wide=False),  # SMCCC_VERSION, old format
    ev("HVC", 0x40080020, 0x80000001, 0),            # SMCCC_ARCH_FEATURES
    ev("SMC", 0x40080030, 0x8600FF01, 0),            # vendor CALL_UID over SMC
    ev("HVC", 0x40080040, 0xFFFFFFFF_C6008000, 0),   # identify, junk in r0's upper half
    ev("HVC", 0x40080050, 0x0, 0x6000),              # native hypervisor_identify
    ev("HVC", 0x40080060, 0x86000000, 0),            # KVM_FEATURES
    # an older kernel's line: no comm name recorded, four flag characters
    "           <...>-16291 [015] .... 780932.836905: kvm_hvc_arm64: "
    "HVC at 0x4098e46c (r0: 0x84000000, imm: 0x0)",
    f"{HEAD}kvm_hvc_arm64: HVC at 0x0000000040080080 (r0: 0x00000000840zz000, imm: 0x0)",
    f"{HEAD}kvm_hvc_arm64: HVC at 0x0000000040080090 (r0: 0x0000000084000000, imm: 0x0",
]) + "\n"  # fmt: skip


def write(tmp: Path, name: str, text: str | bytes) -> str:
    p = tmp / name
    if isinstance(text, str):
        text = text.encode()
    p.write_bytes(gzip.compress(text) if name.endswith(".gz") else text)
    return str(p)


def by_name(s: trace.Stats) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in s.rows():
        label = f"{r['conduit']}:{r['name']}"
        out[label] = out.get(label, 0) + r["count"]
    return out


def test_boot_trace_summary(tmp_path: Path) -> None:
    s = trace.stats([write(tmp_path, "boot.trace", BOOT)])
    assert s.calls == 8 and s.lines == 13
    assert by_name(s) == {
        "hvc:PSCI_VERSION": 2, "hvc:SMCCC_VERSION": 1, "hvc:SMCCC_ARCH_FEATURES": 1,
        "smc:VENDOR_HYP_CALL_UID": 1, "hvc:hypervisor_identify": 2, "hvc:KVM_FEATURES": 1,
    }  # fmt: skip
    assert s.malformed.count == 2
    assert [line for _, line, _ in s.malformed.first] == [12, 13]


def test_gzip_and_stdin(tmp_path: Path) -> None:
    gz = write(tmp_path, "boot.trace.gz", BOOT)
    assert trace.stats([gz]).calls == 8
    p = gunyah("trace", "stats", "-", "--json", stdin=BOOT)
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["calls"] == 8


def test_decode_streams_every_call(tmp_path: Path) -> None:
    p = gunyah("trace", "decode", write(tmp_path, "boot.trace", BOOT))
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert len(lines) == 8
    assert lines[0].endswith("hvc #0x0 pc=0x40080000 x0=0x84000000 PSCI_VERSION")
    assert "x0=0xffffffffc6008000 hypervisor_identify" in lines[4]
    assert "hvc #0x6000" in lines[5] and lines[5].endswith("hypervisor_identify")
    assert p.stderr.count("malformed") == 2


def test_decode_json_lines(tmp_path: Path) -> None:
    p = gunyah("trace", "decode", "--json", write(tmp_path, "boot.trace", BOOT))
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert rows[3] == {"file": str(tmp_path / "boot.trace"), "line": 7, "cpu": None,
                       "conduit": "smc", "imm": 0, "pc": 0x40080030, "r0": 0x8600FF01,
                       "function_id": 0x8600FF01, "name": "VENDOR_HYP_CALL_UID"}  # fmt: skip


def test_the_vcpu_of_each_call_is_read_back(tmp_path: Path) -> None:
    """What `gunyah boot --trace` and `run --trace` print names each call's
    vCPU; decode shows it and stats counts the calls of each."""
    run_log = (
        "cpu0 0x0000000040080000 hvc #0x0 x0=0x84000000 PSCI_VERSION -> 0x10001\n"
        "cpu1 0x0000000040080004 hvc #0x0 x0=0x84000004 PSCI_AFFINITY_INFO -> 0x0\n"
        "cpu1 0x0000000040080008 hvc #0x0 x0=0x84000004 PSCI_AFFINITY_INFO -> 0x0\n"
        "0x000000004008000c hvc #0x0 x0=0x84000000 PSCI_VERSION -> 0x10001\n"
    )
    path = write(tmp_path, "run.log", run_log)
    p = gunyah("trace", "decode", path)
    assert [ln.split(": ", 1)[1].split(" ")[0] for ln in p.stdout.splitlines()] == [
        "cpu0", "cpu1", "cpu1", "hvc"]  # fmt: skip
    code, d = gunyah_json("trace", "stats", path)
    assert d["by_vcpu"] == [{"cpu": 0, "count": 1}, {"cpu": 1, "count": 2}]
    assert "calls by vCPU: vCPU 0: 1, vCPU 1: 2" in gunyah("trace", "stats", path).stdout
    jsonl = write(tmp_path, "calls.jsonl", '{"function_id": 1, "cpu": 3}\n'
                  '{"function_id": 1, "cpu": 65536}\n{"function_id": 1, "cpu": "x"}\n')
    code, d = gunyah_json("trace", "stats", jsonl)
    assert d["by_vcpu"] == [{"cpu": 3, "count": 1}] and d["malformed"]["count"] == 2


def test_stats_text_table(tmp_path: Path) -> None:
    p = gunyah("trace", "stats", write(tmp_path, "boot.trace", BOOT))
    assert p.returncode == 0
    out = p.stdout.splitlines()
    assert out[0].startswith("8 calls in 13 lines")
    assert any("25.0%" in line and "PSCI_VERSION" in line for line in out)
    assert any(line.startswith("  ") and ":12:" in line for line in out)


def test_jsonl_and_csv(tmp_path: Path) -> None:
    jsonl = "\n".join([
        json.dumps({"function_id": "0x84000000", "conduit": "hvc"}),
        json.dumps({"r0": 0xC6008000, "imm": 0}),
        json.dumps({"x0": 0, "imm": "0x6000", "pc": "0x1000"}),
        "not json",
        json.dumps({"function_id": "0x84000000", "conduit": "svc"}),
    ])  # fmt: skip
    s = trace.stats([write(tmp_path, "t.jsonl", jsonl)])
    assert s.calls == 3 and s.malformed.count == 2
    csv = "pc,conduit,function_id,imm\n0x10,smc,0x8600ff01,0\n0x14,hvc,0xzz,0\n"
    s = trace.stats([write(tmp_path, "t.csv", csv)])
    assert by_name(s) == {"smc:VENDOR_HYP_CALL_UID": 1} and s.malformed.count == 1


def test_run_trace_is_accepted(tmp_path: Path, guests: dict[str, Path]) -> None:
    run = gunyah("run", str(guests["calls"]), "--trace")
    s = trace.stats([write(tmp_path, "run.txt", run.stdout)])
    assert by_name(s) == {"hvc:VENDOR_HYP_CALL_UID": 1, "hvc:hypervisor_identify": 1}
    assert s.malformed.count == 0  # the guest's own output lines are not calls


def test_not_a_trace(tmp_path: Path) -> None:
    bad = write(tmp_path, "notes.txt", "dear diary\ntoday nothing happened\n")
    assert_usage_error(gunyah("trace", "stats", bad), "not a trace")
    assert_usage_error(gunyah("trace", "stats", str(tmp_path / "none")), "cannot read")
    empty = write(tmp_path, "empty.txt", "")
    assert_usage_error(gunyah("trace", "decode", empty), "empty")


def test_forced_format_on_wrong_input(tmp_path: Path) -> None:
    p = write(tmp_path, "boot.trace", BOOT)
    s = trace.stats([p], "jsonl")
    assert s.calls == 0 and s.malformed.count > 0  # every line bad, none fatal


needs_scanner = pytest.mark.skipif(trace.scan._ftrace is None, reason="no compiled scanner")


def test_compiled_scanner_is_built() -> None:
    """Where a C compiler is, the install built the scanner (setup.py makes it
    optional, so a failed build would pass unseen but for this test)."""
    cc = os.environ.get("CC") or (sysconfig.get_config_var("CC") or "cc").split()[0]
    if trace.scan._ftrace is None and not shutil.which(cc):
        pytest.skip(f"no C compiler ({cc}) on PATH: trace stats runs on numpy")
    assert trace.scanner() == "compiled", f"{cc} is on PATH but the scanner was not built"


def build_scanner(out: Path, *flags: str) -> Path:
    """The scanner's C source built into a Python extension with ziglang."""
    src = Path(trace.__file__).parent.with_name("_ftrace.c")
    include = sysconfig.get_paths()["include"]
    cmd = [sys.executable, "-m", "ziglang", "cc", "-shared", "-fPIC", "-O2", *flags,
           "-Wall", "-Wextra", "-Werror", f"-I{include}", "-o", str(out), str(src)]  # fmt: skip
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, p.stderr
    return out


@pytest.fixture(scope="session")
def plain_c(tmp_path_factory: pytest.TempPathFactory) -> ModuleType:
    """The scanner built without its SSE2/AVX2 loops (-DGUNYAH_NO_SIMD): the
    plain C loop that CPUs without them, AArch64 among them, run."""
    name = f"_ftrace{sysconfig.get_config_var('EXT_SUFFIX')}"
    out = build_scanner(tmp_path_factory.mktemp("plain-c") / name, "-DGUNYAH_NO_SIMD")
    spec = importlib.util.spec_from_file_location("_ftrace", out)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_scanner_builds_for_aarch64(tmp_path: Path) -> None:
    """Where Gunyah runs: the build a Snapdragon host or an Arm server makes
    (its plain C loop runs here, in the tests that use `plain_c`)."""
    from elftools.elf.elffile import ELFFile

    out = build_scanner(tmp_path / "_ftrace.so", "-target", "aarch64-linux-gnu")
    with open(out, "rb") as f:
        assert ELFFile(f)["e_machine"] == "EM_AARCH64"


@pytest.fixture(scope="session", params=[pytest.param("as built", marks=needs_scanner), "plain C"])
def scan_module(request: pytest.FixtureRequest) -> ModuleType:
    """Each compiled scanner: as the install built it, and its plain C loop."""
    if request.param == "plain C":
        module: ModuleType = request.getfixturevalue("plain_c")
        return module
    assert trace.scan._ftrace is not None
    return trace.scan._ftrace


@pytest.fixture(params=[pytest.param("compiled", marks=needs_scanner), "plain C", "numpy"])
def scanner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a test with each way `stats` can count ftrace."""
    if request.param == "numpy":
        monkeypatch.setattr(trace.scan, "_ftrace", None)
    elif request.param == "plain C":
        monkeypatch.setattr(trace.scan, "_ftrace", request.getfixturevalue("plain_c"))
    return "numpy" if request.param == "numpy" else "compiled"


@pytest.mark.parametrize("name", ["many.trace", "many.trace.gz"])  # mapped, and streamed
def test_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, scanner: str,
                          name: str) -> None:  # fmt: skip
    """Lines cut by the reader's block size are put back together, in order,
    however many threads scan the blocks."""
    p = write(tmp_path, name, BOOT * 200)
    whole = trace.stats([p])
    monkeypatch.setattr(trace.blocks, "CHUNK", 97)
    monkeypatch.setattr(trace.blocks, "SPILL", 4096)
    monkeypatch.setattr(trace.blocks, "RELEASE", mmap.PAGESIZE)
    monkeypatch.setattr(trace.scan, "_workers", lambda: 3)
    small = trace.stats([p])
    assert trace.scanner() == scanner
    assert small.to_dict() == whole.to_dict()
    assert whole.calls == 8 * 200 and whole.malformed.count == 2 * 200
    assert whole.lines == 13 * 200
    assert [n for _, n, _ in whole.malformed.first] == [12, 13, 25, 26, 38]


def test_mapped_pages_are_let_go_behind_the_scan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace.blocks, "RELEASE", mmap.PAGESIZE)
    page = mmap.PAGESIZE
    f = tmp_path / "t"
    f.write_bytes(b"x" * (10 * page))
    with open(f, "rb") as fh, mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mm:
        blocks = trace.blocks._MappedBlocks(mm)
        blocks.done(3 * page + 5, 7 * page)  # out of order: nothing before it is done
        assert blocks.released == 0
        blocks.done(0, 3 * page + 5)  # now 0 .. 7 pages are scanned in a row
        assert blocks.scanned == 7 * page and blocks.released == 7 * page
        blocks.done(7 * page, 9 * page + 1)
        assert blocks.released == 9 * page  # whole windows only


def test_line_longer_than_a_block(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  scanner: str) -> None:  # fmt: skip
    """A line longer than the reader holds is cut, not lost, and counted once."""
    monkeypatch.setattr(trace.blocks, "CHUNK", 256)
    monkeypatch.setattr(trace.blocks, "SPILL", 256)  # event lines fit; the comment does not
    text = ev("HVC", 0x1000, 0x84000000, 0) + "\n" + "# " + "x" * 1000 + "\n" + BOOT + "tail"
    s = trace.stats([write(tmp_path, "long.trace", text)])
    assert s.lines == 2 + 13 + 1 and s.calls == 9


@needs_scanner
def test_same_counts_either_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The compiled scanner and the numpy parser give the same stats."""
    monkeypatch.syspath_prepend(str(Path(__file__).parents[1] / "bench"))
    import gen_trace  # the benchmark's own mix, malformed lines and all

    p = tmp_path / "gen.trace"
    p.write_bytes(gen_trace.block(gen_trace.random.Random(7), 3000))
    compiled = trace.stats([str(p)]).to_dict()
    monkeypatch.setattr(trace.scan, "_ftrace", None)
    assert trace.stats([str(p)]).to_dict() == compiled
    assert compiled["calls"] > 2000 and compiled["malformed"]["count"] > 0


def hex_text(draw: st.DrawFn) -> str:
    """A hex number as a kernel might print it, or not quite: any width up
    to 18 digits, either case."""
    value = draw(st.integers(0, 2**64 - 1) | st.integers(0, 0x1FFFF))
    digits = f"{value:0{draw(st.integers(1, 18))}x}"
    return digits.upper() if draw(st.booleans()) else digits


@st.composite
def trace_lines(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["HVC", "SMC"]))
    name = "kvm_smc_arm64" if kind == "SMC" else "kvm_hvc_arm64"
    event = f"{kind} at 0x{hex_text(draw)} (r0: 0x{hex_text(draw)}, imm: 0x{hex_text(draw)})"
    line = (HEAD + name + ": " + event).encode()
    shape = draw(st.sampled_from(
        ["event", "corrupt", "name", "two", "other", "junk", "garbled", "mismatch"]
    ))  # fmt: skip
    if shape in ("corrupt", "name"):  # one byte changed after, or in, the event name
        i = draw(st.integers(len(HEAD) + 15, len(line) - 1) if shape == "corrupt"
                 else st.integers(len(HEAD), len(HEAD) + 16))  # fmt: skip
        byte = draw(st.sampled_from([b"z", b"(", b")", b",", b":", b" ", b"x", b"\x80", b"\n"]))
        line = line[:i] + byte + line[i + 1 :]
    elif shape == "two":
        line += b" " + event.encode()
    elif shape == "other":
        line = (HEAD + "kvm_exit: TRAP: HSR_EC: 0x0016 (HVC64), PC: 0x0000000040080004").encode()
    elif shape == "junk":
        line = draw(st.binary(max_size=80)).replace(b"\n", b" ")
    elif shape == "garbled":  # the event named, its payload anything
        junk = draw(st.binary(max_size=40)).replace(b"\n", b" ")
        line = (HEAD + name + ": ").encode() + draw(st.sampled_from([b"", kind.encode()])) + junk
    elif shape == "mismatch":  # a call of the other conduit under this name
        other = "kvm_hvc_arm64" if kind == "SMC" else "kvm_smc_arm64"
        line = (HEAD + other + ": " + event).encode()
    return line


def compiled_scan(
    module: ModuleType, data: bytes
) -> tuple[int, int, dict[int, int], int, list[tuple[int, int]]]:
    table = module.table()
    bad = np.zeros((trace.MAX_MALFORMED_SHOWN, 2), np.int64)
    lines, calls, nbad = module.scan(data, 0, len(data), table, bad)
    shown = [(int(o), int(n)) for o, n in bad[: min(nbad, len(bad))].tolist()]
    return lines, calls, module.counts(table), nbad, shown


@given(lines=st.lists(trace_lines(), max_size=30), end_newline=st.booleans())
def test_compiled_scanner_agrees_with_numpy_parser(
    scan_module: ModuleType, lines: list[bytes], end_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if end_newline else b"")
    n_lines, n_calls, counts, n_bad, shown = compiled_scan(scan_module, data)
    calls, malformed = trace.parse_ftrace(data, 1)
    keys = Counter(trace.calls._call_keys(calls.smc, calls.r0, calls.imm).tolist())
    assert n_lines == data.count(b"\n")
    assert n_calls == len(calls) and counts == keys
    assert n_bad == len(malformed)
    for (offset, index), line in zip(shown, malformed.tolist(), strict=False):
        assert offset == 0 or data[offset - 1] == ord("\n")  # where the line starts
        assert index == data.count(b"\n", 0, offset) == line - 1


@given(blob=st.binary(max_size=400), start=st.integers(0, 400), stop=st.integers(0, 400))
def test_arbitrary_bytes_never_crash(
    scan_module: ModuleType, blob: bytes, start: int, stop: int
) -> None:
    trace.parse_ftrace(blob, 1)
    if start <= stop <= len(blob):
        compiled_scan(scan_module, blob[start:stop])
    with contextlib.suppress(trace.TraceError):
        trace.sniff(blob)


@needs_scanner
def test_scan_refuses_bad_arguments() -> None:
    assert trace.scan._ftrace is not None
    table, bad = trace.scan._ftrace.table(), np.zeros((1, 2), np.int64)
    with pytest.raises(ValueError, match="within"):
        trace.scan._ftrace.scan(b"abc", 2, 1, table, bad)
    with pytest.raises(ValueError, match="pairs"):
        trace.scan._ftrace.scan(b"abc", 0, 3, table, np.zeros(3, np.int64))
    with pytest.raises(ValueError, match="Capsule"):
        trace.scan._ftrace.scan(b"abc", 0, 3, object(), bad)  # not a table


def test_progress_bar_on_a_terminal(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from gunyah.cli import trace as cli

    big = tmp_path / "big.trace"
    with open(big, "wb") as f:
        f.truncate(65 << 20)  # sparse: big by its size, not on disk
    gz = write(tmp_path, "small.trace.gz", BOOT)
    for stream in (sys.stdout, sys.stderr):
        monkeypatch.setattr(stream, "isatty", lambda: True)
    bar = cli._progress([str(big)], False)
    assert bar is not None and bar.total == 65 << 20
    bar.close()
    bar = cli._progress([str(big), gz], False)  # counts text, so no total from a gzip size
    assert bar is not None and bar.total is None
    bar.close()
    assert cli._progress([str(big)], True) is None  # --json
    assert cli._progress([gz], False) is None  # small


def test_cli_offers_every_format() -> None:
    from gunyah import cli

    assert cli.FORMATS_CHOICES == trace.FORMATS


def test_a_named_event_that_does_not_parse_is_malformed(tmp_path: Path, scanner: str) -> None:
    """`kvm_hvc_arm64: HVC at garbage` names the event: a malformed line, not an
    unrelated one; so is a call under the other conduit's name."""
    text = "\n".join([
        "# tracer: nop",
        f"{HEAD}kvm_hvc_arm64: HVC at garbage",
        ev("HVC", 0x40080000, 0x84000000, 0),
        f"{HEAD}kvm_smc_arm64: HVC at 0x1 (r0: 0x84000000, imm: 0x0)",
        f"{HEAD}kvm_exit: TRAP: HSR_EC: 0x0016 (HVC64), PC: 0x0000000040080004",
    ]) + "\n"  # fmt: skip
    s = trace.stats([write(tmp_path, "garbled.trace", text)])
    assert s.calls == 2  # the mismatched line's call still counts, and its line is bad
    assert [(n, t.endswith(end)) for (_, n, t), end in zip(s.malformed.first, (
        "kvm_hvc_arm64: HVC at garbage", "kvm_smc_arm64: HVC at 0x1 (r0: 0x84000000, imm: 0x0)"
    ), strict=True)] == [(2, True), (4, True)]  # fmt: skip
