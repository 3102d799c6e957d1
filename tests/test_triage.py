"""Known Gunyah failures: the catalogue against lines from the public threads
it cites, `gunyah explain`, and the probe showing what a system's log holds."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah, gunyah_json
from hypothesis import given
from hypothesis import strategies as st

from gunyah import probe, triage

# A line as posted in each signature's thread, and the signature it is.
POSTED = [
    ("[  101.2] gh_rm: RM rejected message 51000015. Error: 7", "rm-rejected"),
    ("[  88.1] gunyah_vm: Failed to allocate parcel for DTB: -12", "dtb-parcel-enomem"),
    ("    Invalid argument (os error 22)", "create-vm-einval"),
    ("cat: /dev/gunyah: Invalid argument", "create-vm-einval"),
    ("[2025-06-26T07:08:04Z ERROR crosvm] exiting with error 1: Out of memory (os error 12)",
     "crosvm-enomem-mlock"),
    ("  - Failed to map guest address: GUNYAH_ERROR_NOMEM (10)", "hyp-nomem-after-teardown"),
    ("Gunyah failed to reclaim gunyah_address_range", "hyp-nomem-after-teardown"),
    ("[    0.412005] kvm [1]: HYP mode not available", "kvm-not-available"),
]  # fmt: skip


def test_every_signature_is_declared_whole_and_cites_a_public_thread() -> None:
    sigs = triage.signatures()
    assert len({s.id for s in sigs}) == len(sigs)
    for s in sigs:
        assert s.title and s.cause and s.fix and s.sources, s.id
        assert all(re.match(r"https://github\.com/[\w.-]+/[\w.-]+", u) for u in s.sources), s.id
    assert {sig for _, sig in POSTED} == {s.id for s in sigs}  # each has a posted line


@pytest.mark.parametrize(("line", "sig"), POSTED)
def test_posted_lines_are_recognised(line: str, sig: str) -> None:
    assert [f["id"] for f in triage.explain(line)] == [sig]


def test_an_rm_line_is_decoded_from_the_rms_own_tables() -> None:
    (f,) = triage.explain("RM rejected message 51000015. Error: 7")
    assert (f["decoded"]["message"], f["decoded"]["error_name"]) == ("MEM_RECLAIM",
                                                                     "HANDLE_INVALID")
    (f,) = triage.explain("RM rejected message 56000004. Error: -1")
    assert (f["decoded"]["message"], f["decoded"]["error_name"]) == ("VM_START", "UNIMPLEMENTED")


def test_lines_of_healthy_systems_match_nothing() -> None:
    for line in ("gunyah: Running under Gunyah hypervisor 51/v1", "misc gunyah: VM manager ready",
                 "kvm [1]: Hyp mode initialized successfully", ""):  # fmt: skip
        assert triage.explain(line) == []


@given(st.text(max_size=10_000))
def test_any_text_is_explained_or_not_never_an_error(text: str) -> None:
    for f in triage.explain(text):
        assert f["matched"] in text[: triage.MAX_LINE]


def test_gunyah_explain() -> None:
    p = gunyah("explain", "[  101.2] gh_rm: RM rejected message 51000015. Error: 7")
    assert p.returncode == 0
    assert "MEM_RECLAIM" in p.stdout and "HANDLE_INVALID" in p.stdout
    assert "https://github.com/polygraphene/gunyah-on-sd-guide" in p.stdout
    code, d = gunyah_json("explain", "Invalid argument (os error 22)")
    assert code == 0 and d[0]["id"] == "create-vm-einval" and d[0]["errno"]["name"] == "EINVAL"
    posted = "crosvm started\nCaused by:\n    Invalid argument (os error 22)\n"
    p = gunyah("explain", "-", stdin=posted)
    assert p.returncode == 0 and "create-vm-einval" in p.stdout
    flood = "A" * (5 << 20) + "\nRM rejected message 56000024. Error: 4\n"  # one huge line
    p = gunyah("explain", "-", stdin=flood)
    assert p.returncode == 0 and "VM_GET_VMID" in p.stdout and len(p.stdout) < 20_000
    p = gunyah("explain", "all is well")
    assert p.returncode == 1 and "no known Gunyah failure" in p.stdout
    assert_usage_error(gunyah("explain"), "give a LINE")


def test_the_probe_names_the_known_problems_its_log_shows(tmp_path: Path) -> None:
    root = tmp_path / "phone"
    (root / "proc").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "dev/kmsg").write_text(
        "6,301,1021,-;gunyah: Running under Gunyah hypervisor 51/v1\n"
        "3,402,9021,-;gh_rm: RM rejected message 51000015. Error: 7\n"
        "6,403,9022,-;something else entirely\n"
    )
    r = probe.probe(str(root))
    assert [k["id"] for k in r.known] == ["rm-rejected"]
    assert any("known problem" in e.meaning for e in r.evidence)
    text = gunyah("probe", "--root", str(root)).stdout
    assert "Known problem: the resource manager refused" in text
    capture = tmp_path / "capture.tar.gz"
    assert gunyah("probe", "--root", str(root), "--capture", str(capture)).returncode == 0
    again = json.loads(gunyah("probe", "--root", str(capture), "--json").stdout)
    assert [k["id"] for k in again["known_problems"]] == ["rm-rejected"]  # the capture kept it
