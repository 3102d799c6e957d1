"""Shared test settings: a hypothesis profile that suits shared, noisy machines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "project",
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "project"))

ROOT = Path(__file__).resolve().parent.parent


GUESTS_SRC = Path(__file__).resolve().parent / "guests"


@pytest.fixture(scope="session")
def guests(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every test guest under tests/guests, built once per session with ziglang."""
    from gunyah.toolchain import build

    out = tmp_path_factory.mktemp("guests")
    built = {}
    for src in sorted(GUESTS_SRC.rglob("*.c")):
        name = src.relative_to(GUESTS_SRC).with_suffix("").as_posix()
        # the foreign guest is built as its author might: no optimisation
        extra = ("-O0",) if name == "foreign" else ()
        built[name] = build([src], out / f"{name.replace('/', '-')}.elf", extra)
    return built
