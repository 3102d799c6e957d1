"""A Unicorn-backed AArch64 vCPU whose HVC and SMC trap into the hypervisor model.

The CPU runs at EL1 with SCR_EL3.HCE set, so `HVC` traps instead of being
undefined (docs/vcpu.md section 2, how HVC traps under Unicorn). Every `HVC #imm` /
`SMC #imm` hands X0..X17 to the model's `handle` with the immediate read
from the trapping instruction, and all of X0..X17, as the model left them,
go back before execution resumes after the instruction. `BRK #0` and Arm
semihosting end a run; faults, an instruction budget and a wall-clock limit
end it too, with a report.

Register traffic on the hot path goes through the engine's C batch calls
with ctypes arrays allocated once: one call reads X0..X17 and PC, one writes
them back, where the binding would make a call (over a microsecond) each.
The hook itself is compiled (_vcpu.c) where the install had a C compiler,
and the Python one here otherwise: same answers, same records.
"""

from __future__ import annotations

import ctypes
import itertools
import math
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import unicorn
from unicorn import arm64_const as a64
from unicorn.unicorn_py3.unicorn import Uc, UcError, uclib

from .. import smccc
from ..conduit import NUM_REGS, RESET_STATUS, RESULT_REGS, Action, Kind, TrapHandler, TrapRecord
from ..limits import (
    DEFAULT_MAX_INSTRUCTIONS,
    DEFAULT_TIMEOUT,
    MAX_INSTRUCTIONS,
    MAX_MEMORY,
    MAX_TIMEOUT,
)
from .loader import ADDRESS_LIMIT, PAGE, GuestError, Image, page_runs
from .memory import EngineMemory
from .semihosting import SEMIHOSTING_HLT, Semihosting, Unsupported

try:
    from .. import _vcpu
except ImportError:  # built without a C compiler: the Python hook serves
    _vcpu = None  # type: ignore[assignment]

DEFAULT_STACK_SIZE = 1 << 20
RECENT_CALLS = 16
MAX_CALLS = 10_000  # calls a run keeps (the last ones); the rest are counted
WFI = 0xD503207F

# Exception numbers the engine reports to an interrupt hook (docs/vcpu.md
# section 2, the exception numbers).
EXCP_UDEF = 1
EXCP_SWI = 2
EXCP_BKPT = 7
EXCP_HVC = 11
EXCP_SMC = 13

# SCR_EL3 (op0=3, op1=6, CRn=1, CRm=1, op2=0): NS | HCE | RW
SCR_EL3_VALUE = 1 << 0 | 1 << 8 | 1 << 10


@dataclass(frozen=True)
class Fault:
    kind: str
    pc: int
    address: int | None
    message: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "pc": self.pc, "address": self.address, "message": self.message}


@dataclass
class RunResult:
    stopped_by: str
    exit_status: int | None
    fault: Fault | None
    output: str
    calls: list[TrapRecord]
    recent: list[TrapRecord] = field(default_factory=list)
    calls_dropped: int = 0  # calls made before the ones kept
    output_dropped: int = 0  # bytes of console output past what was kept

    def to_dict(self) -> dict[str, Any]:
        return {
            "exit_status": self.exit_status,
            "stopped_by": self.stopped_by,
            "fault": self.fault.to_dict() if self.fault else None,
            "output": self.output,
            "output_dropped": self.output_dropped,
            "calls_dropped": self.calls_dropped,
            "calls": [c.to_dict() for c in self.calls],
        }


# a trap as recorded on the hot path: its number, pc, kind, imm, X0..X17 before
# and after (raw bytes)
_Raw = tuple[int, int, Kind, int, bytes, bytes]
_UNPACK = struct.Struct(f"<{NUM_REGS}Q").unpack
_INTR_CALLBACK = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)


