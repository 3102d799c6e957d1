"""The ftrace format: arm64 KVM's `kvm_hvc_arm64` / `kvm_smc_arm64` tracepoints,
`HVC at 0x<pc> (r0: 0x<r0>, imm: 0x<imm>)`: pc and r0 as `%08lx` in older
kernels (8 digits, more for bigger values), `%016lx` in newer ones
(arch/arm64/kvm/trace_handle_exit.h); any width of 1 to 16 digits is read,
and the immediate, `%lx`, must fit the instruction's 16 bits. Lines of other
events are counted and passed over.

This module sniffs it and parses it with numpy (the reference grammar, which
`decode` uses and the compiled scanner is held to): events found by their
anchors, their hex fields converted as whole arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from .. import smccc
from .calls import I64, U64, Calls

NAME = "ftrace"
_PAD = bytes(64)  # after the text: every read of a field stays inside


def sniff(text: str, lines: list[str]) -> bool:
    """Whether a trace's first lines are ftrace text."""
    return (
        "HVC at 0x" in text
        or "SMC at 0x" in text
        or any(ln.startswith("# tracer:") for ln in lines)
    )


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
