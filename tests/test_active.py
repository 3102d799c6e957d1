"""`gunyah probe --active`: the create-VM ioctl numbers as each driver
generation's header spells them, the program that asks them on the device,
what it prints read as untrusted text, and what the probe makes of it. On a
real kernel with a stand-in /dev/gunyah: test_boot.py."""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import platform
import shutil
import subprocess
import tarfile
from pathlib import Path

from cli_helpers import COMMAND, assert_usage_error, gunyah
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st
from test_collector import stand_in_adb
from test_probe import tree

from gunyah import probe
from gunyah.probe import active, collector
from gunyah.toolchain import ACTIVE_ELF, build_active

SH = shutil.which("sh") or "/bin/sh"


def _io(type_: int, nr: int) -> int:
    """asm-generic/ioctl.h's _IO: direction _IOC_NONE (0) at bit 30, size 0
    at bit 16, type at bit 8, number at bit 0."""
    return (0 << 30) | (type_ << 8) | (0 << 16) | nr


def test_the_create_vm_numbers_are_the_headers():
    # upstream-style series, include/uapi/linux/gunyah.h:
    #   #define GUNYAH_IOCTL_TYPE 'G' / GUNYAH_CREATE_VM _IO(GUNYAH_IOCTL_TYPE, 0x0)
    #   (earlier postings: GH_IOCTL_TYPE 'G', GH_CREATE_VM _IO(GH_IOCTL_TYPE, 0x0))
    # vendor, Android bionic's libc/kernel/uapi/linux/gunyah.h:
    #   #define GH_IOCTL_TYPE 0xB2 / GH_CREATE_VM _IO(GH_IOCTL_TYPE, 0x01)
    assert active.BY_ABI["upstream"].number == _io(ord("G"), 0x0) == 0x4700
    assert active.BY_ABI["vendor"].number == _io(0xB2, 0x01) == 0xB201
    assert active.BY_ABI["upstream"].name == "GUNYAH_CREATE_VM"
    assert active.BY_ABI["vendor"].name == "GH_CREATE_VM"


def test_the_shipped_program_is_built_from_the_table(tmp_path: Path):
    fresh = build_active(tmp_path / "active.elf")
    assert fresh.read_bytes() == ACTIVE_ELF.read_bytes(), \
        "active.elf is stale: run python -m gunyah.toolchain"  # fmt: skip
    with ACTIVE_ELF.open("rb") as f:
        elf = ELFFile(f)
        assert elf["e_machine"] == "EM_AARCH64" and elf["e_type"] == "ET_EXEC"
        assert not any(s["p_type"] == "PT_INTERP" for s in elf.iter_segments())  # static
        assert len(ACTIVE_ELF.read_bytes()) < 8192  # small enough to travel in adb's command


def _asked(abi: str, how: str) -> bytes:
    c = active.BY_ABI[abi]
    return f"gunyah-active: {abi} {c.number:#x} {how}\n".encode()


def test_answers_are_read_and_explained():
    out = b"gunyah-active: open ok\n" + _asked("upstream", "vm anon_inode:gunyah-vm") + \
        _asked("vendor", f"errno {errno.ENOTTY}")  # fmt: skip
    r = active.parse(out)
    assert r["opened"] is True and r["ignored"] == 0
    up, vendor = r["answers"]
    assert up["created"] is True and up["vm_fd"] == "anon_inode:gunyah-vm"
    assert vendor == {"abi": "vendor", "ioctl": "GH_CREATE_VM", "number": 0xB201,
                      "created": False, "errno": errno.ENOTTY, "errno_name": "ENOTTY",
                      "meaning": "does not speak this ABI"}  # fmt: skip
    assert active.summary(r) == ("active check: upstream GUNYAH_CREATE_VM (0x4700): created a "
                                 "VM; vendor GH_CREATE_VM (0xb201): ENOTTY")  # fmt: skip
    refused = active.parse(b"gunyah-active: open errno 13\n")
    assert refused["opened"] is False and refused["open_error"]["errno_name"] == "EACCES"
    assert active.summary(refused) == \
        "active check: /dev/gunyah is not open to this user: run as root"  # fmt: skip
    odd = active.parse(_asked("upstream", "answered 0"))
    assert odd["answers"][0]["created"] is False and odd["answers"][0]["returned"] == 0


