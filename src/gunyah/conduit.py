"""The one seam between a guest and a hypervisor: a register file and a trap.

A guest never calls the hypervisor's code; it fills registers and executes
HVC or SMC. `Conduit` is that act for Python guests. Underneath it is a full
64-bit register file (X0..X17), because a real guest sees whatever the
hypervisor leaves in the upper halves; on top are two typed calls, as SMCCC
defines them: a 32-bit call takes 7 arguments and gives 8 results of 32
bits, a 64-bit call takes 17 and gives 18 of 64 bits. The width is in the
method, so truncation cannot be forgotten.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol

from .outcome import EXIT_RESET
from .smccc import FUNCTION_ID, MASK32
from .trap import classify

Kind = Literal["hvc", "smc"]
KINDS: tuple[Kind, ...] = ("hvc", "smc")
NUM_REGS = 18  # X0..X17: SMCCC 1.2 arguments and results
ARGS32 = 7
ARGS64 = 17
RESULTS32 = 8
# X0..X7: the results a trap record keeps (the native ABI's eight); a call may
# write more (the native return sanitises X9..X17), and the whole file goes back
RESULT_REGS = 8


# The exit status a run or a boot ends with when the guest asked for a reset
# (PSCI SYSTEM_RESET or SYSTEM_RESET2): not a verdict, not a failure.
RESET_STATUS = EXIT_RESET

ActionKind = Literal["cpu_on", "cpu_off", "system_off", "system_reset"]


@dataclass(frozen=True)
class Action:
    """What a call asks of whatever runs the vCPUs, beyond its registers:
    PSCI's CPU_ON, CPU_OFF, SYSTEM_OFF, SYSTEM_RESET and SYSTEM_RESET2."""

    kind: ActionKind
    cpu: int  # cpu_on: the vCPU to start; otherwise the one that called
    entry: int = 0  # cpu_on: where the new vCPU starts, at EL1
    context: int = 0  # cpu_on: its X0
    reset_type: int | None = None  # SYSTEM_RESET2's type; None for SYSTEM_RESET
    cookie: int = 0  # SYSTEM_RESET2's cookie

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "cpu": self.cpu,
            "entry": self.entry,
            "context": self.context,
            "reset_type": self.reset_type,
            "cookie": self.cookie,
        }


class GuestMemory(Protocol):
    """A VM's memory as the hypervisor reaches it: by the guest's virtual
    address, through the guest's own translation, with its permissions.
    Both refuse (None, False) rather than raise where the guest may not."""

    def read(self, va: int, size: int) -> bytes | None: ...

    def write(self, va: int, data: bytes) -> bool: ...


class FlatMemory:
    """GuestMemory that is one host buffer at virtual address 0: for callers
    that play the guest from Python. Anything outside it is refused."""

    def __init__(self, size: int) -> None:
        self.data = bytearray(size)

    def read(self, va: int, size: int) -> bytes | None:
        if va < 0 or size < 0 or va + size > len(self.data):
            return None
        return bytes(self.data[va : va + size])

    def write(self, va: int, data: bytes) -> bool:
        if va < 0 or va + len(data) > len(self.data):
            return False
        self.data[va : va + len(data)] = data
        return True


class TrapHandler(Protocol):
    """What sits behind a conduit: it reads and rewrites the register file of
    the calling vCPU, and may ask for an action besides."""

    def handle(
        self, regs: list[int], kind: Kind, imm: int, cpu: int = 0, pc: int = 0
    ) -> Action | None: ...


@dataclass(frozen=True)
class TrapRecord:
    """One trapped call: where, how, and the registers in and out."""

    pc: int | None  # where the guest trapped; None for a call made from Python
    conduit: Kind
    imm: int
    before: tuple[int, ...]  # X0..X17 as the guest left them
    after: tuple[int, ...]  # X0..X7 as the model left them
    cpu: int | None = None  # the vCPU that made it; None for a call made from Python
    vmid: int | None = None  # the VM that made it, where more than one runs (a boot's)

    def to_dict(self) -> dict[str, Any]:
        call = classify(self.conduit, self.imm, self.before[0])
        smccc_call = call.abi == "smccc"
        vm = {} if self.vmid is None else {"vmid": self.vmid}  # only where VMs are told apart
        return {
            **vm,
            "cpu": self.cpu,
            "pc": self.pc,
            "conduit": self.conduit,
            "imm": self.imm,
            "function_id": call.function_id,
            "name": call.name,
            "arguments": list(self.before[1:] if smccc_call else self.before[:8]),
            "results": list(self.after),
        }


