"""The kernel console lines a boot acts on (a panic, a power-down) and shows
without --verbose (an oops), declared once as data (console.json: the text,
what it means, where Linux prints it), as the catalogue of known failures is.

Why data and not constants in the boot: the boot, the report and the triage
read the same lines, and a text that drifts from Linux's is a boot that hangs
to its timeout instead of ending as a panic."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources


@dataclass(frozen=True)
class ConsoleSignature:
    id: str
    text: str  # a substring of the line Linux prints
    meaning: str
    source: str


@cache
def console_signatures() -> dict[str, ConsoleSignature]:
    """Every console signature, by id."""
    raw = json.loads(resources.files(__package__).joinpath("console.json").read_text())
    return {s["id"]: ConsoleSignature(s["id"], s["text"], s["meaning"], s["source"])
            for s in raw["signatures"]}  # fmt: skip


def console_text(id: str) -> str:
    """The text of console signature `id` (KeyError for one not declared)."""
    return console_signatures()[id].text