def test_lines_not_the_programs_are_left_out():
    out = (b"gunyah-active: upstream 0xb201 vm x\n"  # a number not the upstream ABI's
           b"gunyah-active: kvm 0x4700 vm x\n"  # an ABI not in the table
           + _asked("upstream", "errno 22") + _asked("upstream", "vm forged")  # a second answer
           + b"gunyah-active: vendor 0xb201 vm two words\n")  # fmt: skip
    r = active.parse(out)
    assert [a["abi"] for a in r["answers"]] == ["upstream"] and r["ignored"] == 4
    assert r["answers"][0]["errno_name"] == "EINVAL"


@given(st.binary(max_size=6000))
def test_any_output_is_read_without_error_and_bounded(data: bytes):
    r = active.parse(data)
    assert len(r["answers"]) <= len(active.CREATE_VM)
    assert r["ignored"] <= active.MAX_OUTPUT
    json.dumps(r)
    active.summary(r)


def _probe_with(tmp_path: Path, output: bytes, **extra: str) -> dict:
    root = tree(tmp_path / "root", {active.RESULT_FILE: output, **extra})
    return probe.probe(str(root)).to_dict()


def test_the_probe_reports_a_vm_made_and_the_abi_to_speak(tmp_path: Path):
    d = _probe_with(tmp_path, b"gunyah-active: open ok\n" + _asked("vendor", "vm anon_inode:x")
                    + _asked("upstream", "errno 25"),  # fmt: skip
                    **{"proc/modules": "gunyah_rsc_mgr 16384 0 - Live 0x0\n"})
    assert d["verdict"] == "gunyah-host" and d["driver_generation"] == "vendor"
    assert d["active"]["answers"][0]["created"] is True
    assert any("vendor (GH_CREATE_VM) ioctl just now" in c for c in d["can_create"])
    meanings = [e["meaning"] for e in d["evidence"]]
    assert any("module names suggested the upstream drivers" in m for m in meanings)


def test_the_probe_says_what_stood_in_the_way(tmp_path: Path):
    d = _probe_with(tmp_path, b"gunyah-active: open ok\n" + _asked("upstream", "errno 22")
                    + _asked("vendor", "errno 25"))  # fmt: skip
    assert d["can_create"] == [] and d["verdict"] == "no-evidence"
    assert d["in_the_way"] and "created no VM with either ABI" in d["in_the_way"][0]
    assert "upstream EINVAL" in d["in_the_way"][0]
    d = _probe_with(tmp_path / "2", b"gunyah-active: open errno 2\n")
    assert d["in_the_way"] == ["the active check: there is no /dev/gunyah: no Gunyah VM "
                               "manager here"]  # fmt: skip


def test_a_capture_keeps_the_answers(tmp_path: Path):
    out = b"gunyah-active: open ok\n" + _asked("upstream", "vm anon_inode:gunyah-vm")
    root = tree(tmp_path / "root", {active.RESULT_FILE: out})
    cap = tmp_path / "cap.tar"
    probe.write_capture(probe.probe(str(root)), str(cap))
    assert probe.probe(str(cap)).active == active.parse(out)


def test_no_active_check_without_asking(tmp_path: Path):
    root = tree(tmp_path / "root", {"proc/cpuinfo": "CPU implementer\t: 0x51\n"})
    assert probe.probe(str(root)).to_dict()["active"] is None


def test_active_refusals(tmp_path: Path):
    assert_usage_error(gunyah("probe", "--active", "--root", str(tmp_path)),
                       "cannot go with --root")  # fmt: skip
    if platform.machine() not in ("aarch64", "arm64"):
        assert_usage_error(gunyah("probe", "--active"), "runs on the arm64 Linux system")


def _fake_program(body: str) -> str:
    """A stand-in for the active check's program this machine can run (the
    real one is AArch64): GUNYAH_ACTIVE's value for it."""
    return base64.b64encode(f"#!/bin/sh\n{body}\n".encode()).decode()


