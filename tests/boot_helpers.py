"""What the tests that boot a kernel share: running `gunyah boot` as a user
does, each test's boots in a TMPDIR of their own, and the check that no
QEMU of a test outlives it and nothing of it is left behind."""

from __future__ import annotations

import copy
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from cli_helpers import COMMAND

BOOT_TIMEOUT = 120

_TMP: list[Path] = []  # the current test's TMPDIR for the boots it starts


def run_boot(*args: str, timeout: float = BOOT_TIMEOUT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    return subprocess.run([*COMMAND, "boot", *args], capture_output=True, text=True,
                          env=env, timeout=timeout, stdin=subprocess.DEVNULL)  # fmt: skip


def boot(*args: str, timeout: float = BOOT_TIMEOUT) -> tuple[int, dict[str, Any], str]:
    p = run_boot(*args, "--json", timeout=timeout)
    assert "Traceback" not in p.stderr, p.stderr
    assert p.stdout, p.stderr
    return p.returncode, json.loads(p.stdout), p.stderr


_SHARED: dict[tuple[str, ...], Any] = {}  # the boots tests share, by form and arguments


def shared_boot(*args: str) -> tuple[int, dict[str, Any], str]:
    """`boot(*args)`, booted once a session: tests that check different
    things of the same boot share it. It runs in the first such test's
    TMPDIR, so that test's checks of what a boot leaves behind hold for it."""
    key = ("json", *args)
    if key not in _SHARED:
        _SHARED[key] = boot(*args)
    rc, d, err = _SHARED[key]
    return rc, copy.deepcopy(d), err


def shared_run_boot(*args: str) -> subprocess.CompletedProcess[str]:
    """`run_boot(*args)` (the text report), booted once a session."""
    key = ("text", *args)
    if key not in _SHARED:
        _SHARED[key] = run_boot(*args)
    return copy.deepcopy(_SHARED[key])


def qemus_in(directory: Path) -> list[str]:
    """The command lines of QEMUs still alive that a boot with TMPDIR=directory
    started (QEMU inherits the environment; its files are descriptors, so its
    command line names no directory)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if not (proc / "comm").read_text().startswith("qemu-system"):
                continue
            env = (proc / "environ").read_bytes().split(b"\0")
            if f"TMPDIR={directory}".encode() in env:
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # it went away, or is not a process
            continue
    return found


def boots_in(directory: Path) -> int:
    """Those of them that run a guest, not the short runs that describe the machine."""
    return sum("dumpdtb" not in q for q in qemus_in(directory))


@pytest.fixture(autouse=True)
def no_orphans(tmp_path: Path, modules_built: None):
    """Every boot of a test runs with its own TMPDIR: afterwards no QEMU of
    it is alive and nothing of it is left there."""
    tmp = tmp_path / "boot-tmp"
    tmp.mkdir()
    _TMP.append(tmp)
    yield
    _TMP.pop()
    assert qemus_in(tmp) == [], "a QEMU outlived its boot"
    assert list(tmp.iterdir()) == [], "a boot left files behind"
