"""Every command's text and JSON output, frozen: a restructure must not change
what users see. The files in tests/golden/ hold stdout, the exit status and
stderr of each case; regenerate them on purpose, never to make a test pass:

    GUNYAH_GOLDEN_UPDATE=1 .venv/bin/python -m pytest tests/test_golden.py
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from cli_helpers import gunyah
from test_probe import LINUX_GUEST, X86_SERVER, tree
from test_trace import BOOT

from gunyah.toolchain import BUILTIN_ELF

GOLDEN = Path(__file__).parent / "golden"
UPDATE = bool(os.environ.get("GUNYAH_GOLDEN_UPDATE"))
UID = ("0xcd8fd5c1", "0xdb5f53a4", "0x36ce6592", "0x145f3d67")

CASES: dict[str, tuple[str, ...]] = {
    "identify": ("identify",),
    "identify-qualcomm-smc": ("identify", "--persona", "qualcomm", "--smc"),
    "identify-kvm": ("identify", "--persona", "kvm"),
    "identify-big-endian": ("identify", "--persona", "big-endian"),
    "identify-json": ("identify", "--json"),
    "identify-vcpu-json": ("identify", "--vcpu", "--persona", "dirty-upper", "--json"),
    "call-version": ("call", "0x80000000", "0x123456789"),
    "call-features-json": ("call", "0x80000001", "0x8600ff01", "--json"),
    "call-identify": ("call", "0xc6008000"),
    "call-native-json": ("call", "--hvc-imm", "0x6000", "--json"),
    "call-kvm": ("call", "0x86000000", "--persona", "kvm"),
    "decode": ("decode", "0xc6008000", "0x8600ff01", "0x84000003", "0xc5fe0001", "0x80fe0000"),
    "decode-json": ("decode", "0xc6008000", "0x86000000", "0xf0000000", "--json"),
    "decode-hvc-imm": ("decode", "--hvc-imm", "0x0", "0x6000", "0x6065", "0x7000"),
    "decode-uid-json": ("decode", "--uid", *UID, "--json"),
    "decode-identify": ("decode", "--identify", "0x5100000000008001", "0x10000fff"),
    "decode-identify-json": (
        "decode",
        "--identify",
        "0xffff00000000c002",
        "0xf000",
        "0",
        "1",
        "--json",
    ),  # fmt: skip
    "personas": ("personas",),
    "personas-json": ("personas", "--json"),
    "run-trace": ("run", "guest.elf", "--trace"),
    "run-json": ("run", "guest.elf", "--json", "--persona", "none"),
    "conformance": ("conformance",),
    "conformance-json": ("conformance", "--persona", "gunyah", "--persona", "kvm", "--json"),
    "conformance-guest": ("conformance", "guest.elf", "--smc"),
    "probe-guest": ("probe", "--root", "linux-guest"),
    "probe-guest-json": ("probe", "--root", "linux-guest", "--json"),
    "probe-x86-json": ("probe", "--root", "x86-server", "--json"),
    "trace-stats": ("trace", "stats", "boot.trace"),
    "trace-stats-json": ("trace", "stats", "boot.trace", "--json"),
    "trace-decode": ("trace", "decode", "boot.trace"),
    "trace-decode-json": ("trace", "decode", "boot.trace", "--json"),
    "bad-usage": ("decode", "0x1_0000_0000"),
}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Inputs under short relative names, so outputs hold no temporary paths."""
    d = tmp_path_factory.mktemp("golden")
    shutil.copy(BUILTIN_ELF, d / "guest.elf")
    tree(d / "linux-guest", LINUX_GUEST)
    tree(d / "x86-server", X86_SERVER)
    (d / "boot.trace").write_text(BOOT)
    return d


def _run(workdir: Path, args: tuple[str, ...]) -> str:
    cwd = os.getcwd()
    os.chdir(workdir)
    try:
        p = gunyah(*args)
    finally:
        os.chdir(cwd)
    return f"{p.stdout}--- exit {p.returncode} ---\n{p.stderr}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_output_is_unchanged(workdir: Path, name: str) -> None:
    got = _run(workdir, CASES[name])
    path = GOLDEN / f"{name}.txt"
    if UPDATE:
        path.write_text(got)
    assert path.exists(), f"no golden file {path.name}: run with GUNYAH_GOLDEN_UPDATE=1"
    assert got == path.read_text()


def test_every_golden_file_has_a_case() -> None:
    assert {p.stem for p in GOLDEN.glob("*.txt")} == set(CASES)
