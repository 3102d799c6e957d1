"""The pytest markers the package installs, in a test suite of their own run
by pytest as a user's would be, against probed trees."""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

SUITE = '''
import pytest

@pytest.mark.skip_on_gunyah
def test_kvm_things():
    pass

@pytest.mark.requires_gunyah_host
def test_create_a_gunyah_vm():
    pass

@pytest.mark.requires_kvm
def test_needs_dev_kvm():
    pass

def test_unmarked():
    pass
'''


def outcomes(tmp_path: Path, root: Path) -> dict[str, str]:
    """Each test of the suite and how it ended (passed or skipped), from the
    JUnit report of a pytest run over it."""
    (tmp_path / "test_suite.py").write_text(SUITE)
    report = tmp_path / "report.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                    f"--junitxml={report}", "--gunyah-root", str(root),
                    str(tmp_path / "test_suite.py")],
                   capture_output=True, cwd=tmp_path)  # fmt: skip
    cases = ET.parse(report).getroot().iter("testcase")
    return {c.get("name", ""): "skipped" if c.find("skipped") is not None
            else "failed" if c.find("failure") is not None else "passed"
            for c in cases}  # fmt: skip


def test_markers_on_a_gunyah_guest(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc/device-tree/hypervisor").mkdir(parents=True)
    (root / "proc/device-tree/hypervisor/compatible").write_bytes(b"gunyah-hypervisor\0")
    assert outcomes(tmp_path, root) == {
        "test_kvm_things": "skipped",  # under Gunyah
        "test_create_a_gunyah_vm": "skipped",  # a guest: no /dev/gunyah
        "test_needs_dev_kvm": "skipped",
        "test_unmarked": "passed",
    }


def test_markers_on_bare_metal(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text("CPU implementer\t: 0x41\n")
    assert outcomes(tmp_path, root) == {
        "test_kvm_things": "passed",
        "test_create_a_gunyah_vm": "skipped",
        "test_needs_dev_kvm": "skipped",
        "test_unmarked": "passed",
    }
