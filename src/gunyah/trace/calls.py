"""What every reader of a trace yields: calls as arrays, malformed lines,
and the keys calls are counted by (as the compiled scanner packs them)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from .. import abi, smccc
from ..trap import classify

MAX_MALFORMED_SHOWN = 5
MAX_SHOWN = 200  # characters of a malformed line shown
CONDUITS = ("hvc", "smc")
NO_CPU = (1 << 64) - 1  # a call whose vCPU the trace does not say

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


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
    cpu: U64 | None = None  # the vCPU of each call, NO_CPU where unknown; None: no column

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
