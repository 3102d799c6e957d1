"""The shipped AArch64 guest: fresh from its source, and in agreement with the Python driver."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import gunyah_json

from gunyah.model import PERSONAS
from gunyah.toolchain import BUILTIN_ELF, build_builtin
from gunyah.vcpu import load_elf


def test_shipped_guest_is_built_from_its_source(tmp_path: Path) -> None:
    fresh = load_elf(build_builtin(tmp_path / "identify.elf"))
    shipped = load_elf(BUILTIN_ELF)
    assert fresh.entry == shipped.entry
    assert fresh.segments == shipped.segments, (
        "src/gunyah/guests/identify.elf is stale: rebuild it with "
        "'python -m gunyah.toolchain' and commit it"
    )


@pytest.mark.parametrize("persona", [p.name for p in PERSONAS])
@pytest.mark.parametrize("conduit", [[], ["--smc"]], ids=["hvc", "smc"])
def test_vcpu_guest_agrees_with_python_driver(persona: str, conduit: list[str]) -> None:
    rc_py, py = gunyah_json("identify", "--persona", persona, *conduit)
    rc_vm, vm = gunyah_json("identify", "--vcpu", "--persona", persona, *conduit)
    assert (py.pop("driver"), vm.pop("driver")) == ("python", "vcpu")
    assert vm == py
    assert rc_vm == rc_py


@pytest.mark.parametrize(
    ("output", "status", "fragment"),
    [("uid 0x1 0x2\n", 1, "malformed"),
     ("identify 0x1 0x0 0x0 0x0\n", 0, "malformed"),
     ("uid 0xcd8fd5c1 0xdb5f53a4 0x36ce6592 0x145f3d67\n", 1, "incomplete"),
     ("uid 0xb66fb428 0xe911c52e 0x564bcaa9 0x743a004d\n", 0, "says supported where"),
     ("", 7, "did not finish")],
)  # fmt: skip
def test_a_report_that_does_not_add_up_is_refused(output: str, status: int, fragment: str) -> None:
    from gunyah.guest.builtin import GuestFailure, parse_report
    from gunyah.vcpu import RunResult

    result = RunResult("semihosting-exit", status, None, output, [])
    with pytest.raises(GuestFailure, match=fragment):
        parse_report(result)
