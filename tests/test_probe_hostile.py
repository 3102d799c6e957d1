"""The probe on trees and captures made to fool it or to leak what is outside them."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah, run_measured
from test_hostile import MEMORY_CEILING_MIB
from test_probe import ARM_CPUINFO, LINUX_GUEST, X86_SERVER, tree

from gunyah import probe

SECRET = "root:$6$do-not-leak$"
X86_VM_CPUINFO = "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu vme hypervisor\n"
B = "Running under Gunyah hypervisor 51/v1"
OOM = (
    "6,5012,912345678,-;Out of memory: Killed process 4242 (gunyah) total-vm:4500000kB, "
    "anon-rss:4400000kB\n"
)


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the probed root that must never be read."""
    secret = tmp_path / "outside" / "shadow"
    secret.parent.mkdir()
    secret.write_text(SECRET + "\n")
    return secret


def leaked(p: object, *texts: str) -> bool:
    return any(SECRET in t or "do-not-leak" in t for t in texts)


@pytest.mark.parametrize("how", ["absolute", "relative", "dir-absolute", "dir-relative"])
def test_links_never_leave_the_root(tmp_path: Path, outside: Path, how: str) -> None:
    root = tree(tmp_path / "root", LINUX_GUEST)
    target = root / "proc/sys/kernel/osrelease"
    target.unlink()
    if how == "absolute":
        target.symlink_to(outside)
    elif how == "relative":
        target.symlink_to(os.path.relpath(outside, target.parent))
    else:  # the directory holding the file is a link out of the root
        (root / "proc/sys/kernel").rename(root / "proc/sys/kernel-real")
        d = outside.parent
        link = d if how == "dir-absolute" else os.path.relpath(d, root / "proc/sys")
        (root / "proc/sys/kernel").symlink_to(link)
        (outside.parent / "osrelease").write_text(SECRET + "\n")
    capture = tmp_path / "c.tar.gz"
    p = gunyah("probe", "--root", str(root), "--capture", str(capture))
    assert p.returncode == 0, p.stderr
    q = gunyah("probe", "--root", str(root), "--json")
    assert not leaked(p, p.stdout, p.stderr, q.stdout)
    assert SECRET.encode() not in gzip.decompress(capture.read_bytes())
    assert json.loads(q.stdout)["verdict"] == "gunyah-guest"  # the rest is still read


def test_links_inside_the_root_are_followed_inside_it(tmp_path: Path, outside: Path) -> None:
    """An absolute link means the root's own `/`, as it does for the system itself."""
    root = tree(tmp_path / "root", {**LINUX_GUEST, "etc/release": "6.9.0-inside\n"})
    (root / "proc/sys/kernel/osrelease").unlink()
    (root / "proc/sys/kernel/osrelease").symlink_to("/etc/release")
    (root / "proc/device-tree").rename(root / "dt")
    (root / "proc/device-tree").symlink_to("../../../dt")  # `..` stops at the root
    r = probe.probe(str(root))
    assert any(e.value == "6.9.0-inside" for e in r.evidence)
    assert r.verdict == "gunyah-guest"


def test_loops_fifos_and_devices_never_block(tmp_path: Path) -> None:
    root = tree(tmp_path / "root", LINUX_GUEST)
    (root / "dev").symlink_to("/dev")  # resolves to itself inside the root: a loop
    (root / "proc/cpuinfo").unlink()
    os.mkfifo(root / "proc/cpuinfo")
    (root / "var/log/dmesg").parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(root / "var/log/dmesg")
    p = gunyah("probe", "--root", str(root), "--json", timeout=60)
    assert p.returncode == 0, p.stderr
    ev = {(e["source"], e["status"]): e["meaning"] for e in json.loads(p.stdout)["evidence"]}
    assert "fifo" in ev[("/proc/cpuinfo", "unreadable")]
    assert "fifo" in ev[("/var/log/dmesg", "unreadable")]
    assert "links" in ev[("/dev/kmsg", "unreadable")]


@pytest.mark.parametrize("spelling", ["/.", "//", "/proc/.."])
def test_other_spellings_of_slash_do_not_block(spelling: str) -> None:
    p = gunyah("probe", "--root", spelling, "--json", timeout=60)
    assert p.returncode in (0, 1), p.stderr
    slash = json.loads(gunyah("probe", "--json").stdout)
    assert json.loads(p.stdout)["verdict"] == slash["verdict"]


