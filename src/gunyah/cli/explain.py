"""`gunyah explain`: what a pasted log line means, and what to try."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .. import render, triage
from .common import EXIT_OK, UsageError, add_json, emit

EXIT_UNKNOWN = 1  # nothing in the catalogue matched
MAX_INPUT = 16 << 20  # bytes read from standard input


def _lines(args: argparse.Namespace) -> list[str]:
    if args.lines == ["-"]:
        data = sys.stdin.buffer.read(MAX_INPUT)
        return data.decode("utf-8", "replace").splitlines()
    if not args.lines:
        raise UsageError("give a LINE to explain (quote it), or - to read lines from stdin")
    return list(args.lines)


def cmd_explain(args: argparse.Namespace) -> int:
    found = triage.scan(_lines(args))
    emit(args, found, render.triage(found))
    return EXIT_OK if found else EXIT_UNKNOWN


def register(sub: Any) -> None:
    p = sub.add_parser(
        "explain",
        help="explain a log line from a Gunyah VM that failed, and what to try",
        description="Match log lines (a kernel's, crosvm's) against the catalogue of known "
        "Gunyah failures people have posted: what each means, what to try, and the public "
        "thread it comes from. RM message IDs and errors in a line are decoded. Exit "
        "status: 0 when a line matched, 1 when none is known, 2 for bad usage.",
        epilog="Example: gunyah explain 'RM rejected message 51000015. Error: 7'; "
        "dmesg | gunyah explain -",
    )
    p.add_argument("lines", nargs="*", metavar="LINE", help="a log line, or - for stdin")
    add_json(p)
    p.set_defaults(func=cmd_explain)
