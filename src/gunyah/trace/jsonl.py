"""JSON lines: one object per line with `function_id` (or `r0`/`x0`), and
optionally `imm`, `conduit` (`hvc`/`smc`) and `pc`; numbers or hex strings."""

from __future__ import annotations

import json
from collections.abc import Iterator

from .lines import Record

NAME = "jsonl"


def sniff(body: list[str]) -> bool:
    return body[0].startswith("{")


def records(text: Iterator[str]) -> Iterator[Record]:
    for n, line in enumerate(text, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        try:
            rec = json.loads(s)
        except (ValueError, RecursionError):  # bad JSON, digits past the int limit, nesting
            rec = None
        yield n, s, rec if isinstance(rec, dict) else None
