"""The command through its real entry point: output, JSON shape, exit codes, errors."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah, gunyah_json
from hypothesis import given
from hypothesis import strategies as st

from gunyah import cli


def test_identify_default_text() -> None:
    p = gunyah("identify")
    assert p.returncode == 0
    lines = p.stdout.splitlines()
    assert lines[0] == "Running under Gunyah hypervisor 51/v1"
    assert "c1d58fcd-a453-5fdb-9265-ce36673d5f14" in p.stdout
    assert "Verdict:    supported" in p.stdout


@pytest.mark.parametrize(
    ("persona", "code", "verdict"),
    [
        ("gunyah", 0, "supported"),
        ("qualcomm", 1, "not-gunyah"),  # the Linux driver's final form takes only the standard UID
        ("kvm", 1, "not-gunyah"),
        ("none", 1, "not-gunyah"),
    ],
)
def test_identify_exit_codes(persona: str, code: int, verdict: str) -> None:
    rc, d = gunyah_json("identify", "--persona", persona)
    assert rc == code
    assert d["verdict"] == verdict and d["persona"] == persona


def test_identify_json_keys() -> None:
    rc, d = gunyah_json("identify")
    assert rc == 0
    assert {"persona", "uid", "is_gunyah", "identify", "verdict", "reasons"} <= set(d)
    assert d["uid"]["words"] == [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]
    i = d["identify"]
    assert i["api_info"] == 0x5100000000008001
    assert i["variant"] == {"value": 0x51, "name": "qualcomm"}
    assert i["flags"] == [0x10000FFF, 0, 0]
    assert i["scheduler"] == {"value": 1, "name": "fprr"}
    assert "doorbell" in i["features"] and i["unknown_flag_bits"] == []


def test_identify_over_smc() -> None:
    rc, d = gunyah_json("identify", "--smc")
    assert rc == 0 and d["conduit"] == "smc"


def test_decode_names_hypervisor_identify() -> None:
    p = gunyah("decode", "0xc6008000")
    assert p.returncode == 0
    assert "hypervisor_identify" in p.stdout.splitlines()[0]


def test_decode_json_shape() -> None:
    rc, rows = gunyah_json("decode", "0xC600_8000", "2248212225")
    assert rc == 0
    assert [r["value"] for r in rows] == [0xC6008000, 0x8600FF01]
    r = rows[0]
    assert {
        "value",
        "fast",
        "smc64",
        "owner",
        "sve_hint",
        "res0",
        "valid",
        "function",
        "name",
        "gunyah",
    } <= set(r)
    assert r["gunyah"]["number"] == 0 and r["gunyah"]["class"]["name"] == "hypercall"
    assert r["owner"] == {"value": 6, "name": "vendor-hypervisor-service"}


def test_decode_invalid_res0_visible() -> None:
    rc, rows = gunyah_json("decode", "0x80020000")
    assert rows[0]["valid"] is False and rows[0]["res0"] == 1
    assert "invalid" in gunyah("decode", "0x80020000").stdout


def test_decode_hvc_imm() -> None:
    rc, rows = gunyah_json("decode", "--hvc-imm", "0x6000", "0x6001", "7")
    assert [r["abi"] for r in rows] == ["native", "native", "none"]
    assert rows[1]["name"] == "partition_create_partition"


def test_decode_uid_and_identify() -> None:
    rc, d = gunyah_json("decode", "--uid", "0xb66fb428", "0xe911c52e", "0x564bcaa9", "0x743a004d")
    assert d["hypervisor"] == "KVM" and d["is_gunyah"] is False
    rc, d = gunyah_json("decode", "--identify", "0x4800000000004002", "0x1000")
    assert d["api_version"] == 2 and d["big_endian"] and not d["is_64bit"]
    assert d["variant"]["name"] == "gunyah"
    assert d["unknown_flag_bits"] == [{"flags": 0, "bit": 12}]


def test_call_identify_and_uid() -> None:
    rc, d = gunyah_json("call", "0xc6008000")
    assert rc == 0 and d["results"] == [0x5100000000008001, 0x10000FFF, 0, 0]
    assert d["meaning"]["identify"]["api_version"] == 1
    rc, d = gunyah_json("call", "0x8600ff01", "--persona", "qualcomm")
    assert d["width"] == 32 and d["meaning"]["uid"]["hypervisor"] == "Gunyah (Qualcomm build)"


def test_call_native() -> None:
    rc, d = gunyah_json("call", "--hvc-imm", "0x6000")
    assert d["function"] is None and d["hvc"]["name"] == "hypervisor_identify"
    assert d["results"][0] == 0x5100000000008001


def test_call_unknown_says_not_supported() -> None:
    p = gunyah("call", "0x82000000")
    assert p.returncode == 0 and "-1 NOT_SUPPORTED" in p.stdout


def test_personas_lists_all() -> None:
    rc, rows = gunyah_json("personas")
    assert {r["name"] for r in rows} >= {"gunyah", "qualcomm", "kvm", "none"}
    assert all(r["expected_verdict"] for r in rows)


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("decode", "0xzz"), "not a number"),
        (("decode", "12ab"), "not a number"),
        (("decode", "-1"), "'-1' is not a number"),
        (("decode", "0x1_0000_0000"), "does not fit in 32 bits"),
        (("decode", "0x1_0000_0000_0000_0000"), "does not fit in 64 bits"),
        (("decode", "--uid", "1", "2"), "exactly 4 words"),
        (("decode", "--hvc-imm", "0x10000"), "16 bits"),
        (("decode",), "at least one VALUE"),
        (("identify", "--persona", "nope"), "invalid choice"),
        (("call",), "FUNCTION_ID"),
        (("call", "0x1_0000_0000"), "32 bits"),
        (("call", "0x8600ff01", "--hvc-imm", "0x10000"), "16 bits"),
        (("frobnicate",), "invalid choice"),
    ],
)
def test_bad_input_one_line_exit_2(args: tuple[str, ...], fragment: str) -> None:
    assert_usage_error(gunyah(*args), fragment)


def test_help_everywhere() -> None:
    for cmd in ("identify", "call", "decode", "personas", "run"):
        p = gunyah(cmd, "--help")
        assert p.returncode == 0 and "--json" in p.stdout


def test_run_json(guests: dict[str, Path]) -> None:
    p = gunyah("run", str(guests["semihosting"]), "--json")
    assert p.returncode == 7, p.stderr
    d = json.loads(p.stdout)
    assert set(d) == {"exit_status", "stopped_by", "fault", "output", "calls", "calls_dropped",
                      "output_dropped"}  # fmt: skip
    assert d["calls_dropped"] == d["output_dropped"] == 0
    assert (d["exit_status"], d["stopped_by"], d["fault"]) == (7, "semihosting-exit", None)
    assert d["output"].startswith("A\nhello\n")


def test_run_trace_text(guests: dict[str, Path]) -> None:
    p = gunyah("run", str(guests["foreign"]), "--trace")
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert len(lines) == 2
    assert " hvc #0x0 x0=0x8600ff01 " in lines[0]
    assert "hypervisor_identify -> 0x5100000000008001" in lines[1]


def test_run_persona_changes_exit(guests: dict[str, Path]) -> None:
    assert gunyah("run", str(guests["foreign"]), "--persona", "kvm").returncode == 1


def test_run_fault_report(guests: dict[str, Path]) -> None:
    p = gunyah("run", str(guests["faults"]), "--max-instructions", "100000")
    # mode 0 (X0 = 0 at entry): a read of unmapped memory
    assert p.returncode == 125
    assert "Traceback" not in p.stderr
    assert "unmapped-read" in p.stderr and "0x10" in p.stderr
    assert "x0=0x8600ff01" in p.stderr  # the last trapped call


def test_run_fault_json(guests: dict[str, Path]) -> None:
    p = gunyah("run", str(guests["faults"]), "--json")
    d = json.loads(p.stdout)
    assert p.returncode == 125
    assert d["stopped_by"] == "fault"
    assert d["fault"]["kind"] == "unmapped-read" and d["fault"]["address"] == 0x10


def test_run_raw(tmp_path: Path) -> None:
    p = tmp_path / "g.bin"
    p.write_bytes(bytes.fromhex("a00080d2000020d4"))  # mov x0, #5; brk #0
    r = gunyah("run", str(p), "--raw", "0x40000")
    assert (r.returncode, r.stderr) == (5, "")  # the guest's status, not a usage error


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("run", "/nonexistent/guest"), "cannot read"),
        (("run", "--max-instructions", "0", "x"), "must be from 1 to"),
        (("run", "--timeout", "soon", "x"), "not a number of seconds"),
        (("run", "--raw", "zz", "x"), "not a number"),
    ],
)
def test_run_bad_usage(args: tuple[str, ...], fragment: str) -> None:
    assert_usage_error(gunyah(*args), fragment)


def test_run_not_an_elf(tmp_path: Path) -> None:
    p = tmp_path / "notes.txt"
    p.write_text("hello")
    assert_usage_error(gunyah("run", str(p)), f"{p}: not an ELF file")


@given(st.text(max_size=30))
def test_number_parser_accepts_or_refuses_cleanly(text: str) -> None:
    parse = cli.number(64)
    try:
        value = parse(text)
    except argparse.ArgumentTypeError as e:
        assert str(e)
    else:
        assert 0 <= value < 1 << 64


def test_commands_that_need_no_cpu_do_not_load_it() -> None:
    """decode, trace and probe start without the CPU emulator (tens of ms)."""
    code = "import sys, gunyah.cli; gunyah.cli.build_parser(); print('unicorn' in sys.modules)"
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert p.stdout.strip() == "False"


def test_identify_and_conformance_take_a_reference_driver() -> None:
    rc, d = gunyah_json("identify", "--persona", "qualcomm", "--reference", "seed-v8")
    assert (rc, d["verdict"], d["reference"]) == (0, "supported", "seed-v8")
    p = gunyah("identify", "--vcpu", "--reference", "seed-v8")
    assert p.returncode == 2 and "built-in guest" in p.stderr
    # our own drivers follow the Linux driver's final form: judged by the seed's
    # v8, they fail exactly the row where the two differ
    rc, d = gunyah_json("conformance", "--reference", "seed-v8")
    assert rc == 1 and d["reference"]["name"] == "seed-v8"
    assert {(r["guest"], r["persona"]) for r in d["rows"] if not r["passed"]} == {
        ("python", "qualcomm"), ("builtin-aarch64", "qualcomm")}  # fmt: skip
    assert all(r["reference"] == "seed-v8" for r in d["rows"])
