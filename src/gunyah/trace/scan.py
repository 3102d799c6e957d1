"""The compiled scanner (`_ftrace.c`, an optional extension) on worker threads."""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .blocks import _MappedBlocks, _StreamBlocks
from .calls import MAX_MALFORMED_SHOWN

if TYPE_CHECKING:
    from .count import Stats

_ftrace: ModuleType | None
try:
    from .. import _ftrace
except ImportError:  # built without a C compiler: stats falls back to numpy
    _ftrace = None


def _workers() -> int:
    """Scanning threads: one per CPU this process may use, at most 8 (each
    holds a block; more than that would only wait on memory)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cpus or 1))


def scan_ftrace(blocks: _StreamBlocks | _MappedBlocks, path: str, st: Stats,
                 progress: Callable[[int], None] | None) -> None:  # fmt: skip
    """ftrace counted by the compiled scanner on worker threads. Each worker
    takes the next block of whole lines under a lock (so blocks come in file
    order), then scans it while the others take theirs: the scanner lets go of
    the GIL. Line numbers are put together from the blocks' order at the end."""
    ft = _ftrace
    assert ft is not None
    lock = threading.Lock()
    order = itertools.count()
    failed = threading.Event()
    found: list[tuple[int, int, int, int, list[tuple[int, str]]]] = []
    tables: list[Any] = []
    kept: dict[int, int] = {}  # malformed lines kept for showing, by block
    prefix = [0, 0]  # blocks 0.. done in a row so far, and the lines they kept

    def needs_lines() -> bool:
        """Whether the next block's malformed lines may be among the first shown."""
        while prefix[0] in kept:
            prefix[1] += kept.pop(prefix[0])
            prefix[0] += 1
        return prefix[1] < MAX_MALFORMED_SHOWN

    def work() -> None:
        buf = blocks.buffer()
        bad = np.zeros((MAX_MALFORMED_SHOWN, 2), np.int64)  # (offset, line in block)
        table = ft.table()
        tables.append(table)
        try:
            while not failed.is_set():
                with lock:
                    block = blocks.next(buf)
                    if block is None:
                        return
                    seq = next(order)
                    # only the first few in the file are shown: the line numbers
                    # of later ones need not be counted
                    room = bad if needs_lines() else bad[:0]
                data, start, stop, last = block
                lines, calls, nbad = ft.scan(data, start, stop, table, room)
                shown = []
                for pos, at in room[: min(nbad, len(room))].tolist():
                    end = data.find(b"\n", pos, stop)
                    text = bytes(data[pos : stop if end < 0 else end])
                    shown.append((at, text.decode("utf-8", "replace")))
                lines += last and data[stop - 1] != 10  # a last line without a newline
                with lock:
                    blocks.done(start, stop)
                    found.append((seq, lines, calls, nbad, shown))
                    kept[seq] = len(shown)
                    if progress:
                        progress(stop - start)
        except BaseException:
            failed.set()  # the others stop too; the error is raised below
            raise

    workers = _workers()
    with ThreadPoolExecutor(workers, thread_name_prefix="gunyah-scan") as pool:
        try:
            for job in [pool.submit(work) for _ in range(workers)]:
                job.result()
        except BaseException:  # Ctrl-C too: the workers stop after their block
            failed.set()
            raise
    line = 1
    for _, lines, calls, nbad, shown in sorted(found):
        for at, text in shown:
            st.malformed.add(path, line + at, text)
        st.malformed.count += nbad - len(shown)
        line += lines
        st.lines += lines
        st.calls += calls
    for table in tables:
        st.keys.update(ft.counts(table))
        st._bound()


def scanner() -> str:
    """Which parser `stats` counts ftrace with: "compiled" or "numpy"."""
    return "numpy" if _ftrace is None else "compiled"
