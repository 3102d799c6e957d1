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

# A line as posted in each signature's threads (or, for the catch-all RM line, as
# the driver's format prints it), and the signature it is.
POSTED = [
    ("[  101.2] gunyah_rsc_mgr hypervisor:qcom,resource-manager-rpc@0: RM rejected message "
     "56000004. Error: 2", "rm-rejected"),
    ("[ 8846.526582] misc gunyah: Failed to allocate parcel for DTB: -12", "dtb-parcel-enomem"),
    ("[ 8846.526811] gunyah_rsc_mgr hypervisor:qcom,resource-manager-rpc@940e2b5e1215cfb9: "
     "RM rejected message 51000015. Error: 7", "reclaim-of-unmade-parcel"),
    ("[ 8846.526815] misc gunyah: Failed to reclaim parcel: -22", "reclaim-of-unmade-parcel"),
    ("[ 8846.526819] misc gunyah: Failed to reclaim firmware parcel: -22",
     "reclaim-of-unmade-parcel"),
    ("    Invalid argument (os error 22)", "create-vm-einval"),
    ("cat: /dev/gunyah: Invalid argument", "create-vm-einval"),
    ("    failed to initialize virtual machine Out of memory (os error 12)",
     "crosvm-enomem-mlock"),
    ("  - Failed to map guest address: GUNYAH_ERROR_NOMEM (10)", "hyp-nomem-after-teardown"),
    ("  - Gunyah page fault, attempt=-12", "hyp-nomem-after-teardown"),
    ("  - Failed to provide folio: -12", "hyp-nomem-after-teardown"),
    ("[  489.725842] gunyah_vm_mgr: Failed to map guest address 0x00000000d4551000: 10",
     "hyp-nomem-after-teardown"),
    ("[  489.725860] gunyah_vm_mgr: Failed to provide folio for guest addr: "
     "00000000d4551000: -12", "hyp-nomem-after-teardown"),
    ("Gunyah failed to reclaim gunyah_address_range", "balloon-reclaim-ebusy"),
    ("[    0.412005] kvm [1]: HYP mode not available", "kvm-not-available"),
]  # fmt: skip

# The FAQ's dmesg after crosvm's "Out of memory (os error 12)", in its order.
FAQ_DMESG = [
    "[ 8846.526582] misc gunyah: Failed to allocate parcel for DTB: -12",
    "[ 8846.526811] gunyah_rsc_mgr hypervisor:qcom,resource-manager-rpc@940e2b5e1215cfb9: "
    "RM rejected message 51000015. Error: 7",
    "[ 8846.526815] misc gunyah: Failed to reclaim parcel: -22",
    "[ 8846.526819] misc gunyah: Failed to reclaim firmware parcel: -22",
]


def test_every_signature_is_declared_whole_and_cites_a_public_thread() -> None:
    sigs = triage.signatures()
    assert len({s.id for s in sigs}) == len(sigs)
    for s in sigs:
        assert s.title and s.cause and s.fix and s.sources, s.id
        assert all(re.match(r"https://github\.com/[\w.-]+/[\w.-]+", u) for u in s.sources), s.id
    assert {sig for _, sig in POSTED} == {s.id for s in sigs}  # each has a posted line


def test_every_signature_records_what_its_sources_say() -> None:
    """Each entry says what its cited threads and code say, in a sentence of its
    own, so that its meaning and fix can be checked against them."""
    for s in triage.signatures():
        assert len(s.source_says) > 80, s.id
        assert s.source_says not in (s.cause, s.fix), s.id


def test_entries_that_follow_from_another_say_so() -> None:
    """The reclaim of a parcel never made, and the VMM's ENOMEM, follow from the
    failed DTB share (the FAQ's sequence); what an entry follows from exists,
    is another entry, and nothing follows from itself round a loop."""
    sigs = triage.by_id()
    assert sigs["reclaim-of-unmade-parcel"].follows_from == ("dtb-parcel-enomem",)
    assert sigs["crosvm-enomem-mlock"].follows_from == ("dtb-parcel-enomem",)
    for s in sigs.values():
        assert set(s.follows_from) <= set(sigs) - {s.id}, s.id
        seen, todo = set(), list(s.follows_from)
        while todo:
            root = todo.pop()
            assert root != s.id, f"{s.id} follows from itself"
            if root not in seen:
                seen.add(root)
                todo.extend(sigs[root].follows_from)
    for s in sigs.values():  # and each says which line to look for first
        for root in s.follows_from:
            text = s.cause + " " + s.fix
            assert sigs[root].pattern.search(text) or root in text, (s.id, root)


def test_the_dtb_parcel_entry_says_what_its_thread_and_the_driver_say() -> None:
    """The locked-memory limit (account_locked_vm, 64 KiB on Android), fixed
    with ulimit -l unlimited before the VMM starts: not "ask for less memory"."""
    s = triage.by_id()["dtb-parcel-enomem"]
    assert "account_locked_vm" in s.cause and "64 KiB" in s.cause
    assert "ulimit -l unlimited" in s.fix and "before" in s.fix
    assert "less" not in s.fix.lower()
    assert "https://github.com/polygraphene/gunyah-on-sd-guide#faq" in s.sources
    assert any("drivers/virt/gunyah/vm_mgr_mem.c" in u for u in s.sources)
    assert s.in_the_way


