"""The collector: the POSIX sh script that gathers what the probe reads where
there is no Python, run here by a real shell (dash, as root and as nobody),
through `gunyah probe --adb` with a stand-in adb, and read back; its output
is untrusted like any capture. (In `gunyah boot --capture-probe` the guest's
init runs it under busybox: test_boot.py.)"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
from cli_helpers import COMMAND, assert_usage_error, gunyah
from hypothesis import given
from hypothesis import strategies as st

from gunyah import probe
from gunyah.probe import collector

SH = shutil.which("sh") or "/bin/sh"


def collect(tmp_path: Path, *wrapper: str, tmpdir: str | None = None) -> Path:
    """What the collector `probe --collector` prints writes, run as `sh -s`."""
    out = tmp_path / "out.txt"
    with out.open("wb") as f:
        script = gunyah("probe", "--collector").stdout.encode()
        p = subprocess.run([*wrapper, SH, "-s"], input=script, stdout=f, stderr=subprocess.PIPE,
                           env={"PATH": os.environ["PATH"], "TMPDIR": tmpdir or str(tmp_path)},
                           timeout=120)  # fmt: skip
    assert p.returncode == 0, p.stderr
    return out


def test_the_collector_gathers_what_the_probe_reads_here(tmp_path: Path) -> None:
    out = collect(tmp_path)
    assert list(tmp_path.glob("gunyah-probe.*")) == []  # it leaves nothing behind
    here, there = probe.probe("/"), probe.probe(str(out))
    assert there.verdict == here.verdict and there.hypervisors == here.hypervisors
    assert there.detect_virt == here.detect_virt
    shown = {e.source for e in there.evidence}
    for path in ("/proc/cpuinfo", "/dev/kvm"):  # read as probe reads them, nodes described
        assert (path in shown) == (path in {e.source for e in here.evidence})
    text = gunyah("probe", "--root", str(out)).stdout
    assert text.startswith("Verdict: " + here.verdict)


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root")
def test_without_root_it_takes_what_it_may_and_says_what_not(tmp_path: Path) -> None:
    nobody = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
    out = collect(tmp_path, *nobody, tmpdir="/tmp")
    tar = collector.unpack(out.read_bytes())
    with tarfile.open(fileobj=io.BytesIO(tar)) as t:
        member = t.extractfile("./gunyah-probe-capture.json")
        assert member is not None
        notes = json.loads(member.read())
    log_closed = subprocess.run([*nobody, "dmesg"], capture_output=True).returncode != 0
    assert ("var/log/dmesg" in notes["unreadable"]) == log_closed
    assert probe.probe(str(out)).verdict == probe.probe("/").verdict
    if os.path.exists("/dev/kvm"):  # nobody is neither its owner nor in its group
        others = os.stat("/dev/kvm").st_mode & 0o006 == 0o006
        assert notes["access"]["dev/kvm"] is others


def stand_in_adb(tmp_path: Path) -> tuple[dict[str, str], Path, Path]:
    """A stand-in adb that runs `exec-out`'s command in a local shell, and
    logs its arguments: the environment to run gunyah with, the log, and
    the stand-in itself."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "adb-args"
    (bin_dir / "adb").write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > {log}\nfor last; do :; done\nexec {SH} -c "$last"\n'
    )
    (bin_dir / "adb").chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TMPDIR": str(tmp_path)}
    return env, log, bin_dir / "adb"


def test_probe_over_adb_with_a_stand_in_adb(tmp_path: Path) -> None:
    """The real collector, sent as --adb sends it, run on this machine."""
    env, log, adb = stand_in_adb(tmp_path)
    p = subprocess.run([*gunyah_cmd(), "probe", "--adb", "R5CX123", "--json"],
                       capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
    assert p.returncode in (0, 1), p.stderr
    d = json.loads(p.stdout)
    assert d["verdict"] == probe.probe("/").verdict
    args = log.read_text().splitlines()
    assert args[:3] == ["-s", "R5CX123", "exec-out"] and "base64 -d | sh -s" in args[3]
    adb.write_text("#!/bin/sh\necho 'error: device unauthorized' >&2\nexit 1\n")
    p = subprocess.run([*gunyah_cmd(), "probe", "--adb"], capture_output=True, text=True,
                       env=env, timeout=60)  # fmt: skip
    assert p.returncode == 2 and "adb failed: error: device unauthorized" in p.stderr


def gunyah_cmd() -> list[str]:
    return list(COMMAND)


def test_probe_over_adb_without_adb(tmp_path: Path) -> None:
    env_path = str(tmp_path)  # nothing there
    p = subprocess.run([*gunyah_cmd(), "probe", "--adb"], capture_output=True, text=True,
                       env={"PATH": env_path}, timeout=60)  # fmt: skip
    assert p.returncode == 2 and "adb is not on PATH" in p.stderr
    assert_usage_error(gunyah("probe", "--adb", "--root", "/tmp"), "cannot go with --root")


@given(st.binary(max_size=2000), st.binary(max_size=300))
def test_any_output_unpacks_or_is_refused_in_one_line(junk: bytes, inside: bytes) -> None:
    for text in (junk, b"gunyah-capture: begin\n" + junk + b"\ngunyah-capture: end\n",
                 b"x\ngunyah-capture: begin\n" + base64.b64encode(inside)
                 + b"\ngunyah-capture: end\n"):  # fmt: skip
        try:
            assert isinstance(collector.unpack(text), bytes)
        except collector.CollectorError as e:
            assert "\n" not in str(e)


def test_a_damaged_collector_output_is_refused_in_one_line(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    out.write_text("gunyah-capture: begin\n!!not base64!!\ngunyah-capture: end\n")
    assert_usage_error(gunyah("probe", "--root", str(out)), "not valid base64")
    out.write_text("gunyah-capture: begin\n" + base64.b64encode(b"\x1f\x8bjunk").decode()
                   + "\ngunyah-capture: end\n")  # fmt: skip
    assert_usage_error(gunyah("probe", "--root", str(out)), "not valid gzip")
    out.write_text("gunyah-capture: begin\n" + base64.b64encode(b"not a tar").decode()
                   + "\ngunyah-capture: end\n")  # fmt: skip
    assert_usage_error(gunyah("probe", "--root", str(out)),
                       f"{out} (the collector's capture): not a probe capture")  # fmt: skip


def test_described_nodes_are_checked_like_the_rest(tmp_path: Path) -> None:
    def capture(notes: object) -> Path:
        path = tmp_path / f"c{len(list(tmp_path.iterdir()))}.tar"
        with tarfile.open(path, "w") as t:
            blob = json.dumps(notes).encode()
            info = tarfile.TarInfo("./gunyah-probe-capture.json")
            info.size = len(blob)
            t.addfile(info, io.BytesIO(blob))
        return path

    node = {"kind": "char", "mode": "660", "uid": 0, "gid": 1000}
    good = capture({"nodes": {"dev/gunyah": node}, "access": {"dev/gunyah": False}})
    r = probe.probe(str(good))
    assert r.nodes["dev/gunyah"].mode == 0o660 and r.verdict == "gunyah-host"
    for bad in ({"nodes": {"dev/gunyah": {"kind": "char", "mode": "9z", "uid": 0, "gid": 0}}},
                {"nodes": {"dev/x": {"kind": "weird", "mode": "1", "uid": 0, "gid": 0}}},
                {"nodes": []}):  # fmt: skip
        with pytest.raises(ValueError, match="not a probe capture"):
            probe.probe(str(capture(bad)))
