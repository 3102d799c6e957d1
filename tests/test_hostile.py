"""Careless and hostile input to the vCPU, the trace readers and the command
line: one clear line and a documented status, bounded memory, linear time.

Memory is measured by the kernel (peak resident set of the process), never
guessed from a timing. The ceiling every command keeps is MEMORY_CEILING_MIB.
"""

from __future__ import annotations

import gzip
import json
import struct
import subprocess
from pathlib import Path

import pytest
from cli_helpers import COMMAND, assert_usage_error, gunyah, run_measured
from hypothesis import given
from hypothesis import strategies as st

from gunyah import trace
from gunyah.cli import parse_number
from gunyah.probe import kernel_log
from gunyah.toolchain import BUILTIN_ELF
from gunyah.vcpu import GuestError, load_elf, load_raw

MEMORY_CEILING_MIB = 400  # README: what any command may hold, whatever its input
EVENT = (
    b"  CPU 0/KVM-1 [000] d..1. 1.000000: kvm_hvc_arm64: HVC at 0x1 (r0: 0x84000000, imm: 0x0)\n"
)


def elf_with(tmp_path: Path, p_vaddr: int | None = None, p_memsz: int | None = None) -> Path:
    """The built-in guest with its first PT_LOAD's address or size changed."""
    blob = bytearray(BUILTIN_ELF.read_bytes())
    (phoff,) = struct.unpack_from("<Q", blob, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", blob, 0x36)
    for i in range(phnum):
        at = phoff + i * phentsize
        if struct.unpack_from("<I", blob, at)[0] == 1:  # PT_LOAD
            if p_vaddr is not None:
                struct.pack_into("<Q", blob, at + 0x10, p_vaddr)
            if p_memsz is not None:
                struct.pack_into("<Q", blob, at + 0x28, p_memsz)
            break
    out = tmp_path / "patched.elf"
    out.write_bytes(bytes(blob))
    return out


# -- guests that ask for too much ----------------------------------------------
@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"p_memsz": 1 << 40}, "the vCPU gives a guest at most 256 MiB"),  # 1 TiB
        ({"p_memsz": 1 << 48}, "runs past the 48-bit address space"),
        ({"p_vaddr": (1 << 64) - 0x1000, "p_memsz": 0x2000}, "runs past the 48-bit"),
    ],
)
def test_segments_that_do_not_fit(tmp_path: Path, change: dict[str, int], fragment: str) -> None:
    elf = str(elf_with(tmp_path, **change))
    rc, mib, err = run_measured("run", elf)
    assert rc == 2 and fragment in err and len(err.strip().splitlines()) == 1, err
    assert mib < MEMORY_CEILING_MIB
    assert_usage_error(gunyah("conformance", elf), fragment)


def test_not_a_regular_file() -> None:
    assert_usage_error(gunyah("run", "/dev/zero"), "/dev/zero: not a regular file")
    assert_usage_error(gunyah("run", "--raw", "0x1000", "/dev/zero"), "not a regular file")


def test_stack_that_does_not_fit(tmp_path: Path) -> None:
    assert_usage_error(gunyah("run", str(BUILTIN_ELF), "--stack-size", str(1 << 40)), "from 1 to")
    near_top = elf_with(tmp_path, p_vaddr=(1 << 48) - 0x100000, p_memsz=0x1000)
    assert_usage_error(gunyah("run", str(near_top)), "no room for the stack")


@pytest.mark.parametrize("mode", ["--trace", "--json"])
def test_a_guest_spinning_on_hvc_keeps_bounded_memory(guests: dict[str, Path], mode: str) -> None:
    # a second of it makes some 250,000 calls, 25 times what the report keeps
    rc, mib, err = run_measured("run", str(guests["spin_hvc"]), mode, "--timeout", "1")
    assert rc == 125, err
    assert mib < MEMORY_CEILING_MIB


