"""The conformance matrix: all green for a correct guest, and each deliberate
mistake caught on exactly the personas where it shows."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah

from gunyah import conformance
from gunyah.model import PERSONAS

GUNYAH_UID_PERSONAS = {
    "gunyah", "gunyah-qemu", "gunyah-qemu-lost-exit", "qualcomm", "gunyah-variant-h",
    "unknown-variant", "api-v2",
    "api-version-bit13", "big-endian", "api-32bit", "dirty-upper", "future-flags",
    "api-reserved-bits",
}  # fmt: skip
MISTAKES = {
    "mistakes/correct": set(),
    "mistakes/no_truncation": GUNYAH_UID_PERSONAS - {"qualcomm"},
    "mistakes/full_x0": {"dirty-upper"},
    "mistakes/legacy_uid": (GUNYAH_UID_PERSONAS - {"qualcomm"}) | {"legacy-uid-order"},
    "mistakes/ignore_version": {"api-v2", "api-version-bit13"},
    "mistakes/ignore_endianness": {"big-endian"},
}


def matrix(*args: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    p = gunyah("conformance", *args, "--json")
    assert "Traceback" not in p.stderr
    return p.returncode, json.loads(p.stdout)


def test_builtin_guests_all_green() -> None:
    rc, d = matrix()
    assert rc == 0 and d["passed"] and d["failed"] == 0
    assert d["total"] == 2 * len(PERSONAS)
    assert {r["guest"] for r in d["rows"]} == {"python", "builtin-aarch64"}


def test_builtin_guests_over_smc() -> None:
    rc, d = matrix("--smc")
    assert rc == 0
    assert all(c["conduit"] == "smc" for r in d["rows"] for c in r["calls"])


@pytest.mark.parametrize("guest", sorted(MISTAKES))
def test_each_mistake_fails_exactly_where_it_shows(guests: dict[str, Path], guest: str) -> None:
    rc, d = matrix(str(guests[guest]))
    failed = {r["persona"] for r in d["rows"] if not r["passed"]}
    assert failed == MISTAKES[guest]
    assert rc == (1 if failed else 0)
    for r in d["rows"]:
        if not r["passed"]:
            assert r["calls"], "a failing row shows the calls behind it"


def test_full_x0_failure_points_at_the_uid_call(guests: dict[str, Path]) -> None:
    rc, d = matrix(str(guests["mistakes/full_x0"]), "--persona", "dirty-upper")
    (row,) = d["rows"]
    assert (row["expected"], row["observed"]) == ("supported", "not-gunyah")
    (call,) = row["calls"]
    assert call["function_id"] == 0x8600FF01
    assert call["results"][0] >> 32 == 0xDEADBEEF


def test_text_table_marks_failures(guests: dict[str, Path]) -> None:
    p = gunyah("conformance", str(guests["mistakes/ignore_endianness"]))
    assert p.returncode == 1
    lines = p.stdout.splitlines()
    fail = [line for line in lines if line.rstrip().endswith("FAIL")]
    assert len(fail) == 1 and "big-endian" in fail[0]
    assert "x0=0xc6008000 hypervisor_identify -> 0x510000000000c001" in p.stdout
    assert lines[-1] == f"{len(PERSONAS) - 1} passed, 1 failed"
    # the reference the rows were judged by, then every row's columns line up
    assert lines[0].startswith("expected verdicts: linux, the Linux driver's final form")
    header = lines[1]
    assert all(line.index("  ") <= header.index("persona") for line in lines[2:4])


def test_guest_that_faults_is_a_failure(guests: dict[str, Path]) -> None:
    rc, d = matrix(str(guests["faults"]), "--persona", "gunyah")
    (row,) = d["rows"]
    assert rc == 1 and not row["passed"]
    assert row["observed"].startswith("fault: unmapped-read")


def test_guest_with_other_exit_status(guests: dict[str, Path]) -> None:
    rc, d = matrix(str(guests["semihosting"]), "--persona", "kvm")
    assert rc == 1 and d["rows"][0]["observed"].startswith("exit status 7")


def test_persona_selection_and_bad_usage(tmp_path: Path) -> None:
    rc, d = matrix("--persona", "kvm", "--persona", "none", "--persona", "kvm")
    assert [r["persona"] for r in d["rows"]] == ["kvm", "none", "kvm", "none"]
    assert_usage_error(gunyah("conformance", "--persona", "hyper-v"), "invalid choice")
    bad = tmp_path / "x.txt"
    bad.write_text("no")
    assert_usage_error(gunyah("conformance", str(bad)), "not an ELF")


def test_library_matrix() -> None:
    m = conformance.Matrix(tuple(conformance.check_python(PERSONAS)))
    assert m.passed and len(m.rows) == len(PERSONAS)


def test_an_exit_status_past_255_is_not_a_verdict(guests: dict[str, Path]) -> None:
    """0x100 would read as 0 (supported) modulo 256: the whole status is kept."""
    elf = str(guests["exit_0x100"])
    rc, d = matrix(elf, "--persona", "gunyah")
    assert rc == 1 and d["failed"] == 1
    assert d["rows"][0]["observed"].startswith("exit status 256 ")
    assert d["rows"][0]["calls"], "the calls behind the failure are shown"
    p = gunyah("run", elf)
    assert p.returncode == 125
    assert "exit status 0x100 is not a process exit status" in p.stderr


def test_a_failing_row_of_the_python_driver_renders_with_its_calls() -> None:
    """Its calls have no guest PC: text and JSON still show them."""
    import dataclasses

    from gunyah import render
    from gunyah.model import get_persona

    wrong = dataclasses.replace(get_persona("kvm"), expected_verdict="supported")
    m = conformance.Matrix(tuple(conformance.check_python([wrong])))
    d = m.to_dict()
    assert not m.passed and d["rows"][0]["calls"][0]["pc"] is None
    text = render.matrix(d)
    assert "python  kvm      supported  not-gunyah  FAIL" in text
    assert "      (python) hvc #0x0 x0=0x8600ff01 VENDOR_HYP_CALL_UID -> 0xb66fb428" in text
    json.dumps(d)


def test_junit_report_of_the_unicorn_matrix(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    from cli_helpers import gunyah

    from gunyah.model import PERSONAS

    out = tmp_path / "m.xml"
    p = gunyah("conformance", "--junit", str(out))
    assert p.returncode == 0, p.stderr
    cases = ET.parse(out).getroot().findall("testsuite/testcase")
    assert len(cases) == 2 * len(PERSONAS)
    assert {c.get("classname") for c in cases} == {"conformance.python",
                                                   "conformance.builtin-aarch64"}  # fmt: skip
    assert all(c.find("failure") is None for c in cases)
    again = gunyah("conformance", "--junit", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
