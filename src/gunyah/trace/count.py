"""Counting a trace's calls by name, and reading them one by one."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np

from . import ftrace, scan
from .blocks import _mapped, _MappedBlocks, _StreamBlocks
from .calls import (
    MAX_DISTINCT,
    MAX_MALFORMED_SHOWN,
    NO_CPU,
    OTHERS,
    Calls,
    Malformed,
    TraceError,
    _call_keys,
    _unkey,
    call_name,
)
from .lines import line_calls
from .source import BY_NAME, _trace_stream


def iter_calls(path: str, fmt: str, bad: Malformed) -> Iterator[tuple[Calls, int]]:
    """Every call of one trace, fully parsed (pc too), chunk by chunk, with the
    number of lines each chunk held."""
    with _trace_stream(path, fmt) as (kind, stream, _):
        yield from _calls(kind, stream, path, bad)


def _calls(
    kind: str,
    stream: IO[bytes],
    path: str,
    bad: Malformed,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[Calls, int]]:
    if kind == ftrace.NAME:
        first = 1
        blocks = _StreamBlocks(stream)
        buf = blocks.buffer()
        while (block := blocks.next(buf)) is not None:
            _, _, n, last = block
            piece = bytes(buf[:n])
            calls, malformed = ftrace.parse_ftrace(piece, first)
            shown = malformed[: max(0, MAX_MALFORMED_SHOWN - len(bad.first))].tolist()
            if shown:  # only these need their text
                lines = piece.split(b"\n", shown[-1] - first + 1)
                for ln in shown:
                    bad.add(path, ln, lines[ln - first].decode("utf-8", "replace"))
            bad.count += len(malformed) - len(shown)
            count = piece.count(b"\n") + (last and not piece.endswith(b"\n"))
            first += count
            if progress:
                progress(n)
            yield calls, count
    else:
        seen = 0
        for calls in line_calls(BY_NAME[kind], stream, path, bad):
            upto = int(calls.line[-1])
            yield calls, upto - seen
            seen = upto


@dataclass
class Stats:
    files: list[str]
    lines: int = 0
    calls: int = 0
    malformed: Malformed = field(default_factory=Malformed)
    keys: Counter[int] = field(default_factory=Counter)  # _call_keys layout
    by_cpu: Counter[int] = field(default_factory=Counter)  # calls of each vCPU, where known
    errors: list[str] = field(default_factory=list)  # files that could not be read

    def merge(self, other: Stats) -> None:
        """Adds another file's counts after this one's."""
        self.lines += other.lines
        self.calls += other.calls
        self.keys.update(other.keys)
        self.by_cpu.update(other.by_cpu)
        self._bound()
        self.malformed.count += other.malformed.count
        room = MAX_MALFORMED_SHOWN - len(self.malformed.first)
        self.malformed.first.extend(other.malformed.first[: max(0, room)])

    def add(self, calls: Calls) -> None:
        self.calls += len(calls)
        keys, counts = np.unique(_call_keys(calls.smc, calls.r0, calls.imm), return_counts=True)
        self.keys.update(dict(zip(keys.tolist(), counts.tolist(), strict=True)))
        if calls.cpu is not None:  # at most MAX_CPU + 1 vCPUs: bounded too
            cpus, counts = np.unique(calls.cpu[calls.cpu != NO_CPU], return_counts=True)
            self.by_cpu.update(dict(zip(cpus.tolist(), counts.tolist(), strict=True)))
        self._bound()

    def _bound(self) -> None:
        """At most MAX_DISTINCT calls counted apart (the most frequent; ties by
        key), the rest together under OTHERS: memory bounded whatever the trace."""
        if len(self.keys) <= MAX_DISTINCT + 1:
            return
        others = self.keys.pop(OTHERS, 0)
        ranked = sorted(self.keys.items(), key=lambda kv: (-kv[1], kv[0]))
        others += sum(n for _, n in ranked[MAX_DISTINCT:])
        self.keys = Counter(dict(ranked[:MAX_DISTINCT]))
        self.keys[OTHERS] = others

    def rows(self) -> list[dict[str, Any]]:
        """One row per call, most frequent first (ties in key order, so the
        same trace always gives the same table)."""
        out = []
        for key, n in sorted(self.keys.items(), key=lambda kv: (-kv[1], kv[0])):
            if key == OTHERS:
                out.append({"conduit": None, "imm": None, "function_id": None,
                            "name": f"other calls (past {MAX_DISTINCT} distinct ones, counted "
                            "together)", "count": n, "share": n / self.calls})  # fmt: skip
                continue
            conduit, imm, fid = _unkey(key)
            out.append({
                "conduit": conduit,
                "imm": imm,
                "function_id": fid,
                "name": call_name(conduit, imm, fid),
                "count": n,
                "share": n / self.calls if self.calls else 0.0,
            })  # fmt: skip
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "calls": self.calls,
            "malformed": {
                "count": self.malformed.count,
                "first": [{"file": f, "line": n, "text": t} for f, n, t in self.malformed.first],
            },
            "by_call": self.rows(),
            "by_vcpu": [{"cpu": c, "count": n} for c, n in sorted(self.by_cpu.items())],
            "unreadable": self.errors,
        }


def stats(
    paths: list[str], fmt: str = "auto", progress: Callable[[int], None] | None = None
) -> Stats:
    """Counts of every call in the traces; ftrace by the compiled scanner when
    it was built. A file that cannot be read to its end is left out of the
    counts and named in `errors`; the others are counted."""
    st = Stats(list(paths))
    for path in paths:
        one = Stats([path])
        try:
            _count(path, fmt, one, progress)
        except TraceError as e:
            st.errors.append(str(e))
            continue
        st.merge(one)
    return st


def _count(path: str, fmt: str, st: Stats, progress: Callable[[int], None] | None) -> None:
    with _trace_stream(path, fmt) as (kind, stream, plain):
        if kind == ftrace.NAME and scan._ftrace is not None:
            mm = _mapped(plain)
            try:
                blocks = _StreamBlocks(stream) if mm is None else _MappedBlocks(mm)
                scan.scan_ftrace(blocks, path, st, progress)
            finally:
                if mm is not None:
                    mm.close()
            return
        for calls, lines in _calls(kind, stream, path, st.malformed, progress):
            st.add(calls)
            st.lines += lines
