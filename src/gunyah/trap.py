"""What a trapped HVC or SMC is: the one place the rule is written.

A trap is (conduit, immediate, X0). Immediate 0 is SMCCC, with either
conduit: the function ID is X0's low 32 bits, and its convention bit says
whether the call is 32- or 64-bit. `hvc #0x6000+N` (N up to 0x1ff) is
Gunyah's native call N, 64-bit, arguments from X0. Anything else (another
immediate, or SMC with one) belongs to no ABI the hypervisor serves.

The model, the conduit's record, both trace parsers, the renderer and the
command line take a call's identity from here; the trace scanner's packed
keys are tested against it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from . import abi, smccc

Abi = Literal["smccc", "native", "none"]


@dataclass(frozen=True)
class TrapCall:
    conduit: str  # "hvc" or "smc"
    imm: int
    abi: Abi
    function_id: int | None  # SMCCC: X0's low 32 bits
    number: int | None  # native: the call number
    width: int  # 32 or 64: the registers' width in this call

    @property
    def name(self) -> str | None:
        """The name the decoders give this call, if any."""
        if self.function_id is not None:
            return abi.describe_function(self.function_id).name
        if self.number is not None:
            return abi.HYPERCALLS.get(self.number)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"conduit": self.conduit, "imm": self.imm, "abi": self.abi,
                "function_id": self.function_id, "number": self.number,
                "width": self.width, "name": self.name}  # fmt: skip


def trap_abi(conduit: str, imm: int) -> Abi:
    """Which ABI a trap's conduit and immediate select."""
    if not 0 <= imm <= 0xFFFF:
        raise ValueError(f"an HVC/SMC immediate is 16 bits, not {imm:#x}")
    if imm == 0:
        return "smccc"
    if conduit == "hvc" and abi.native_number(imm) is not None:
        return "native"
    return "none"


def classify(conduit: str, imm: int, x0: int) -> TrapCall:
    """What the trap (conduit, immediate, X0) asks for."""
    kind = trap_abi(conduit, imm)
    if kind == "smccc":
        fid = x0 & smccc.MASK32
        width = 64 if smccc.FUNCTION_ID.get(fid, "smc64") else 32
        return TrapCall(conduit, imm, kind, fid, None, width)
    if kind == "native":
        return TrapCall(conduit, imm, kind, None, abi.native_number(imm), 64)
    return TrapCall(conduit, imm, kind, None, None, 64)


@dataclass(frozen=True)
class HvcImmediate:
    """What an HVC immediate selects on a Gunyah hypervisor (`decode --hvc-imm`)."""

    call: TrapCall

    def to_dict(self) -> dict[str, Any]:
        c = self.call
        name = c.name if c.abi == "native" else None
        return {"imm": c.imm, "abi": c.abi, "number": c.number, "name": name}


def describe_hvc(imm: int) -> HvcImmediate:
    if not 0 <= imm <= 0xFFFF:
        raise ValueError(f"HVC immediate {imm:#x} does not fit in 16 bits")
    return HvcImmediate(classify("hvc", imm, 0))


def describe_hvc_imm(imm: int) -> dict[str, Any]:
    """`describe_hvc(imm).to_dict()`: the JSON form."""
    return describe_hvc(imm).to_dict()