class VCpu:
    """One AArch64 CPU, its memory, and a trap handler behind its HVC/SMC."""

    def __init__(
        self,
        handler: TrapHandler,
        *,
        max_instructions: int = DEFAULT_MAX_INSTRUCTIONS,
        timeout: float = DEFAULT_TIMEOUT,
        stack_size: int = DEFAULT_STACK_SIZE,
        trace: bool = False,
        max_calls: int = MAX_CALLS,
        compiled: bool = True,
    ) -> None:
        if max_instructions <= 0:
            raise ValueError("the instruction budget must be positive")
        if timeout <= 0:
            raise ValueError("the timeout must be positive")
        if stack_size <= 0 or stack_size % 16:
            raise ValueError("the stack size must be a positive multiple of 16")
        if stack_size > MAX_MEMORY:
            raise ValueError(f"the stack size must be at most {MAX_MEMORY >> 20} MiB")
        if max_instructions > MAX_INSTRUCTIONS:
            raise ValueError(f"the instruction budget must be at most {MAX_INSTRUCTIONS}")
        if timeout > MAX_TIMEOUT:
            raise ValueError(f"the timeout must be at most {MAX_TIMEOUT:g} s")
        self.handler = handler
        self.max_instructions = max_instructions
        self.timeout = timeout
        self.stack_size = stack_size
        self.trace = trace
        self.max_calls = max_calls
        self.compiled = compiled and _vcpu is not None  # which hook serves

    def run(self, image: Image, initial: dict[int, int] | None = None) -> RunResult:
        """Load the image, set X0.. from `initial`, run until the guest stops.
        GuestError where the image and stack do not fit the vCPU's memory."""
        return _Run(self, image, initial or {}).go()


def el1_engine() -> Uc:
    """A fresh CPU at EL1h with nothing mapped, its HVC and SMC trapping to the
    interrupt hook rather than undefined (SCR_EL3.HCE: docs/vcpu.md section 2)."""
    uc = Uc(unicorn.UC_ARCH_ARM64, unicorn.UC_MODE_ARM)
    uc.reg_write(a64.UC_ARM64_REG_CP_REG, (1, 1, 3, 6, 0, SCR_EL3_VALUE))
    return uc


def make_engine(image: Image, initial: dict[int, int], stack_size: int) -> Uc:
    """A CPU at EL1 with HVC enabled, the image in memory, SP and X0.. set."""
    uc = el1_engine()
    for start, count in page_runs(image.segments):
        uc.mem_map(start * PAGE, count * PAGE, unicorn.UC_PROT_ALL)
    for s in image.segments:
        uc.mem_write(s.address, s.data)  # the rest of a fresh mapping is zero (.bss)
    stack_base = _align_up(image.end, 1 << 20) + (1 << 20)
    size = _align_up(stack_size, PAGE)
    if image.memory + size > MAX_MEMORY:
        raise GuestError(f"{image.source}: image and stack need more than the "
                         f"{MAX_MEMORY >> 20} MiB the vCPU gives a guest")  # fmt: skip
    if stack_base + size > ADDRESS_LIMIT:
        raise GuestError(f"{image.source}: no room for the stack above the image "
                         "in the 48-bit address space")  # fmt: skip
    uc.mem_map(stack_base, size, unicorn.UC_PROT_READ | unicorn.UC_PROT_WRITE)
    uc.reg_write(a64.UC_ARM64_REG_SP, stack_base + size)
    for reg, value in initial.items():
        uc.reg_write(a64.UC_ARM64_REG_X0 + reg, value)
    return uc


class RegisterBatch:
    """A fixed set of registers read or written in one call to the engine's C
    batch functions, through ctypes arrays allocated once (docs/vcpu.md
    section 5: a call per register costs over a microsecond each)."""

    def __init__(self, uc: Uc, ids: list[int]) -> None:
        lib = ctypes.CDLL(uclib._name)
        self._uch = ctypes.c_void_p(uc._uch.value)
        self._read = lib.uc_reg_read_batch
        self._write = lib.uc_reg_write_batch
        n = len(ids)
        self.values = (ctypes.c_uint64 * n)()
        base = ctypes.addressof(self.values)
        self._ids = (ctypes.c_int * n)(*ids)
        self._ptrs = (ctypes.c_void_p * n)(*[base + 8 * i for i in range(n)])
        self._n = ctypes.c_int(n)

    def read(self) -> list[int]:
        status = self._read(self._uch, self._ids, self._ptrs, self._n)
        if status != unicorn.UC_ERR_OK:
            raise UcError(status)
        return list(self.values)

    def write(self, values: list[int]) -> None:
        """Write the first len(values) registers of the set."""
        for i, v in enumerate(values):
            self.values[i] = v
        status = self._write(self._uch, self._ids, self._ptrs, ctypes.c_int(len(values)))
        if status != unicorn.UC_ERR_OK:
            raise UcError(status)