def _collected(tmp_path: Path, env_extra: dict[str, str]) -> tuple[dict, set[str], bytes]:
    out = tmp_path / "out.txt"
    env = {"PATH": os.environ["PATH"], "TMPDIR": str(tmp_path), **env_extra}
    with out.open("wb") as f:
        p = subprocess.run([SH, "-s"], input=collector.script().encode(), stdout=f,
                           stderr=subprocess.PIPE, env=env, timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    with tarfile.open(fileobj=io.BytesIO(collector.unpack(out.read_bytes()))) as t:
        names = set(t.getnames())
        notes = json.loads(t.extractfile("./gunyah-probe-capture.json").read())  # type: ignore[union-attr]
        member = t.extractfile("./" + active.RESULT_FILE) if "./" + active.RESULT_FILE in names \
            else None  # fmt: skip
        answers = member.read() if member else b""
    assert list(tmp_path.glob("gunyah-probe.*")) == []  # the program went with the rest
    return notes, names, answers


def test_the_collector_runs_the_program_only_when_given_it(tmp_path: Path):
    said = "gunyah-active: open ok\ngunyah-active: upstream 0x4700 errno 25"
    notes, names, answers = _collected(
        tmp_path, {"GUNYAH_ACTIVE": _fake_program(f"printf '{said}\\n'")})
    assert answers == said.encode() + b"\n"
    assert not any(n.endswith(".active") for n in names)
    (tmp_path / "2").mkdir()
    notes, names, answers = _collected(tmp_path / "2", {})
    assert "./" + active.RESULT_FILE not in names and not answers


def test_the_collector_says_when_the_program_did_not_run(tmp_path: Path):
    notes, _, _ = _collected(tmp_path, {"GUNYAH_ACTIVE": "bm90IGEgcHJvZ3JhbQ=="})
    assert "did not run" in notes["unreadable"][active.RESULT_FILE]
    (tmp_path / "2").mkdir()
    notes, _, _ = _collected(tmp_path / "2", {"GUNYAH_ACTIVE": "!!!"})
    assert "did not unpack" in notes["unreadable"][active.RESULT_FILE]


def test_over_adb_the_program_travels_in_the_command(tmp_path: Path):
    env, log, _ = stand_in_adb(tmp_path)
    taken = tmp_path / "taken.tar"
    taken.write_bytes(b"mine")
    p = subprocess.run([*COMMAND, "probe", "--adb", "--active", "--capture", str(taken)],
                       capture_output=True, text=True, env=env, timeout=60)  # fmt: skip
    assert p.returncode == 2 and "already exists" in p.stderr
    assert not log.exists()  # the device was asked nothing: no VM made for a refusal
    p = subprocess.run([*COMMAND, "probe", "--adb", "--active", "--json"],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert p.returncode in (0, 1), p.stderr
    command = log.read_text().splitlines()[-1]
    assert f"GUNYAH_ACTIVE={collector.active_helper()} sh -s" in command
    d = json.loads(p.stdout)
    if platform.machine() not in ("aarch64", "arm64"):  # the AArch64 program cannot run here
        assert d["active"] is None
        assert any("did not run" in e["meaning"] for e in d["evidence"]
                   if e["source"] == "/" + active.RESULT_FILE)  # fmt: skip


def test_here_the_program_runs_from_a_copy_it_may_execute(tmp_path: Path, monkeypatch):
    """On an arm64 board: what the program printed comes back, bounded, even
    where the install kept no execute bit (a shell script stands in for the
    AArch64 program this machine cannot run)."""
    script = tmp_path / "active.elf"
    script.write_text('#!/bin/sh\necho "gunyah-active: open ok $1"\nhead -c 9000 /dev/zero\n')
    script.chmod(0o644)
    monkeypatch.setattr(active, "helper_path", lambda: script)
    monkeypatch.setattr(active.platform, "machine", lambda: "aarch64")
    monkeypatch.setattr(active.platform, "system", lambda: "Linux")
    out = active.run_here("/dev/gunyah")
    assert out.startswith(b"gunyah-active: open ok /dev/gunyah\n")
    assert len(out) == active.MAX_OUTPUT
