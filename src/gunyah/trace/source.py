"""Opening a trace: a file, `-` for standard input, gzip decompressed as it is
read; its format sniffed from its first bytes by each format's own rule."""

from __future__ import annotations

import contextlib
import gzip
import io
import sys
import zlib
from collections.abc import Iterator
from typing import IO, Any

from . import csvfile, ftrace, jsonl, runlog
from .calls import TraceError
from .lines import LineFormat

SNIFF_BYTES = 256 << 10
GZIP_MAGIC = b"\x1f\x8b"  # a gzip member's first bytes (RFC 1952)
# the line formats, in the order their rules are tried
LINE_FORMATS: tuple[LineFormat, ...] = (jsonl, runlog, csvfile)
BY_NAME: dict[str, LineFormat] = {f.NAME: f for f in LINE_FORMATS}
FORMATS = ("auto", ftrace.NAME, jsonl.NAME, csvfile.NAME, runlog.NAME)


def open_trace(path: str) -> IO[bytes]:
    """A file, `-` for standard input, gzip data decompressed as it is read."""
    if path == "-" and sys.stdin is None:
        raise TraceError("-: standard input is closed")
    try:
        f = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
        magic = f.peek(2)[:2]  # type: ignore[union-attr]
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror or e}") from None
    if magic == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=f)  # type: ignore[return-value]
    return f


def sniff(head: bytes) -> str:
    """The format of a trace from its first bytes, or TraceError."""
    text = head.decode("utf-8", "replace")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if ftrace.sniff(text, lines):
        return ftrace.NAME
    body = [ln for ln in lines if not ln.startswith("#")]
    if not body:
        raise TraceError("empty: no trace lines")
    for fmt in LINE_FORMATS:
        if fmt.sniff(body):
            return fmt.NAME
    raise TraceError(
        "not a trace: no kvm_hvc_arm64/kvm_smc_arm64 events, JSON lines, CSV header "
        "or 'gunyah run --trace' lines in its first lines"
    )


class _Peekable(io.RawIOBase):
    """A stream whose first bytes were read to sniff its format."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self.head, self.rest = head, rest

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        if self.head:
            if size < 0 or size >= len(self.head):
                out, self.head = self.head, b""
                more = self.rest.read(-1 if size < 0 else size - len(out))
                return out + more
            out, self.head = self.head[:size], self.head[size:]
            return out
        return self.rest.read(size)

    def readinto(self, b: Any) -> int:
        if not self.head:
            return self.rest.readinto(b)  # type: ignore[attr-defined, no-any-return]
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)


@contextlib.contextmanager
def _trace_stream(path: str, fmt: str) -> Iterator[tuple[str, IO[bytes], IO[bytes] | None]]:
    """The trace's format, a stream from its first byte, and the file itself
    where it is a plain one (not standard input, not gzip); read errors inside
    become one TraceError naming the file, and the file is always closed."""
    f = open_trace(path)
    try:
        head = f.read(SNIFF_BYTES)
        try:
            kind = sniff(head) if fmt == "auto" else fmt
        except TraceError as e:
            raise TraceError(f"{path}: {e}") from None
        plain = None if path == "-" or isinstance(f, gzip.GzipFile) else f
        yield kind, io.BufferedReader(_Peekable(head, f)), plain
    except (OSError, EOFError, zlib.error) as e:  # gzip's BadGzipFile is an OSError
        why = e.strerror if isinstance(e, OSError) and e.strerror else str(e)
        raise TraceError(f"{path}: cannot read: {why}") from None
    finally:
        if f is not sys.stdin.buffer:
            f.close()
