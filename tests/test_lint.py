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


def test_package_data_ships_every_data_file() -> None:
    """A plain (non-editable) install carries the built-in guest and the
    catalogue: every file in the package that is not code matches package-data."""
    import fnmatch
    import warnings

    from setuptools.config.pyprojecttoml import read_configuration

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "[tool.setuptools] is still beta"
        patterns = read_configuration(ROOT / "pyproject.toml")["tool"]["setuptools"][
            "package-data"
        ]["gunyah"]
    package = ROOT / "src" / "gunyah"
    data = [
        p.relative_to(package).as_posix()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
        and p.suffix not in {".py", ".c", ".so", ".pyd"}
    ]  # fmt: skip
    assert {"guests/identify.elf", "abi/hvc/core.hvc", "_ftrace.pyi", "_mailbox.pyi"} <= set(data)
    assert [f for f in data if not any(fnmatch.fnmatch(f, p) for p in patterns)] == []