class RecordingHandler:
    """A trap handler in front of another that keeps a record of every trap."""

    def __init__(self, inner: TrapHandler) -> None:
        self.inner = inner
        self.records: list[TrapRecord] = []

    def handle(
        self, regs: list[int], kind: Kind, imm: int, cpu: int = 0, pc: int = 0
    ) -> Action | None:
        before = tuple(regs)
        action = self.inner.handle(regs, kind, imm, cpu, pc)
        self.records.append(TrapRecord(None, kind, imm, before, tuple(regs[:RESULT_REGS])))
        return action


class Results32(tuple[int, ...]):
    """W0..W7 of a 32-bit call: each value already truncated to 32 bits."""


class Results64(tuple[int, ...]):
    """X0..X17 of a 64-bit call."""


def _check(values: tuple[int, ...], limit: int, bits: int, what: str) -> None:
    if len(values) > limit:
        raise ValueError(f"a {bits}-bit call takes at most {limit} {what}, got {len(values)}")
    top = (1 << bits) - 1
    for i, v in enumerate(values, start=1):
        if not 0 <= v <= top:
            raise ValueError(f"argument {i} = {v:#x} does not fit in {bits} bits")


class Conduit:
    """HVC or SMC with a chosen immediate into a trap handler."""

    def __init__(self, handler: TrapHandler, kind: Kind = "hvc", imm: int = 0) -> None:
        if kind not in KINDS:
            raise ValueError(f"conduit kind must be hvc or smc, not {kind!r}")
        self.handler = handler
        self.kind: Kind = kind
        self.imm = imm
        self.last_regs: list[int] = [0] * NUM_REGS

    def trap(self, regs: list[int], imm: int | None = None) -> list[int]:
        """Execute the trap on a full register file; returns it, as the guest sees it."""
        if len(regs) != NUM_REGS:
            raise ValueError(f"the register file holds {NUM_REGS} registers, got {len(regs)}")
        self.handler.handle(regs, self.kind, self.imm if imm is None else imm)
        self.last_regs = regs
        return regs

    def call32(self, function_id: int, *args: int) -> Results32:
        """An SMC32/HVC32 call: the upper halves of the results are discarded."""
        _check(args, ARGS32, 32, "arguments")
        if FUNCTION_ID.get(function_id, "smc64"):
            raise ValueError(f"{function_id:#010x} is a 64-bit call; use call64")
        regs = self._regs(function_id, args)
        self.trap(regs)
        return Results32(r & MASK32 for r in regs[:RESULTS32])

    def call64(self, function_id: int, *args: int) -> Results64:
        """An SMC64/HVC64 call: 18 results of 64 bits."""
        _check(args, ARGS64, 64, "arguments")
        if not FUNCTION_ID.get(function_id, "smc64"):
            raise ValueError(f"{function_id:#010x} is a 32-bit call; use call32")
        regs = self._regs(function_id, args)
        self.trap(regs)
        return Results64(regs)

    def native(self, imm: int, *args: int) -> Results64:
        """A call of Gunyah's native ABI: `hvc #imm`, arguments from X0."""
        _check(args, 8, 64, "arguments")
        regs = list(args) + [0] * (NUM_REGS - len(args))
        self.trap(regs, imm)
        return Results64(regs)

    @staticmethod
    def _regs(function_id: int, args: tuple[int, ...]) -> list[int]:
        if not 0 <= function_id <= MASK32:
            raise ValueError(f"function ID {function_id:#x} does not fit in 32 bits")
        regs = [function_id, *args]
        regs.extend([0] * (NUM_REGS - len(regs)))
        return regs
