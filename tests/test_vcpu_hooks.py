"""The vCPU's compiled trap hook against its Python reference: the same run,
call for call. (test_vcpu.py runs every other vCPU test with each hook.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from gunyah import Hypervisor
from gunyah.vcpu import VCpu, engine, load_elf


@pytest.mark.parametrize("mode", [0, 1, 2, 3, 4, 5])
def test_both_hooks_keep_the_same_calls(guests: dict[str, Path], mode: int) -> None:
    """The compiled hook against its Python reference: the same run, call for call."""
    assert engine._vcpu is not None  # the test install builds it (test_vcpu.py checks)
    image = load_elf(guests["calls"])
    runs = [VCpu(Hypervisor("gunyah-qemu"), trace=True, compiled=c).run(image, {0: mode})
            for c in (True, False)]  # fmt: skip
    compiled, python = (r.to_dict() for r in runs)
    assert compiled == python and compiled["calls"]
