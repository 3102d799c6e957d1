"""What the line formats share: lines read bounded, records turned into calls."""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any, Protocol

import numpy as np

from .. import smccc
from .calls import CONDUITS, NO_CPU, Calls, Malformed

Record = tuple[int, str, dict[str, Any] | None]  # line number, line, record or None


class LineFormat(Protocol):
    NAME: str

    def sniff(self, body: list[str]) -> bool: ...

    def records(self, text: Iterator[str]) -> Iterator[Record]: ...


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


MAX_CPU = 0xFFFF  # a vCPU number past this is malformed, not counted


def _from_record(rec: dict[str, Any]) -> tuple[bool, int, int, int, int]:
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
    cpu = _number(rec["cpu"]) if rec.get("cpu") not in (None, "") else NO_CPU
    if cpu > MAX_CPU and cpu != NO_CPU:
        raise ValueError(f"cpu {cpu} is not a vCPU number")
    return conduit == "smc", pc, _number(rec[key]), imm, cpu


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


def line_calls(fmt: LineFormat, f: IO[bytes], source: str, bad: Malformed) -> Iterator[Calls]:
    rows: list[tuple[int, bool, int, int, int, int]] = []
    for n, line, rec in fmt.records(_bounded_lines(f)):
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


def _calls_of(rows: list[tuple[int, bool, int, int, int, int]]) -> Calls:
    line, smc, pc, r0, imm, cpu = zip(*rows, strict=True)
    return Calls(
        np.array(line, np.int64),
        np.array(smc, np.bool_),
        np.array(pc, np.uint64),
        np.array(r0, np.uint64),
        np.array(imm, np.uint64),
        np.array(cpu, np.uint64),
    )
