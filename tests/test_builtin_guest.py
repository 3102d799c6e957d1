"""The shipped AArch64 guest: fresh from its source, and in agreement with the Python driver."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_helpers import gunyah_json

from gunyah.personas import PERSONAS
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
