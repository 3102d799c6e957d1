"""The project's own lint and type checks run with the tests."""

from __future__ import annotations

import subprocess
import sys

from conftest import ROOT


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_ruff() -> None:
    p = _run("ruff", "check", "src", "tests", "bench", "setup.py")
    assert p.returncode == 0, p.stdout + p.stderr


def test_mypy() -> None:
    p = _run("mypy")
    assert p.returncode == 0, p.stdout + p.stderr
