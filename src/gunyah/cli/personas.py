"""`gunyah personas`: the hypervisors the model can play."""

from __future__ import annotations

import argparse
from typing import Any

from .. import render
from ..model import PERSONAS
from .common import (
    EXIT_OK,
    add_json,
    emit,
)


def cmd_personas(args: argparse.Namespace) -> int:
    rows = [p.to_dict() for p in PERSONAS]
    emit(args, rows, render.personas(rows))
    return EXIT_OK


def register(sub: Any) -> None:
    p = sub.add_parser(
        "personas",
        help="list the hypervisors the model can play",
        description="List the model's personas with the verdict a correct guest reaches.",
    )
    add_json(p)
    p.set_defaults(func=cmd_personas)
