"""pytest markers for test suites that run on Qualcomm boards, where Gunyah
holds EL2 and KVM cannot start: installed with the package, used as

    @pytest.mark.skip_on_gunyah        # e.g. KVM's own tests
    @pytest.mark.requires_kvm          # /dev/kvm must be a character device
    @pytest.mark.requires_gunyah_host  # this system must be able to create Gunyah VMs

The machine is probed once, read-only, the first time a marked test runs
(`--gunyah-root DIR|CAPTURE` probes another tree, as `gunyah probe --root`).
"""

from __future__ import annotations

from typing import Any

import pytest

MARKERS = {
    "skip_on_gunyah": "skip where the system runs under Gunyah (KVM cannot start there)",
    "requires_kvm": "skip unless /dev/kvm is a character device",
    "requires_gunyah_host": "skip unless this system can create Gunyah VMs (/dev/gunyah)",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--gunyah-root", default="/", metavar="DIR",
                     help="the system tree (or capture) gunyah's markers probe")  # fmt: skip


def pytest_configure(config: pytest.Config) -> None:
    for name, what in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {what}")


_found: dict[str, Any] = {}


def _probed(config: pytest.Config) -> Any:
    root = config.getoption("--gunyah-root")
    if root not in _found:
        from . import probe

        _found[root] = probe.probe(root)
    return _found[root]


def pytest_runtest_setup(item: pytest.Item) -> None:
    marks = {m.name for m in item.iter_markers()} & MARKERS.keys()
    if not marks:
        return
    report = _probed(item.config)
    if "skip_on_gunyah" in marks and report.detect_virt == "gunyah":
        pytest.skip(f"runs under Gunyah: {report.summary}")
    if "requires_gunyah_host" in marks and report.verdict != "gunyah-host":
        pytest.skip(f"cannot create Gunyah VMs here: {report.summary}")
    if "requires_kvm" in marks:
        node = report.nodes.get("dev/kvm")
        if node is None or node.kind != "char":
            pytest.skip("no /dev/kvm: KVM is not available on this system")
