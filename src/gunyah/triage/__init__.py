"""Known failures, from the log lines people post: a catalogue declared once
as data (signatures.json: pattern, meaning, what to try, the public threads and
what they say), matched against one line at a time, with the numbers in a line
decoded where a signature says how (an RM message and error, from
gunyah.abi.rm). A signature may follow from others (a failed share is followed
by the reclaim of a parcel never made): seen together, the cause is theirs."""

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
    source_says: str
    in_the_way: bool  # a match means VMs cannot be created until it is fixed
    follows_from: tuple[str, ...] = ()  # ids whose failure leads to this line
    decode: str | None = None


@cache
def signatures() -> tuple[Signature, ...]:
    raw = json.loads(resources.files(__package__).joinpath("signatures.json").read_text())
    return tuple(Signature(s["id"], re.compile(s["pattern"]), s["title"], s["cause"], s["fix"],
                           tuple(s["sources"]), s["source_says"], bool(s["in_the_way"]),
                           tuple(s.get("follows_from", ())), s.get("decode"))
                 for s in raw["signatures"])  # fmt: skip


def by_id() -> dict[str, Signature]:
    return {s.id: s for s in signatures()}


def _decode_rm(m: re.Match[str]) -> dict[str, Any] | None:
    """The RM message and error a line names; None where this match has none
    (another alternative of the pattern) or the numbers are not 32-bit ones."""
    groups = m.groupdict()
    if groups.get("msg") is None or groups.get("err") is None:
        return None
    try:
        return rm.describe(int(groups["msg"], 16), rm.error_code(groups["err"]))
    except ValueError:
        return None


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
            "sources": list(sig.sources), "source_says": sig.source_says,
            "in_the_way": sig.in_the_way, "follows_from": list(sig.follows_from),
            "matched": m.group(0),
        }  # fmt: skip
        if sig.decode == "rm" and (decoded := _decode_rm(m)) is not None:
            entry["decoded"] = decoded
        if named is not None:
            entry["errno"] = named
        found.append(entry)
    return found


def scan(lines: list[str]) -> list[dict[str, Any]]:
    """Each signature the lines match once, with the first line that matched it;
    one that follows from another seen here says so ("follows": that id)."""
    seen: dict[str, dict[str, Any]] = {}
    for line in lines:
        for entry in explain(line):
            seen.setdefault(entry["id"], {**entry, "line": line[:MAX_LINE]})
    for entry in seen.values():
        root = next((i for i in entry["follows_from"] if i in seen), None)
        if root is not None:
            entry["follows"] = root
    return list(seen.values())


def in_the_way(found: list[dict[str, Any]]) -> list[str]:
    """What the known problems in `found` (from scan) say stands in the way of
    VMs, each with its fix: one line per cause, the lines that follow from it
    named after it rather than listed again."""
    out = []
    for entry in found:
        if "follows" in entry:
            continue
        after = [f["title"] for f in found if f.get("follows") == entry["id"]]
        if not entry["in_the_way"] and not after:
            continue
        text = (f"{entry['title']} (the kernel log shows it; gunyah explain says more): "
                f"try: {entry['fix']}")  # fmt: skip
        if after:
            text += f" (what follows from it: {'; '.join(after)})"
        out.append(text)
    return out