def test_a_process_named_gunyah_is_not_evidence(tmp_path: Path) -> None:
    """The kernel log names processes (OOM, hung tasks, segfaults): never evidence."""
    files = {
        **X86_SERVER,
        "proc/cpuinfo": X86_VM_CPUINFO,
        "dev/kmsg": OOM + "6,5013,912345679,-;Hypervisor detected: KVM\n",
        "var/log/kern.log": "Nov 25 21:00:00 vm kernel: [ 12.5] gunyah[4242]: segfault at 0\n",
        "var/log/messages": "Nov 25 21:00:01 vm sshd[77]: user ran /usr/bin/gunyah probe\n",
    }
    r = probe.probe(str(tree(tmp_path, files)))
    assert r.verdict == "other-hypervisor"
    assert r.hypervisors == ["KVM"]
    assert r.summary.endswith("not Gunyah: KVM")
    assert not any(e.supports in probe.GUNYAH_VERDICTS for e in r.evidence)


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("var/log/messages", f"Nov 25 21:00:01 vm alice: {B}"),
        ("var/log/messages", f"Nov 25 21:00:01 vm kernel-helper: {B}"),
        ("dev/kmsg", f"14,77,100,-;{B}"),  # facility user: what user space may write
        ("var/log/dmesg", f"{B} (said a script)"),
        ("var/log/kern.log", f"Nov 25 21:00:01 vm kernel: note: {B}"),
    ],
)
def test_only_kernel_records_of_the_driver_count(tmp_path: Path, path: str, line: str) -> None:
    files = {"proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"), path: line + "\n"}
    r = probe.probe(str(tree(tmp_path, files)))
    assert r.verdict == "no-evidence", [e for e in r.evidence if e.supports]


@pytest.mark.parametrize(
    ("path", "line"),
    [
        ("var/log/kern.log", f"Nov 25 21:00:01 vm kernel: [    0.01] {B}"),
        ("var/log/messages", f"2026-11-25T21:00:01.5+00:00 vm kernel: {B}"),
        ("dev/kmsg", f"6,77,100,-;gunyah: {B}"),
        ("var/log/dmesg", f"[    0.010000] {B}"),
    ],
)
def test_the_banner_in_each_log_format(tmp_path: Path, path: str, line: str) -> None:
    files = {"proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"), path: line + "\n"}
    r = probe.probe(str(tree(tmp_path, files)))
    assert (r.verdict, r.variant, r.api_version) == ("gunyah-guest", 0x51, 1)


def test_x86_outranks_a_gunyah_banner(tmp_path: Path) -> None:
    files = {
        **X86_SERVER,
        "var/log/kern.log": f"Nov 25 vm kernel: {B}\n",
    }
    r = probe.probe(str(tree(tmp_path, files)))
    assert r.verdict == "no-evidence"
    assert any("runs only on arm64" in e.meaning for e in r.evidence)


def test_arm64_kvm_guest_named_by_the_kernel(tmp_path: Path) -> None:
    line = "6,300,1000,-;smccc: KVM: hypervisor services detected (0x00000000 0x00000000 0x00000000 0x00000003)\n"  # noqa: E501
    files = {"proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"), "dev/kmsg": line}
    r = probe.probe(str(tree(tmp_path, files)))
    assert (r.verdict, r.hypervisors) == ("other-hypervisor", ["KVM"])


def test_banner_with_a_huge_number_is_not_a_banner(tmp_path: Path) -> None:
    files = {
        "proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"),
        "var/log/dmesg": "[ 0.1] Running under Gunyah hypervisor 51/v" + "9" * 100_000 + "\n",
    }
    p = gunyah("probe", "--root", str(tree(tmp_path, files)), "--json")
    assert p.returncode == 1 and p.stderr == ""
    assert json.loads(p.stdout)["verdict"] == "no-evidence"


def test_escape_sequences_are_not_sent_to_the_terminal(tmp_path: Path) -> None:
    files = {**LINUX_GUEST, "proc/sys/kernel/osrelease": "6.1\x1b]0;pwned\x07\x1b[2J\u202e\n"}
    root = tree(tmp_path, files)
    (root / "proc/device-tree/hypervisor/evil\x1b[31m").mkdir()
    (root / "proc/device-tree/hypervisor/evil\x1b[31m/compatible").write_bytes(b"gunyah-x\0")
    p = gunyah("probe", "--root", str(root))
    assert p.returncode == 0
    assert "\x1b" not in p.stdout and "\x07" not in p.stdout and "\u202e" not in p.stdout
    assert "6.1\\x1b]0;pwned\\x07" in p.stdout
    assert "evil\\x1b[31m" in p.stdout