def test_kept_calls_say_how_many_were_dropped(guests: dict[str, Path]) -> None:
    p = gunyah("run", str(guests["spin_hvc"]), "--json", "--max-instructions", "400000")
    d = json.loads(p.stdout)
    assert d["stopped_by"] == "budget" and len(d["calls"]) == 10_000
    assert d["calls_dropped"] > 10_000  # about 1 call per 10 instructions
    text = gunyah("run", str(guests["spin_hvc"]), "--trace", "--max-instructions", "400000")
    first = text.stdout.splitlines()[0]
    assert first == f"({d['calls_dropped']} earlier calls not kept; the last 10000 follow)"


def test_conformance_of_a_spinning_guest(guests: dict[str, Path]) -> None:
    args = ("conformance", str(guests["spin_hvc"]), "--timeout", "1", "--json")
    rc, mib, _ = run_measured(*args, "--persona", "gunyah", "--persona", "kvm")
    assert rc == 1 and mib < MEMORY_CEILING_MIB
    d = json.loads(gunyah(*args, "--persona", "none", "--max-instructions", "100000").stdout)
    assert len(d["rows"][0]["calls"]) == 256


def test_wfi_is_named(tmp_path: Path) -> None:
    raw = tmp_path / "wfi.bin"
    raw.write_bytes(struct.pack("<II", 0xD503207F, 0x14000000))  # wfi; b .
    p = gunyah("run", "--raw", "0x10000", str(raw), "--json")
    d = json.loads(p.stdout)
    assert (p.returncode, d["stopped_by"], d["fault"]["pc"]) == (125, "wfi", 0x10000)


def test_a_tiny_timeout_is_a_timeout_not_no_limit(tmp_path: Path) -> None:
    raw = tmp_path / "loop.bin"
    raw.write_bytes(struct.pack("<I", 0x14000000))  # b .
    p = gunyah("run", "--raw", "0x10000", str(raw), "--json", "--timeout", "1e-9",
               "--max-instructions", str((1 << 64) - 1), timeout=30)  # fmt: skip
    assert json.loads(p.stdout)["stopped_by"] == "timeout"


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--max-instructions", str(1 << 64)), "from 1 to 18446744073709551615"),
        (("--timeout", "1e300"), "at most"),
        (("--timeout", "nan"), "not a number of seconds"),
        (("--timeout", "0"), "more than 0"),
        (("--max-instructions", "0x+1"), "not a whole number"),
        (("--max-instructions", "١٢"), "not a whole number"),
    ],
)
def test_limits_that_would_wrap(args: tuple[str, ...], fragment: str) -> None:
    assert_usage_error(gunyah("run", str(BUILTIN_ELF), *args), fragment)


@pytest.mark.parametrize("text", ["0x+1", "0x 1", " 1", "+1", "١", "0x", "1__0", "_1", "0x_1", ""])
def test_numbers_are_ascii_digits_only(text: str) -> None:
    assert parse_number(text) is None
    assert_usage_error(gunyah("decode", text), "not a number")


def test_ctrl_c_ends_the_whole_command_at_once(tmp_path: Path, guests: dict[str, Path]) -> None:
    raw = tmp_path / "loop.bin"
    raw.write_bytes(struct.pack("<I", 0x14000000))  # b .: never traps, never stops
    endless = ("--timeout", "60", "--max-instructions", str((1 << 64) - 1))
    for args in (
        ("run", "--raw", "0x10000", str(raw), *endless),
        ("run", str(guests["spin_hvc"]), *endless),
        ("conformance", str(guests["spin_hvc"]), *endless),
    ):
        rc, _, err = run_measured(*args, signal_after=1.5, timeout=20)
        assert rc == 130, (rc, args, err)
        assert "KeyboardInterrupt" not in err and "Traceback" not in err


