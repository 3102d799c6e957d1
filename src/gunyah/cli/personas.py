"""`gunyah personas`: the hypervisors the model can play."""

from __future__ import annotations

import argparse
from typing import Any

from .. import render
from ..guest.references import DEFAULT_REFERENCE, REFERENCES
from ..model import PERSONAS
from .common import (
    EXIT_OK,
    add_json,
    emit,
)


def cmd_personas(args: argparse.Namespace) -> int:
    rows = [
        {**p.to_dict(), "expected_verdict": DEFAULT_REFERENCE.expected_verdict(p),
         "expected_by_reference": {r.name: r.expected_verdict(p) for r in REFERENCES.values()}}
        for p in PERSONAS
    ]  # fmt: skip
    emit(args, rows, render.personas(rows))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "personas",
        help="list the hypervisors the model can play",
        description="List the model's personas with the verdict a correct guest reaches "
        "(a guest of the Linux driver's final form; --json has it for each reference driver), "
        "and the real hypervisor each stands for.",
    )
    add_json(p)
    p.set_defaults(func=cmd_personas)