def test_capture_never_replaces_a_file(tmp_path: Path) -> None:
    root = tree(tmp_path / "root", LINUX_GUEST)
    existing = tmp_path / "report.tar.gz"
    existing.write_text("keep me")
    assert_usage_error(
        gunyah("probe", "--root", str(root), "--capture", str(existing)), "already exists"
    )
    assert existing.read_text() == "keep me"
    assert_usage_error(gunyah("probe", "--root", str(root), "--capture", ""), "needs a file name")
    assert_usage_error(gunyah("probe", "--root", ""), "--root needs")


# -- hostile captures ---------------------------------------------------------
def make_tar(path: Path, add: object) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        add(tar)  # type: ignore[operator]
    return path


def member(tar: tarfile.TarFile, name: str, data: bytes = b"", **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for k, v in kw.items():
        setattr(info, k, v)
    tar.addfile(info, io.BytesIO(data) if data else None)


def test_capture_links_are_not_followed(tmp_path: Path, outside: Path) -> None:
    def add(tar: tarfile.TarFile) -> None:
        member(tar, "proc/cpuinfo", ARM_CPUINFO.format(imp="0x41").encode())
        member(tar, "proc/sys/kernel/osrelease", type=tarfile.SYMTYPE, linkname=str(outside))
        member(tar, "proc/version", type=tarfile.LNKTYPE, linkname="../../" + str(outside))
        member(tar, "var/log/dmesg", type=tarfile.SYMTYPE, linkname="/nonexistent/../../x")

    c = make_tar(tmp_path / "c.tar.gz", add)
    p = gunyah("probe", "--root", str(c), "--json")
    assert p.returncode == 1 and p.stderr == "", p.stderr
    assert not leaked(p, p.stdout)
    ev = {e["source"]: e for e in json.loads(p.stdout)["evidence"]}
    assert ev["/proc/sys/kernel/osrelease"]["status"] == "unreadable"
    assert "link" in ev["/proc/sys/kernel/osrelease"]["meaning"]


def test_capture_with_an_oversized_member_is_refused_unread(tmp_path: Path) -> None:
    """A few KiB of gzip that would inflate to 64 MiB: refused from its header."""
    path = tmp_path / "bomb.tar.gz"
    with gzip.open(path, "wb") as f:
        info = tarfile.TarInfo("var/log/kern.log")
        info.size = 64 << 20
        f.write(info.tobuf())
        zeros = bytes(1 << 20)
        for _ in range(64):
            f.write(zeros)
    assert path.stat().st_size < 200_000
    rc, mib, err = run_measured("probe", "--root", str(path))
    assert rc == 2 and "more than a probe ever reads" in err, err
    assert mib < MEMORY_CEILING_MIB


@pytest.mark.parametrize(
    "meta",
    [b"[]", b'{"unreadable": 5}', b'{"access": {"dev/gunyah": "yes"}}', b"{" * 100_000, b"\xff"],
)
def test_capture_metadata_of_the_wrong_shape(tmp_path: Path, meta: bytes) -> None:
    c = make_tar(tmp_path / "c.tar.gz", lambda tar: member(tar, "gunyah-probe-capture.json", meta))
    assert_usage_error(gunyah("probe", "--root", str(c)), "not what --capture writes")


def test_corrupt_gzip_after_a_valid_header(tmp_path: Path) -> None:
    good = make_tar(tmp_path / "c.tar.gz", lambda tar: member(tar, "proc/version", b"x" * 5000))
    blob = good.read_bytes()
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(blob[:20] + bytes(b ^ 0x5A for b in blob[20:]))
    assert_usage_error(gunyah("probe", "--root", str(bad)), "capture")


def test_capture_with_many_entries_is_read_in_linear_time(tmp_path: Path) -> None:
    """Listing a directory of a capture does not scan every entry again."""

    def add(tar: tarfile.TarFile) -> None:
        for i in range(30_000):  # each bus listed once: 30k listings of 60k entries if scanned
            member(tar, f"sys/bus/b{i}/drivers/d", type=tarfile.DIRTYPE)

    c = make_tar(tmp_path / "many.tar.gz", add)
    rc, mib, err = run_measured("probe", "--root", str(c), "--json", timeout=60)
    assert rc == 1 and mib < MEMORY_CEILING_MIB, err


def test_capture_that_is_a_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "c.tar"
    os.mkfifo(fifo)
    assert_usage_error(gunyah("probe", "--root", str(fifo)), "not a directory or a capture")