class _Run:
    """The state of one run; a fresh engine each time keeps runs independent."""

    def __init__(self, cpu: VCpu, image: Image, initial: dict[int, int]) -> None:
        self.cpu = cpu
        self.image = image
        uc = make_engine(image, initial, cpu.stack_size)
        self.uc = uc

        self.semihosting = Semihosting(uc.mem_read)
        # raw (seq, pc, kind, imm, before, after) tuples, the last ones only;
        # TrapRecords are made at the end, and the count says what was dropped
        keep = cpu.max_calls if cpu.trace else RECENT_CALLS
        self.records: deque[_Raw] = deque(maxlen=keep)
        self.seq = itertools.count()
        self.stopped_by: str | None = None
        self.exit_status: int | None = None
        self.fault: Fault | None = None
        self.mem_fault: tuple[str, int] | None = None
        self.imm_cache: dict[int, int] = {}

        # C-level batch register access, arrays allocated once. The functions are
        # looked up afresh, without the binding's argtypes: converting arguments
        # through those prototypes costs more than the calls themselves.
        lib = ctypes.CDLL(uclib._name)
        self._uch = ctypes.c_void_p(uc._uch.value)
        self._read_batch = lib.uc_reg_read_batch
        self._write_batch = lib.uc_reg_write_batch
        # X0..X17 live in one array that the model works on in place and that
        # is read and written back whole (a native call sanitises X8..X17).
        self._regs = (ctypes.c_uint64 * NUM_REGS)()
        self._pc = ctypes.c_uint64()
        base = ctypes.addressof(self._regs)
        read = [(a64.UC_ARM64_REG_X0 + i, base + 8 * i) for i in range(NUM_REGS)]
        read.append((a64.UC_ARM64_REG_PC, ctypes.addressof(self._pc)))
        self._n_read = ctypes.c_int(len(read))
        self._read_ids = (ctypes.c_int * len(read))(*[r for r, _ in read])
        self._read_ptrs = (ctypes.c_void_p * len(read))(*[a for _, a in read])
        self._n_write = ctypes.c_int(NUM_REGS)
        self._write_ids = self._read_ids
        self._write_ptrs = self._read_ptrs
        self.internal_error: BaseException | None = None
        self._hook: Any = None  # the compiled hook, where it serves
        self._add_intr_hook(uc)
        uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED, self._on_unmapped)

    # -- hooks ----------------------------------------------------------------
    def _add_intr_hook(self, uc: Uc) -> None:
        """Register the exception hook with the engine directly: the compiled
        one (_vcpu.c) where it was built, the Python one otherwise."""
        if self.cpu.compiled:
            fn = [ctypes.cast(f, ctypes.c_void_p).value for f in (
                self._read_batch, self._write_batch, uclib.uc_mem_read, uclib.uc_emu_stop)]
            self._hook = _vcpu.Hook(fn, (a64.UC_ARM64_REG_X0, a64.UC_ARM64_REG_PC), self._regs,
                                    self.cpu.handler.handle, self.records.append,
                                    self._on_action, self._on_other)  # fmt: skip
            self._register(self._hook.callback, self._hook.data)
        else:
            self._intr_cb = self._python_hook()  # kept alive as long as the run
            self._register(ctypes.cast(self._intr_cb, ctypes.c_void_p).value, None)

    def _register(self, callback: int | None, data: int | None) -> None:
        handle = ctypes.c_size_t()
        status = uclib.uc_hook_add(
            self.uc._uch, ctypes.byref(handle), unicorn.UC_HOOK_INTR, ctypes.c_void_p(callback),
            ctypes.c_void_p(data), ctypes.c_uint64(1), ctypes.c_uint64(0),
        )  # fmt: skip
        if status != unicorn.UC_ERR_OK:
            raise UcError(status)

    def _python_hook(self) -> Any:
        """The exception hook in Python, the reference for the compiled one.

        HVC and SMC take the hot path inline, with everything it touches bound
        to locals: registers in (one batch call), the model on the register
        array in place, registers out (one batch call), a raw record kept. The
        binding's own hook wrapper would add three Python frames per trap.
        """
        uc, read, write = self.uc, self._read_batch, self._write_batch
        uch, pc_value, regs = self._uch, self._pc, self._regs
        r_ids, r_ptrs, r_n = self._read_ids, self._read_ptrs, self._n_read
        w_ids, w_ptrs, w_n = self._write_ids, self._write_ptrs, self._n_write
        model = self.cpu.handler.handle
        cache, insn, record, seq = self.imm_cache, self._insn, self.records.append, self.seq
        other = self._on_other
        copy = memoryview(regs).cast("B").tobytes  # a third of bytes(regs)'s cost

        def on_intr(_handle: int, intno: int, _key: int) -> None:
            try:
                if intno in (EXCP_HVC, EXCP_SMC):
                    read(uch, r_ids, r_ptrs, r_n)
                    pc = pc_value.value - 4
                    imm = cache.get(pc)
                    if imm is None:
                        imm = cache[pc] = insn(pc) >> 5 & 0xFFFF
                    kind: Kind = "hvc" if intno == EXCP_HVC else "smc"
                    before = copy()
                    # the ctypes array does what the model asks of a register
                    # list: indexing and slice assignment of ints
                    action = model(regs, kind, imm, 0, pc)  # type: ignore[arg-type]
                    write(uch, w_ids, w_ptrs, w_n)
                    record((next(seq), pc, kind, imm, before, copy()))
                    if action is not None:
                        self._on_action(action)
                else:
                    other(intno)
            except BaseException as e:  # an error of ours, not the guest's
                self.internal_error = e
                uc.emu_stop()

        return _INTR_CALLBACK(on_intr)

    def _on_action(self, action: Action) -> None:
        """What a PSCI call asks of the one vCPU there is: SYSTEM_OFF ends the
        run with status 0, a reset with RESET_STATUS, CPU_OFF with none."""
        if action.kind == "system_off":
            self.exit_status = 0
            self._stop("poweroff")
        elif action.kind == "system_reset":
            self.exit_status = RESET_STATUS
            self._stop("reset")
        elif action.kind == "cpu_off":
            self._stop("cpu-off")

    def _on_other(self, intno: int) -> None:
        """Every exception but HVC and SMC: semihosting, BRK, faults."""
        uc = self.uc
        if intno == EXCP_UDEF:
            pc = uc.reg_read(a64.UC_ARM64_REG_PC)
            if self._insn(pc) == SEMIHOSTING_HLT:
                self._semihost(pc)
            else:
                self._stop_fault(
                    "undefined-instruction",
                    pc,
                    None,
                    f"undefined instruction {self._insn(pc):#010x}",
                )
        elif intno == EXCP_BKPT:
            self.exit_status = uc.reg_read(a64.UC_ARM64_REG_X0)  # whole: 0x100 is not 0
            self._stop("brk")
        elif intno == EXCP_SWI:
            pc = uc.reg_read(a64.UC_ARM64_REG_PC) - 4
            self._stop_fault("svc", pc, None, "SVC: no operating system behind this guest")
        else:
            pc = uc.reg_read(a64.UC_ARM64_REG_PC)
            self._stop_fault("exception", pc, None, f"CPU exception {intno}")

    def _on_unmapped(
        self, uc: Uc, access: int, address: int, size: int, value: int, _d: object
    ) -> bool:
        kind = {
            unicorn.UC_MEM_READ_UNMAPPED: "unmapped-read",
            unicorn.UC_MEM_WRITE_UNMAPPED: "unmapped-write",
            unicorn.UC_MEM_FETCH_UNMAPPED: "unmapped-fetch",
        }.get(access, "unmapped-access")
        self.mem_fault = (kind, address)
        return False

    # -- semihosting ----------------------------------------------------------
    def _semihost(self, pc: int) -> None:
        uc = self.uc
        op = uc.reg_read(a64.UC_ARM64_REG_X0) & smccc.MASK32
        arg = uc.reg_read(a64.UC_ARM64_REG_X1)
        try:
            result = self.semihosting.call(op, arg)
        except UcError:
            why = f"semihosting call {op:#x} points at unmapped memory {arg:#x}"
            self._stop_fault("semihosting", pc, arg, why)
            return
        except Unsupported as e:
            self._stop_fault("semihosting", pc, None, str(e))
            return
        if result is not None:
            uc.reg_write(a64.UC_ARM64_REG_X0, result & smccc.MASK64)
        if self.semihosting.exit_status is not None:
            self.exit_status = self.semihosting.exit_status
            self._stop("semihosting-exit")
        else:
            uc.reg_write(a64.UC_ARM64_REG_PC, pc + 4)

    # -- stopping -------------------------------------------------------------
    def _insn(self, pc: int) -> int:
        word: int = struct.unpack("<I", self.uc.mem_read(pc, 4))[0]
        return word

    def _stop(self, why: str) -> None:
        self.stopped_by = why
        self.uc.emu_stop()

    def _stop_fault(self, kind: str, pc: int, address: int | None, message: str) -> None:
        self.fault = Fault(kind, pc, address, message)
        self._stop("fault")

    def _emulate(self) -> None:
        """The engine runs on a thread of its own (it lets go of the GIL), so
        that Ctrl-C reaches this one at once, stops the engine, and ends the
        whole command rather than becoming the guest's fault."""
        cpu, error, done = self.cpu, [], threading.Event()

        def run() -> None:
            try:
                self.uc.emu_start(
                    self.image.entry,
                    0xFFFF_FFFF_FFFF_FFFC,
                    # at least a microsecond: the engine reads 0 as no limit
                    timeout=max(1, math.ceil(cpu.timeout * 1_000_000)),
                    count=cpu.max_instructions,
                )
            except UcError as e:
                error.append(e)
            finally:
                done.set()

        # waited for with an Event, not Thread.join: a join that Ctrl-C
        # interrupts can mark a running thread stopped (CPython 3.11)
        engine = threading.Thread(target=run, name="gunyah-vcpu", daemon=True)
        try:
            engine.start()
            while not done.wait(0.25):
                pass
        except BaseException:
            # Ctrl-C, wherever it lands: the engine is stopped and waited for
            # before anything else runs (a stop asked before it started is
            # asked again), so it never outlives this call
            while engine.is_alive() and not done.wait(0.05):
                self.uc.emu_stop()
            raise
        if error:
            raise error[0]

    def _waits_for_interrupt(self, pc: int) -> bool:
        """Whether the engine stopped on a WFI (it does, having no interrupts)."""
        try:
            return pc >= 4 and self._insn(pc - 4) == WFI
        except UcError:
            return False

    def go(self) -> RunResult:
        cpu = self.cpu
        started = time.monotonic()
        attach = getattr(cpu.handler, "attach_memory", None)  # a model that copies
        if attach is not None:
            attach(EngineMemory(self.uc))
        try:
            self._emulate()
        except UcError as e:
            pc = self.uc.reg_read(a64.UC_ARM64_REG_PC)
            if self.mem_fault is not None:
                kind, address = self.mem_fault
                what = kind.replace("unmapped-", "")
                self.fault = Fault(kind, pc, address, f"{what} of unmapped address {address:#x}")
            else:
                self.fault = Fault("exception", pc, None, f"the CPU stopped: {e}")
            self.stopped_by = "fault"
        finally:
            if attach is not None:
                attach(None)  # the model keeps nothing of a run's engine
        if self._hook is not None and self._hook.error is not None:
            self.internal_error = self._hook.error
        if self.internal_error is not None:
            err = self.internal_error
            pc = self.uc.reg_read(a64.UC_ARM64_REG_PC)
            self.fault = Fault("internal-error", pc, None, f"{type(err).__name__}: {err}")
            self.stopped_by = "fault"
        if self.stopped_by is None:
            pc = self.uc.reg_read(a64.UC_ARM64_REG_PC)
            if self._waits_for_interrupt(pc):
                self.stopped_by = "wfi"
                self.fault = Fault("wfi", pc - 4, None, "WFI: the guest waits for an interrupt, "
                                   "and this vCPU has none to give")  # fmt: skip
            elif time.monotonic() - started >= cpu.timeout * 0.95:
                self.stopped_by = "timeout"
                self.fault = Fault("timeout", pc, None, f"still running after {cpu.timeout:g} s")
            else:
                self.stopped_by = "budget"
                self.fault = Fault(
                    "budget", pc, None, f"ran out of its {cpu.max_instructions} instructions"
                )
        records = [
            TrapRecord(pc, kind, imm, _UNPACK(before), _UNPACK(after)[:RESULT_REGS], cpu=0)
            for _, pc, kind, imm, before, after in self.records
        ]
        total = self.records[-1][0] + 1 if self.records else 0
        return RunResult(
            stopped_by=self.stopped_by,
            exit_status=self.exit_status,
            fault=self.fault,
            output=self.semihosting.output.decode("utf-8", "replace"),
            calls=records if cpu.trace else [],
            recent=records[-RECENT_CALLS:],
            calls_dropped=total - len(records) if cpu.trace else 0,
            output_dropped=self.semihosting.output_dropped,
        )


def _align_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align