# -- output that cannot be written ---------------------------------------------
def test_output_to_a_full_disk() -> None:
    with open("/dev/full", "w") as full:
        p = subprocess.run([*COMMAND, "identify"], stdout=full, stderr=subprocess.PIPE, text=True)
    assert p.returncode == 74
    assert p.stderr == "gunyah: cannot write the output: No space left on device\n"


def test_closed_stdout_is_not_silent_success() -> None:
    p = subprocess.run(f"'{COMMAND[0]}' identify >&-", shell=True, capture_output=True, text=True)
    assert p.returncode == 74 and "standard output is closed" in p.stderr


def test_closed_stdin() -> None:
    p = subprocess.run(f"'{COMMAND[0]}' trace stats - <&-", shell=True, capture_output=True,
                       text=True)  # fmt: skip
    assert p.returncode == 2 and p.stderr == "gunyah: -: standard input is closed\n"


# -- traces ----------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "csv", "run"])
def test_an_endless_line_keeps_bounded_memory(tmp_path: Path, fmt: str) -> None:
    zeros = tmp_path / "zeros"
    with open(zeros, "wb") as f:
        if fmt == "csv":
            f.write(b"function_id,imm\n")
        f.truncate(300 << 20)  # sparse: 300 MiB of NULs without a newline
    with open(zeros, "rb") as f:
        rc, mib, err = run_measured("trace", "stats", "--format", fmt, "-", stdin=f)
    assert rc == 0, err
    assert mib < MEMORY_CEILING_MIB


def test_a_line_dense_with_anchors_takes_linear_time(tmp_path: Path) -> None:
    """Each bad event looked at once: 8 MB of them, one line, in seconds."""
    path = tmp_path / "dense.trace"
    path.write_bytes(b"# tracer: nop\nx " + b"HVC at 0xq " * 800_000 + b"\n" + EVENT)
    for cmd in (("stats",), ("decode",)):
        p = gunyah("trace", *cmd, str(path), "--json", timeout=60)
        assert p.returncode == 0, p.stderr
    d = json.loads(gunyah("trace", "stats", str(path), "--json").stdout)
    assert (d["calls"], d["malformed"]["count"]) == (1, 1)


def test_bad_rows_are_malformed_not_internal_errors(tmp_path: Path) -> None:
    csv_path = tmp_path / "t.csv"
    csv_path.write_text("function_id,imm\n0x84000000,0,extra\n\"" + "a" * 200_000 + "\"\n"
                        "0x84000000,0\n")  # fmt: skip
    jsonl = tmp_path / "t.jsonl"
    jsonl.write_text('{"function_id": ' + "[" * 100_000 + "\n"
                     '{"function_id": 1' + "0" * 5000 + "}\n"
                     '{"function_id": "0x84000000"}\n')  # fmt: skip
    for path in (csv_path, jsonl):
        p = gunyah("trace", "stats", str(path), "--json")
        assert p.returncode == 0, p.stderr
        d = json.loads(p.stdout)
        assert (d["calls"], d["malformed"]["count"]) == (1, 2), d


def test_corrupt_gzip_after_a_valid_header(tmp_path: Path) -> None:
    blob = gzip.compress(EVENT * 5000)
    bad = tmp_path / "bad.trace.gz"
    bad.write_bytes(blob[:30] + bytes(b ^ 0x55 for b in blob[30:]))
    assert_usage_error(gunyah("trace", "stats", str(bad)), f"{bad}: cannot read")
    assert_usage_error(gunyah("trace", "decode", str(bad)), f"{bad}: cannot read")


def test_one_unreadable_file_keeps_the_others_counts(tmp_path: Path) -> None:
    good = tmp_path / "good.trace"
    good.write_bytes(EVENT * 3)
    p = gunyah("trace", "stats", str(good), str(tmp_path / "missing"), "--json")
    assert p.returncode == 2
    d = json.loads(p.stdout)
    assert d["calls"] == 3 and len(d["unreadable"]) == 1
    assert p.stderr.strip().endswith("No such file or directory (left out of the counts)")


