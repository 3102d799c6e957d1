"""Shared test settings: a hypothesis profile that suits shared, noisy machines."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import HealthCheck, settings

settings.register_profile(
    "project",
    deadline=None,
    max_examples=300,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "project"))

ROOT = Path(__file__).resolve().parent.parent
# The reference notes live beside the repository in a checkout of the project.
REFERENCE = ROOT.parent / "shared" / "reference"
