"""Trace reading: every format, bad lines, and the fast path against the full parser."""

from __future__ import annotations

import contextlib
import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from cli_helpers import assert_usage_error, gunyah
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
    ev("HVC", 0x40080070, 0x84000000, 0),
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
    assert rows[3] == {"file": str(tmp_path / "boot.trace"), "line": 7, "conduit": "smc",
                       "imm": 0, "pc": 0x40080030, "r0": 0x8600FF01,
                       "function_id": 0x8600FF01, "name": "VENDOR_HYP_CALL_UID"}  # fmt: skip


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


def test_chunk_boundaries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Lines cut by the reader's block size are put back together."""
    body = BOOT * 50
    p = write(tmp_path, "many.trace", body)
    whole = trace.stats([p])
    monkeypatch.setattr(trace, "CHUNK", 97)
    monkeypatch.setattr(trace, "SPILL", 4096)
    small = trace.stats([p])
    assert small.to_dict() == whole.to_dict()
    assert whole.calls == 8 * 50 and whole.malformed.count == 2 * 50


hexes = st.integers(0, 2**64 - 1)


@st.composite
def event_lines(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["HVC", "SMC"]))
    wide = draw(st.booleans())
    top = 2**64 - 1 if wide else 2**32 - 1
    line = ev(kind, draw(st.integers(0, top)), draw(st.integers(0, top)),
              draw(st.integers(0, 0xFFFF)), wide)  # fmt: skip
    if draw(st.booleans()):  # corrupt one byte somewhere after the event name
        i = draw(st.integers(len(HEAD) + 15, len(line) - 1))
        line = line[:i] + draw(st.sampled_from("z(),: x")) + line[i + 1 :]
    return line


@given(st.lists(event_lines(), min_size=1, max_size=30))
def test_fast_path_agrees_with_full_parser(lines: list[str]) -> None:
    data = ("\n".join(lines) + "\n").encode()
    a = np.frombuffer(data + bytes(64), np.uint8)
    fast = trace.ftrace_calls_fast(a, len(data))
    full, malformed = trace.parse_ftrace(data, 1)

    def line_of(pos: int) -> int:
        return data.count(b"\n", 0, pos) + 1

    fast_calls = {
        line_of(p): (s, f, i)
        for p, s, f, i in zip(fast.at.tolist(), fast.smc.tolist(), fast.fid.tolist(),
                              fast.imm.tolist(), strict=True)
    }  # fmt: skip
    full_calls = {
        n: (s, r & 0xFFFFFFFF, i)
        for n, s, r, i in zip(full.line.tolist(), full.smc.tolist(), full.r0.tolist(),
                              full.imm.tolist(), strict=True)
    }  # fmt: skip
    bad_full = set(malformed.tolist())
    # every call the full parser finds, the fast path finds alike
    assert {n: fast_calls.get(n) for n in full_calls} == full_calls
    # the fast path takes more only where the full parser found the pc garbled
    assert set(fast_calls) - set(full_calls) <= bad_full
    # what the fast path calls malformed, the full parser does not call a call
    for pos in fast.bad.tolist():
        assert line_of(pos) not in full_calls


@given(st.binary(max_size=400))
def test_arbitrary_bytes_never_crash(blob: bytes) -> None:
    a = np.frombuffer(blob + bytes(64), np.uint8)
    trace.ftrace_calls_fast(a, len(blob))
    trace.parse_ftrace(blob, 1)
    with contextlib.suppress(trace.TraceError):
        trace.sniff(blob)


def test_cli_offers_every_format() -> None:
    from gunyah import cli

    assert cli.FORMATS_CHOICES == trace.FORMATS