# -- every parser, random bytes ---------------------------------------------------
@given(st.binary(max_size=2000))
def test_line_formats_never_crash(blob: bytes) -> None:
    import io

    for kind in ("jsonl", "csv", "run"):
        bad = trace.Malformed()
        try:
            fmt = trace.source.BY_NAME[kind]
            for _ in trace.lines.line_calls(fmt, io.BytesIO(blob), "x", bad):
                pass
        except trace.TraceError:
            pass


@given(st.text(max_size=400), st.sampled_from(kernel_log.LOG_FILES))
def test_kernel_log_reader_never_crashes(text: str, path: str) -> None:
    log = kernel_log.read_log(text, path)
    assert (log.banner is None) == (log.variant is None)


@given(st.binary(max_size=4000))
def test_guest_loaders_refuse_cleanly(tmp_path_factory: pytest.TempPathFactory,
                                      blob: bytes) -> None:  # fmt: skip
    path = tmp_path_factory.mktemp("elf") / "g"
    path.write_bytes(b"\x7fELF\x02\x01" + blob if blob[:1] != b"!" else blob)
    for load in (load_elf, lambda p: load_raw(p, 0x1000)):
        try:
            load(path)
        except GuestError as e:
            assert str(e).startswith(str(path))


@given(st.binary(max_size=3000))
def test_captures_of_random_bytes_are_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, blob: bytes
) -> None:
    from gunyah import probe

    path = tmp_path_factory.mktemp("cap") / "c.tar"
    path.write_bytes(blob)
    try:
        probe.probe(str(path))
    except ValueError as e:
        assert str(e).startswith(str(path))


@pytest.mark.parametrize("parser", ["compiled", "numpy"])
def test_distinct_calls_are_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, parser: str
) -> None:
    """Past MAX_DISTINCT distinct calls, the rest are counted together: the
    table stays bounded and every call is still counted."""
    if parser == "numpy":
        monkeypatch.setattr(trace.scan, "_ftrace", None)
    elif trace.scan._ftrace is None:
        pytest.skip("the compiled scanner was not built")
    path = tmp_path / "distinct.trace"
    n = trace.MAX_DISTINCT + 5000
    path.write_text("".join(
        f"  kvm_hvc_arm64: HVC at 0x1 (r0: 0x{0x84000000 + i:x}, imm: 0x0)\n" for i in range(n)
    ))  # fmt: skip
    d = trace.stats([str(path)]).to_dict()
    assert d["calls"] == n == sum(r["count"] for r in d["by_call"])
    assert len(d["by_call"]) == trace.MAX_DISTINCT + 1
    assert d["by_call"][0]["conduit"] is None and d["by_call"][0]["count"] >= 5000
    assert "(others)" in gunyah("trace", "stats", str(path)).stdout


def test_building_without_the_compiler_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/run.py and the guest builds from a venv without the test extra."""
    import importlib.util

    from gunyah import toolchain

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(toolchain.BuildError, match=r"pip install -e '\.\[test\]'"):
        toolchain.build([tmp_path / "g.c"], tmp_path / "g.elf")


@given(st.lists(st.tuples(st.integers(0, 0x1F8), st.integers(0, 2**64 - 1)), min_size=1,
                max_size=4))  # fmt: skip
def test_elf_headers_pointing_anywhere_are_refused_cleanly(
    tmp_path_factory: pytest.TempPathFactory, patches: list[tuple[int, int]]
) -> None:
    """The built-in guest with words of its headers overwritten: loaded, or
    refused with GuestError, never another exception."""
    blob = bytearray(BUILTIN_ELF.read_bytes())
    for at, value in patches:
        struct.pack_into("<Q", blob, at, value)
    path = tmp_path_factory.mktemp("elf") / "g.elf"
    path.write_bytes(bytes(blob))
    try:
        load_elf(path)
    except GuestError as e:
        assert str(e).startswith(str(path))
