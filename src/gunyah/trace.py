"""Hypercall traces: read them fast, decode every call with the `decode` decoder.

Formats:
- `ftrace`: the arm64 KVM tracepoints `kvm_hvc_arm64` / `kvm_smc_arm64`,
  `HVC at 0x<pc> (r0: 0x<r0>, imm: 0x<imm>)`: pc and r0 as `%08lx` in older
  kernels (8 digits, more for bigger values), `%016lx` in newer ones
  (arch/arm64/kvm/trace_handle_exit.h); any width of 1 to 16 digits is read,
  and the immediate, `%lx`, must fit the instruction's 16 bits. Lines of other
  events are counted and passed over.
- `jsonl`: one JSON object per line with `function_id` (or `r0`/`x0`), and
  optionally `imm`, `conduit` (`hvc`/`smc`) and `pc`; numbers or hex strings.
- `csv`: a header row naming the same columns.
- `run`: what `gunyah run --trace` prints.

ftrace, the format that runs to gigabytes, is taken in 4 MiB blocks, so
memory stays flat. `stats` counts calls with the compiled scanner
(`_ftrace.c`, built at install) on worker threads, a block each: a plain file
is mapped and its pages let go behind the scan, a pipe or gzip is read into a
buffer per worker. `decode`, and `stats` where the scanner was not built,
parse with numpy: events found by their `HVC at`/`SMC at` anchor and their
hex fields converted as whole arrays. Both read the same grammar (a property
test holds them to it). Names are looked up once per distinct call.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import itertools
import json
import mmap
import os
import re
import stat
import sys
import threading
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import ModuleType
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from . import abi, smccc
from .trap import classify

_ftrace: ModuleType | None
try:
    from . import _ftrace
except ImportError:  # built without a C compiler: stats falls back to numpy
    _ftrace = None

CHUNK = 4 << 20  # a block: per-block costs vanish, and it still sits in the CPU's cache
MAX_MALFORMED_SHOWN = 5
MAX_SHOWN = 200  # characters of a malformed line shown
FORMATS = ("auto", "ftrace", "jsonl", "csv", "run")
SNIFF_BYTES = 256 << 10
GZIP_MAGIC = b"\x1f\x8b"  # a gzip member's first bytes (RFC 1952)

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]

_PAD = bytes(64)  # after the text: every read of a field stays inside

CONDUITS = ("hvc", "smc")


class TraceError(Exception):
    """A file that cannot be read as a trace at all."""


@dataclass(frozen=True)
class Calls:
    """Calls parsed from one piece of a trace, as parallel arrays."""

    line: I64  # 1-based line numbers in the file
    smc: npt.NDArray[np.bool_]
    pc: U64
    r0: U64
    imm: U64

    def __len__(self) -> int:
        return len(self.line)


@dataclass
class Malformed:
    count: int = 0
    first: list[tuple[str, int, str]] = field(default_factory=list)

    def add(self, source: str, line: int, text: str) -> None:
        self.count += 1
        if len(self.first) < MAX_MALFORMED_SHOWN:
            self.first.append((source, line, text[:MAX_SHOWN]))


# ---------------------------------------------------------------------------
# ftrace, vectorised
# Every field is read eight bytes at a time: `_words` views the text as one
# little-endian uint64 at every offset, so one gather reads eight bytes, and
# the hex digits in them are told and valued by arithmetic on whole words, as
# the compiled scanner does (SWAR: adding 0x80 - k to a byte below 0x80 sets
# its high bit exactly when it is >= k).
_ONES = 0x0101010101010101
_HIGH = np.uint64(0x80 * _ONES)


def _u64(x: int) -> np.uint64:
    u: np.uint64 = np.uint64(x & smccc.MASK64)
    return u


def _words(text: bytes) -> U64:
    """The 8 bytes at every offset of `text`, as little-endian uint64."""
    view: U64 = np.ndarray(shape=(len(text) - 7,), dtype="<u8", buffer=text, strides=(1,))
    return view


def _literal(w: U64, at: I64, text: bytes) -> npt.NDArray[np.bool_]:
    """Whether `text` (8 bytes at most) stands at each `at`."""
    mask = _u64((1 << 8 * len(text)) - 1)
    ok: npt.NDArray[np.bool_] = (w[at] & mask) == _u64(int.from_bytes(text, "little"))
    return ok


def _not_hex(w: U64) -> U64:
    """The bytes of each word that are not hex digits, as their high bits;
    exact up to the first of them (a byte >= 0x80 may carry into the next)."""
    low = w | _u64(0x20 * _ONES)  # 'A'-'F' -> 'a'-'f'; no other byte becomes a letter
    digit = (w + _u64((0x80 - 0x30) * _ONES)) & ~(w + _u64((0x80 - 0x3A) * _ONES))
    letter = (low + _u64((0x80 - 0x61) * _ONES)) & ~(low + _u64((0x80 - 0x67) * _ONES))
    out: U64 = (~(digit | letter) | w) & _HIGH
    return out


def _first_marked(m: U64) -> I64:
    """The index of the lowest byte whose high bit is set in each word, 8 if none."""
    lowest = m & (~m + _u64(1))  # 2**(8i + 7)
    index = ((lowest >> _u64(7)) * _u64(0x0001020304050607)) >> _u64(56)
    return np.where(m == 0, 8, index.astype(np.int64))


def _hex_value8(w: U64) -> U64:
    """The value of eight hex digits, the first in the lowest byte; a zero byte
    is a zero digit. A digit's value is its low nibble, a letter's (bit 6 set)
    its low nibble + 9."""
    v: npt.NDArray[Any] = (w & _u64(0x0F * _ONES)) + ((w >> _u64(6)) & _u64(_ONES)) * _u64(9)
    v = ((v << _u64(4)) | (v >> _u64(8))) & _u64(0x00FF00FF00FF00FF)  # digit pairs
    v = ((v << _u64(8)) | (v >> _u64(16))) & _u64(0x0000FFFF0000FFFF)  # quads
    out: npt.NDArray[Any] = ((v << _u64(16)) | (v >> _u64(32))) & _u64(0xFFFFFFFF)
    return out


def _hex_field(w: U64, start: I64, end: int) -> tuple[U64, I64, npt.NDArray[np.bool_]]:
    """1 to 16 hex digits from each `start`, ended by byte `end`.

    Returns the values, the position after the terminator, and which parsed."""
    first, second = w[start], w[start + 8]
    n0, n1 = _not_hex(first), _not_hex(second)
    length = np.where(n0 != 0, _first_marked(n0), 8 + _first_marked(n1))  # 0..16
    ok = (length >= 1) & ((w[start + length] & _u64(0xFF)) == _u64(end))
    # the digits moved to the top of a word (their last eight, where more)
    shift = (8 * np.where(length <= 8, 8 - length, 16 - length)).astype(np.uint64)
    tail = _hex_value8(np.where(length <= 8, first, second) << shift)
    head = np.where(length > 8, _hex_value8(first), _u64(0))
    value: U64 = (head << (4 * np.maximum(length - 8, 0)).astype(np.uint64)) | tail
    return value, start + length + 1, ok


def parse_ftrace(data: bytes, first_line: int) -> tuple[Calls, I64]:
    """Every HVC/SMC event in `data` (whole lines); also the lines that claim
    to be one and are not (malformed), as 1-based line numbers: an anchor
    whose fields do not parse, or an event's name (`kvm_hvc_arm64: `,
    `kvm_smc_arm64: `) not followed at once by a call of its conduit."""
    text = data + _PAD
    a = np.frombuffer(text, np.uint8)
    w = _words(text)
    n = len(data)
    c = np.flatnonzero(a[:n] == ord("C"))  # the C of "HVC at 0x" / "SMC at 0x"
    c = c[c >= 2]
    smc = _literal(w, c - 2, b"SMC at 0")
    event = (smc | _literal(w, c - 2, b"HVC at 0")) & (a[c + 6] == ord("x"))
    c, smc = c[event], smc[event]
    pc, after_pc, ok = _hex_field(w, c + 7, ord(" "))
    ok &= _literal(w, after_pc, b"(r0: 0x")
    r0, after_r0, ok_r0 = _hex_field(w, after_pc + 7, ord(","))
    ok &= ok_r0 & _literal(w, after_r0, b" imm: 0x")
    imm, _, ok_imm = _hex_field(w, after_r0 + 8, ord(")"))
    ok &= ok_imm & (imm <= 0xFFFF)  # the instruction's 16-bit immediate
    newlines = np.flatnonzero(a[:n] == ord("\n"))
    line = np.searchsorted(newlines, c).astype(np.int64) + first_line
    calls = Calls(line[ok], smc[ok], pc[ok], r0[ok], imm[ok])
    # an event's name must be followed at once by a call of its conduit that parses
    u = np.flatnonzero((a[: n - 6] == ord("_")) & (a[6:n] == ord(":"))) if n > 6 else c[:0]
    u = u[(u >= 7) & (u + 8 <= n)]
    u = u[_literal(w, u, b"_arm64: ")]
    name_smc = _literal(w, u - 7, b"kvm_smc")
    named = name_smc | _literal(w, u - 7, b"kvm_hvc")
    u, name_smc = u[named], name_smc[named]
    good = c[ok]
    at = np.searchsorted(good, u + 10)
    found = at < len(good)
    found[found] &= good[at[found]] == u[found] + 10
    found[found] &= smc[ok][at[found]] == name_smc[found]
    named_bad = np.searchsorted(newlines, u[~found]).astype(np.int64) + first_line
    return calls, np.unique(np.concatenate((line[~ok], named_bad)))


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


# ---------------------------------------------------------------------------
# the small formats, line by line
_RUN_LINE = re.compile(
    r"^(0x[0-9a-fA-F]+|\(python\)) (hvc|smc) #(0x[0-9a-fA-F]+) x0=(0x[0-9a-fA-F]+)\b"
)


def _number(value: Any) -> int:
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        n = int(value, 0)
    else:
        raise ValueError(f"{value!r} is not a number")
    if not 0 <= n <= smccc.MASK64:
        raise ValueError(f"{n} does not fit in 64 bits")
    return n


def _from_record(rec: dict[str, Any]) -> tuple[bool, int, int, int]:
    key = next((k for k in ("function_id", "r0", "x0") if k in rec), None)
    if key is None:
        raise ValueError("no function_id, r0 or x0")
    conduit = str(rec.get("conduit", rec.get("kind", "hvc"))).lower()
    if conduit not in CONDUITS:
        raise ValueError(f"conduit {conduit!r} is neither hvc nor smc")
    imm = _number(rec.get("imm", 0))
    if imm > 0xFFFF:
        raise ValueError(f"imm {imm:#x} does not fit in 16 bits")
    pc = _number(rec["pc"]) if rec.get("pc") not in (None, "") else 0
    return conduit == "smc", pc, _number(rec[key]), imm


MAX_LINE = 1 << 20  # a line of the line formats; a longer one is malformed, not held


def _bounded_lines(f: IO[bytes]) -> Iterator[str]:
    """The stream's lines, each at most MAX_LINE bytes: the rest of a longer
    line is read past, not kept (it becomes a line that parses as nothing)."""
    while line := f.readline(MAX_LINE):
        if len(line) == MAX_LINE and not line.endswith(b"\n"):
            while (more := f.readline(MAX_LINE)) and not more.endswith(b"\n"):
                pass
            line = b"(a line longer than 1 MiB: not read)\n"
        yield line.decode("utf-8", "replace")


def _records(kind: str, text: Iterator[str]) -> Iterator[tuple[int, str, dict[str, Any] | None]]:
    """(line number, line, record or None when malformed) for the line formats."""
    if kind == "csv":
        yield from _csv_records(text)
        return
    for n, line in enumerate(text, start=1):
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if kind == "jsonl":
            try:
                rec = json.loads(s)
            except (ValueError, RecursionError):  # bad JSON, digits past the int limit, nesting
                rec = None
            yield n, s, rec if isinstance(rec, dict) else None
        else:  # run: the guest's own output lines are not calls, and not errors
            m = _RUN_LINE.match(s)
            if m is not None:
                pc = 0 if m.group(1) == "(python)" else int(m.group(1), 16)
                yield n, s, {"pc": pc, "conduit": m.group(2), "imm": m.group(3),
                             "function_id": m.group(4)}  # fmt: skip


def _csv_records(text: Iterator[str]) -> Iterator[tuple[int, str, dict[str, Any] | None]]:
    """A header row, then one record per row; a row that does not fit the
    header (more or fewer fields, a field past csv's limit) is malformed."""
    reader = csv.reader(text)
    try:
        header = next(reader, None)
    except csv.Error as e:
        raise TraceError(f"a CSV trace whose header cannot be read: {e}") from None
    if not header or not {"function_id", "r0", "x0"} & set(header):
        raise TraceError("a CSV trace needs a header with function_id, r0 or x0")
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:
            yield reader.line_num, f"({e})", None
            continue
        if row is None:
            return
        rec = dict(zip(header, row, strict=True)) if len(row) == len(header) else None
        yield reader.line_num, ",".join(row)[:MAX_SHOWN], rec


def _line_calls(kind: str, f: IO[bytes], source: str, bad: Malformed) -> Iterator[Calls]:
    rows: list[tuple[int, bool, int, int, int]] = []
    for n, line, rec in _records(kind, _bounded_lines(f)):
        try:
            if rec is None:
                raise ValueError
            rows.append((n, *_from_record(rec)))
        except (ValueError, TypeError):
            bad.add(source, n, line)
            continue
        if len(rows) >= 65536:
            yield _calls_of(rows)
            rows = []
    if rows:
        yield _calls_of(rows)


def _calls_of(rows: list[tuple[int, bool, int, int, int]]) -> Calls:
    line, smc, pc, r0, imm = zip(*rows, strict=True)
    return Calls(
        np.array(line, np.int64),
        np.array(smc, np.bool_),
        np.array(pc, np.uint64),
        np.array(r0, np.uint64),
        np.array(imm, np.uint64),
    )


# ---------------------------------------------------------------------------
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
    if (
        "HVC at 0x" in text
        or "SMC at 0x" in text
        or any(ln.startswith("# tracer:") for ln in lines)
    ):
        return "ftrace"
    body = [ln for ln in lines if not ln.startswith("#")]
    if not body:
        raise TraceError("empty: no trace lines")
    if body[0].startswith("{"):
        return "jsonl"
    if any(_RUN_LINE.match(ln) for ln in body):
        return "run"
    header = {h.strip().lower() for h in body[0].split(",")}
    if "," in body[0] and header & {"function_id", "r0", "x0"}:
        return "csv"
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
    if kind == "ftrace":
        first = 1
        blocks = _StreamBlocks(stream)
        buf = blocks.buffer()
        while (block := blocks.next(buf)) is not None:
            _, _, n, last = block
            piece = bytes(buf[:n])
            calls, malformed = parse_ftrace(piece, first)
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
        for calls in _line_calls(kind, stream, path, bad):
            upto = int(calls.line[-1])
            yield calls, upto - seen
            seen = upto


# ---------------------------------------------------------------------------
# naming, once per distinct call
def call_key(smc: bool, r0: int, imm: int) -> tuple[str, int, int | None]:
    """What identifies a call for counting: conduit, immediate, function ID
    (none for a call that is not SMCCC, whose X0 is an argument)."""
    call = classify("smc" if smc else "hvc", imm, r0)
    return call.conduit, call.imm, call.function_id


def call_name(conduit: str, imm: int, fid: int | None) -> str:
    """The call's name, or what is known of it where it has none."""
    call = classify(conduit, imm, fid or 0)
    if call.abi == "smccc":
        d = abi.describe_function_id(call.function_id or 0)
        name = d["name"] or f"unknown ({d['owner']['name']} {d['function']:#06x})"
        return name if d["valid"] else f"{name} (invalid: bits 23:17 set)"
    if call.abi == "native":
        return call.name or f"gunyah native {call.number:#x} (not catalogued)"
    return f"{conduit} #{imm:#x} (no ABI)"


def _call_keys(smc: npt.NDArray[np.bool_], r0: U64, imm: U64) -> U64:
    """call_key packed into one uint64 per call, as the compiled scanner packs
    it: conduit (bit 63), immediate (55:40), and below it the function ID, or
    bit 32 alone where there is none (a test holds this to call_key)."""
    fid = np.where(imm == 0, r0 & np.uint64(smccc.MASK32), np.uint64(1 << 32))
    key: U64 = (smc.astype(np.uint64) << np.uint64(63)) | (imm << np.uint64(40)) | fid
    return key


MAX_DISTINCT = 1 << 16  # distinct calls counted apart; as MAX_DISTINCT in _ftrace.c
OTHERS = 1 << 62  # the key the calls past those are counted under; as OTHERS in _ftrace.c


def _unkey(v: int) -> tuple[str, int, int | None]:
    f = v & 0x1_FFFF_FFFF
    return ("smc" if v >> 63 else "hvc", v >> 40 & 0xFFFF, None if f >> 32 else f)


@dataclass
class Stats:
    files: list[str]
    lines: int = 0
    calls: int = 0
    malformed: Malformed = field(default_factory=Malformed)
    keys: Counter[int] = field(default_factory=Counter)  # _call_keys layout
    errors: list[str] = field(default_factory=list)  # files that could not be read

    def merge(self, other: Stats) -> None:
        """Adds another file's counts after this one's."""
        self.lines += other.lines
        self.calls += other.calls
        self.keys.update(other.keys)
        self._bound()
        self.malformed.count += other.malformed.count
        room = MAX_MALFORMED_SHOWN - len(self.malformed.first)
        self.malformed.first.extend(other.malformed.first[: max(0, room)])

    def add(self, calls: Calls) -> None:
        self.calls += len(calls)
        keys, counts = np.unique(_call_keys(calls.smc, calls.r0, calls.imm), return_counts=True)
        self.keys.update(dict(zip(keys.tolist(), counts.tolist(), strict=True)))
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
            "unreadable": self.errors,
        }


def _workers() -> int:
    """Scanning threads: one per CPU this process may use, at most 8 (each
    holds a block; more than that would only wait on memory)."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(8, cpus or 1))


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


def _scan_ftrace(blocks: _StreamBlocks | _MappedBlocks, path: str, st: Stats,
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
        if kind == "ftrace" and _ftrace is not None:
            mm = _mapped(plain)
            try:
                blocks = _StreamBlocks(stream) if mm is None else _MappedBlocks(mm)
                _scan_ftrace(blocks, path, st, progress)
            finally:
                if mm is not None:
                    mm.close()
            return
        for calls, lines in _calls(kind, stream, path, st.malformed, progress):
            st.add(calls)
            st.lines += lines