def test_the_faqs_dmesg_is_one_cause_and_what_follows_from_it() -> None:
    found = {f["id"]: f for f in triage.scan(FAQ_DMESG)}
    assert list(found) == ["dtb-parcel-enomem", "reclaim-of-unmade-parcel"]
    assert "follows" not in found["dtb-parcel-enomem"]
    assert found["reclaim-of-unmade-parcel"]["follows"] == "dtb-parcel-enomem"
    assert found["reclaim-of-unmade-parcel"]["decoded"]["error_name"] == "HANDLE_INVALID"
    (line,) = triage.in_the_way(list(found.values()))
    assert "ulimit -l unlimited" in line and "parcel it never made" in line
    # alone, the follow-on is still explained, and stands in nobody's way
    alone = triage.scan(FAQ_DMESG[1:])
    assert [f["id"] for f in alone] == ["reclaim-of-unmade-parcel"]
    assert "follows" not in alone[0] and triage.in_the_way(alone) == []


def test_the_catch_all_rm_line_leaves_the_reclaim_to_its_own_entry() -> None:
    assert [f["id"] for f in triage.explain("RM rejected message 51000015. Error: 7")] == [
        "reclaim-of-unmade-parcel"
    ]
    assert [f["id"] for f in triage.explain("RM rejected message 51000015. Error: 3")] == [
        "rm-rejected"
    ]
    assert [f["id"] for f in triage.explain("RM rejected message 51000013. Error: 7")] == [
        "rm-rejected"
    ]
    (f,) = triage.explain("RM rejected message 51000015. Error: 9999999999")  # not 32 bits
    assert f["id"] == "rm-rejected" and "decoded" not in f


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
        "3,402,9021,-;gh_rm: RM rejected message 56000004. Error: 2\n"
        "6,403,9022,-;something else entirely\n"
    )
    r = probe.probe(str(root))
    assert [k["id"] for k in r.known] == ["rm-rejected"]
    assert any("known problem" in e.meaning for e in r.evidence)
    assert any(w.startswith("the resource manager refused") for w in r.in_the_way)
    text = gunyah("probe", "--root", str(root)).stdout
    assert "Known problem: the resource manager refused" in text
    capture = tmp_path / "capture.tar.gz"
    assert gunyah("probe", "--root", str(root), "--capture", str(capture)).returncode == 0
    again = json.loads(gunyah("probe", "--root", str(capture), "--json").stdout)
    assert [k["id"] for k in again["known_problems"]] == ["rm-rejected"]  # the capture kept it


def _phone(tmp_path: Path, kmsg: list[str]) -> Path:
    root = tmp_path / "phone"
    (root / "proc").mkdir(parents=True)
    (root / "dev").mkdir()
    (root / "dev/kmsg").write_text("".join(f"3,{400 + i},9021,-;{x}\n" for i, x in enumerate(kmsg)))
    return root


def test_the_probes_readiness_line_says_the_fix_its_sources_give(tmp_path: Path) -> None:
    """Where readiness lists what stands in the way, a failure the log shows
    appears with its fix, once per cause: the FAQ's four lines are one line
    saying ulimit -l unlimited, and the reclaim that follows is named in it."""
    root = _phone(tmp_path, FAQ_DMESG)
    r = probe.probe(str(root))
    assert [k["id"] for k in r.known] == ["dtb-parcel-enomem", "reclaim-of-unmade-parcel"]
    ways = [w for w in r.in_the_way if "kernel log shows it" in w]
    assert len(ways) == 1 and "ulimit -l unlimited" in ways[0]
    assert "parcel it never made" in ways[0]
    text = gunyah("probe", "--root", str(root)).stdout
    assert "in the way: the VMM's locked-memory limit is too small" in text
    assert "follows from: dtb-parcel-enomem" in text
    data = json.loads(gunyah("probe", "--root", str(root), "--json").stdout)
    assert any("ulimit -l unlimited" in w for w in data["in_the_way"])
    assert data["known_problems"][1]["follows"] == "dtb-parcel-enomem"


def test_a_line_normal_under_gunyah_stands_in_nobodys_way(tmp_path: Path) -> None:
    """KVM's "HYP mode not available" is what every Gunyah primary VM logs: the
    probe names it, and readiness does not count it against VMs."""
    r = probe.probe(str(_phone(tmp_path, ["kvm [1]: HYP mode not available"])))
    assert [k["id"] for k in r.known] == ["kvm-not-available"]
    assert not any("kernel log shows it" in w for w in r.in_the_way)


def test_gunyah_explain_says_what_the_sources_say_and_what_a_line_follows() -> None:
    p = gunyah("explain", "-", stdin="\n".join(FAQ_DMESG) + "\n")
    assert p.returncode == 0
    assert "ulimit -l unlimited" in p.stdout and "account_locked_vm" in p.stdout
    assert "sources say:" in p.stdout
    assert "after: dtb-parcel-enomem" in p.stdout


@given(st.lists(st.one_of(st.sampled_from([line for line, _ in POSTED]), st.text(max_size=200)),
                max_size=30))  # fmt: skip
def test_any_log_gives_one_readiness_line_per_cause(lines: list[str]) -> None:
    found = triage.scan(lines)
    ids = {f["id"] for f in found}
    assert len(ids) == len(found)
    for f in found:
        if "follows" in f:
            assert f["follows"] in ids and f["follows"] in f["follows_from"]
    ways = triage.in_the_way(found)
    roots = [f for f in found if "follows" not in f]
    assert len(ways) <= len(roots)
    assert all(any(w.startswith(f["title"]) for f in roots) for w in ways)
