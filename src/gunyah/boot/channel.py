"""The host side of the shim's channel: one FIFO pair a vCPU, one thread
each, every call answered by the same `Hypervisor` everything else uses.

Why FIFOs over semihosting: the shim runs with the MMU off and no drivers,
and Arm semihosting (`hlt #0xf000`, which QEMU serves from EL2) gives it
open/read/write of host files for a few instructions. A call is two
semihosting operations (write the request, read the answer); a pair per
vCPU means two vCPUs' operations can never interleave on one pipe, and
the vCPU simply blocks in QEMU while the host answers. The host opens both
ends read-write, so neither side's open ever blocks and a record is never
cut short by the other side closing.

The records (24 little-endian 64-bit words each way) are declared in
shim/shim.h; `REQUEST`/`RESPONSE` below are the same layout.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..conduit import NUM_REGS, RESULT_REGS, Action, Kind, TrapRecord
from ..model import Hypervisor
from ..model.psci import mpidr_of

HEADER_WORDS = 6
RECORD = struct.Struct(f"<{HEADER_WORDS + NUM_REGS}Q")  # request and response alike
REQ_HVC, REQ_SMC, REQ_FAULT, REQ_STOP = 0, 1, 2, 0xFFFF  # REQ_STOP: ours, to end a thread
ACTIONS = {None: 0, "cpu_on": 1, "cpu_off": 2, "system_off": 3, "system_reset": 4}
MAX_CALLS = 10_000  # calls kept (the last ones); the rest are counted


@dataclass(frozen=True)
class ShimFault:
    """An exception the shim did not expect, as it reported it."""

    cpu: int
    pc: int
    esr: int
    far: int
    at_el2: bool

    def describe(self) -> str:
        where = "in the shim (EL2)" if self.at_el2 else "from the kernel (EL1)"
        return (f"unexpected exception {where} on vCPU {self.cpu}: ESR {self.esr:#x} "
                f"at pc {self.pc:#x}, FAR {self.far:#x}")  # fmt: skip


class Channel:
    """FIFOs <prefix>N.req / <prefix>N.resp for vCPUs 0..cpus-1, served by
    threads until `close`."""

    def __init__(self, directory: Path, hyp: Hypervisor, cpus: int) -> None:
        self.prefix = str(directory / "ch")
        self.hyp = hyp
        self.cpus = cpus
        self.lock = threading.Lock()
        self.calls: deque[TrapRecord] = deque(maxlen=MAX_CALLS)
        self.call_count = 0
        self.actions: list[Action] = []
        self.fault: ShimFault | None = None
        self.error: BaseException | None = None  # an error of ours, on a serving thread
        self.ended = threading.Event()  # SYSTEM_OFF, a reset or a shim fault was served
        self._fds: list[tuple[int, int]] = []
        self._threads: list[threading.Thread] = []
        try:
            for cpu in range(cpus):
                req, resp = f"{self.prefix}{cpu}.req", f"{self.prefix}{cpu}.resp"
                os.mkfifo(req, 0o600)
                os.mkfifo(resp, 0o600)
                self._fds.append((os.open(req, os.O_RDWR), os.open(resp, os.O_RDWR)))
        except BaseException:
            self._close_fds()
            raise
        for cpu, (req_fd, resp_fd) in enumerate(self._fds):
            t = threading.Thread(target=self._serve, args=(cpu, req_fd, resp_fd), daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def calls_dropped(self) -> int:
        return self.call_count - len(self.calls)

    def _serve(self, cpu: int, req_fd: int, resp_fd: int) -> None:
        try:
            while True:
                data = _read_exact(req_fd, RECORD.size)
                words = RECORD.unpack(data)
                kind = words[1]
                if kind == REQ_STOP:
                    return
                os.write(resp_fd, self._answer(cpu, words))
        except BaseException as e:  # reported by whoever runs the boot
            self.error = e
            self.ended.set()

    def _answer(self, cpu: int, words: tuple[int, ...]) -> bytes:
        _, kind, imm, pc, esr, far = words[:HEADER_WORDS]
        regs = list(words[HEADER_WORDS:])
        if kind == REQ_FAULT:
            self.fault = ShimFault(cpu, pc, esr, far, bool(imm))
            self.ended.set()
            return RECORD.pack(*([0] * HEADER_WORDS), *regs)
        conduit: Kind = "smc" if kind == REQ_SMC else "hvc"
        before = tuple(regs)
        with self.lock:
            action = self.hyp.handle(regs, conduit, imm, cpu)
            self.call_count += 1
            self.calls.append(TrapRecord(pc, conduit, imm, before, tuple(regs[:RESULT_REGS])))
            if action is not None:
                self.actions.append(action)
        header = [ACTIONS[action.kind if action else None], 0, 0, 0, 0, 0]
        if action is not None and action.kind == "cpu_on":
            header[1:5] = [action.cpu, mpidr_of(action.cpu), action.entry, action.context]
        if action is not None and action.kind in ("system_off", "system_reset"):
            self.ended.set()
        return RECORD.pack(*header, *regs)

    def close(self) -> None:
        """Stop the serving threads and close the FIFOs (QEMU has exited)."""
        stop = RECORD.pack(0, REQ_STOP, *([0] * (RECORD.size // 8 - 2)))
        for (req_fd, _), t in zip(self._fds, self._threads, strict=True):
            if t.is_alive():
                with contextlib.suppress(OSError):
                    os.write(req_fd, stop)
        for t in self._threads:
            t.join(timeout=5)
        self._close_fds()

    def _close_fds(self) -> None:
        for req_fd, resp_fd in self._fds:
            os.close(req_fd)
            os.close(resp_fd)
        self._fds = []


def _read_exact(fd: int, n: int) -> bytes:
    parts, left = [], n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            raise EOFError("the channel closed mid-record")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)
