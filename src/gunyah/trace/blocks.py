"""Blocks of whole lines: read from a stream into a worker's buffer, or taken
in place from a mapped file whose pages are let go behind the scan."""

from __future__ import annotations

import mmap
import os
import stat
from typing import IO

CHUNK = 4 << 20  # a block: per-block costs vanish, and it still sits in the CPU's cache
SPILL = 1 << 20  # room for the partial line carried from one block to the next
RELEASE = 16 << 20  # a mapped file's pages are let go in windows of this size


Buffer = bytearray | mmap.mmap


class _StreamBlocks:
    """Blocks of whole lines read from a stream, each into its worker's own
    buffer; the partial line a block ends with starts the next."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.carry = bytearray()
        self.ended = False

    def buffer(self) -> bytearray:
        return bytearray(CHUNK + SPILL)

    def next(self, buf: Buffer) -> tuple[Buffer, int, int, bool] | None:
        """The next block, read into buf: (data, start, stop, whether last)."""
        assert isinstance(buf, bytearray)
        if self.ended:
            return None
        view = memoryview(buf)
        rest = len(self.carry)
        buf[:rest] = self.carry
        while True:
            got = self.stream.readinto(view[rest : rest + CHUNK])  # type: ignore[attr-defined]
            end = rest + got
            if not got:
                self.ended = True
                cut = end
                break
            cut = buf.rfind(b"\n", 0, end) + 1
            if cut:
                break
            if end + CHUNK > len(buf):
                cut = end  # a line longer than SPILL: take it as it is
                break
            rest = end  # no line ends yet: read on
        self.carry[:] = view[cut:end]
        return (buf, 0, cut, self.ended) if cut else None

    def done(self, start: int, stop: int) -> None:
        pass


class _MappedBlocks:
    """Blocks of whole lines of a file mapped into memory: nothing is copied,
    and the pages behind the scan are let go (every RELEASE bytes), so the
    process holds a few blocks of the file, not all of it."""

    def __init__(self, mm: mmap.mmap) -> None:
        self.mm = mm
        self.pos = 0  # where the next block starts
        self.finished: dict[int, int] = {}  # blocks scanned out of order: start -> stop
        self.scanned = 0  # everything before this is scanned
        self.released = 0  # the pages before this are let go
        if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
            mm.madvise(mmap.MADV_SEQUENTIAL)

    def buffer(self) -> mmap.mmap:
        return self.mm

    def next(self, buf: Buffer) -> tuple[Buffer, int, int, bool] | None:
        start, size = self.pos, len(self.mm)
        if start >= size:
            return None
        stop = self.mm.find(b"\n", min(start + CHUNK, size)) + 1 or size
        self.pos = stop
        return self.mm, start, stop, stop == size

    def done(self, start: int, stop: int) -> None:
        """Marks a block scanned, and lets go of the whole windows before the
        first block not yet scanned."""
        self.finished[start] = stop
        while self.scanned in self.finished:
            self.scanned = self.finished.pop(self.scanned)
        window = self.scanned - self.scanned % RELEASE
        if window > self.released and hasattr(mmap, "MADV_DONTNEED"):
            self.mm.madvise(mmap.MADV_DONTNEED, self.released, window - self.released)
            self.released = window


def _mapped(f: IO[bytes] | None) -> mmap.mmap | None:
    """A plain file mapped read-only, where it is a regular file that can be."""
    if f is None:
        return None
    try:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            return None
        return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):  # empty, or a file system that cannot map
        return None
