"""Known failures, from the log lines people post: a catalogue declared once
as data (signatures.json: pattern, meaning, what to try, the public thread),
matched against one line at a time, with the numbers in a line decoded where
a signature says how (an RM message and error, from gunyah.abi.rm)."""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..abi import rm

MAX_LINE = 4096  # characters of a line looked at; the rest is not read


@dataclass(frozen=True)
class Signature:
    id: str
    pattern: re.Pattern[str]
    title: str
    cause: str
    fix: str
    sources: tuple[str, ...]
    decode: str | None = None


@cache
def signatures() -> tuple[Signature, ...]:
    raw = json.loads(resources.files(__package__).joinpath("signatures.json").read_text())
    return tuple(Signature(s["id"], re.compile(s["pattern"]), s["title"], s["cause"], s["fix"],
                           tuple(s["sources"]), s.get("decode"))
                 for s in raw["signatures"])  # fmt: skip


def _decode_rm(m: re.Match[str]) -> dict[str, Any]:
    return rm.describe(int(m["msg"], 16), rm.error_code(m["err"]))


_OS_ERROR = re.compile(r"os error (\d{1,4})\)")


def explain(line: str) -> list[dict[str, Any]]:
    """What is known about one log line: each signature it matches, with the
    line's numbers decoded where the signature says how."""
    text = line[:MAX_LINE]
    os_error = _OS_ERROR.search(text)
    n = int(os_error[1]) if os_error is not None else -1
    named = {"number": n, "name": errno.errorcode[n], "text": os.strerror(n)} \
        if n in errno.errorcode else None  # fmt: skip
    found = []
    for sig in signatures():
        m = sig.pattern.search(text)
        if m is None:
            continue
        entry: dict[str, Any] = {
            "id": sig.id, "title": sig.title, "cause": sig.cause, "fix": sig.fix,
            "sources": list(sig.sources), "matched": m.group(0),
        }  # fmt: skip
        if sig.decode == "rm":
            entry["decoded"] = _decode_rm(m)
        if named is not None:
            entry["errno"] = named
        found.append(entry)
    return found


def scan(lines: list[str]) -> list[dict[str, Any]]:
    """Each signature the lines match once, with the first line that matched it."""
    seen: dict[str, dict[str, Any]] = {}
    for line in lines:
        for entry in explain(line):
            seen.setdefault(entry["id"], {**entry, "line": line[:MAX_LINE]})
    return list(seen.values())
