"""The host side of the shim's channel: a mailbox a vCPU in shared memory,
one thread each, every call answered by the same `Hypervisor` everything
else uses.

Why this shape: QEMU's RAM for the guest is a file we map too, so a request
the shim writes in its own memory (the vCPU's `struct mailbox`, shim.h) is
seen here without copying. Waiting costs the choice: after each answer the
host polls the mailbox for a short while, since a kernel's calls come in
bursts, and the shim, seeing `host_polling` set, just waits for the answer.
Otherwise the host sleeps on the vCPU's doorbell FIFO, which the shim rings
with one Arm semihosting write (`hlt #0xf000`, served by QEMU from EL2).
Each vCPU has its own mailbox and doorbell, so their calls never mix. The
host opens the FIFO read-write, so neither side's open ever blocks.

The records (24 little-endian 64-bit words each way) are declared in
shim/shim.h; `RECORD` and the `MAILBOX_*` offsets below are the same
layout, which a test holds together.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import struct
import threading
import time
from array import array
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from ..conduit import NUM_REGS, RESULT_REGS, Action, Kind, TrapRecord
from ..model import Hypervisor
from ..model.psci import mpidr_of

HEADER_WORDS = 6
RECORD = struct.Struct(f"<{HEADER_WORDS + NUM_REGS}Q")  # request and response alike
REQ_HVC, REQ_SMC, REQ_FAULT = 0, 1, 2
ACTIONS = {None: 0, "cpu_on": 1, "cpu_off": 2, "system_off": 3, "system_reset": 4}
MAX_CALLS = 10_000  # calls kept (the last ones); the rest are counted

# struct mailbox (shim.h), in 64-bit words
MAILBOX_SIZE = 0x400
REQ_SEQ, RESP_SEQ, HOST_POLLING = 0, 1, 2
REQ_AT = 4
RESP_AT = REQ_AT + RECORD.size // 8
POLL_SECONDS = 0.0005  # how long the host polls after an answer before it sleeps
WAKE_SECONDS = 0.005  # a sleeping host looks at the mailbox this often regardless


# a call as kept on the hot path: TrapRecord's fields, in order
_Raw = tuple[int, Kind, int, tuple[int, ...], tuple[int, ...]]


@dataclass(frozen=True)
class ShimFault:
    """An exception the shim did not expect, as it reported it."""

    cpu: int
    pc: int
    esr: int
    far: int
    at_el2: bool
    malformed: str | None = None  # a request the shim would never write, and why

    def describe(self) -> str:
        if self.malformed is not None:
            return f"a malformed request in vCPU {self.cpu}'s mailbox: {self.malformed}"
        where = "in the shim (EL2)" if self.at_el2 else "from the kernel (EL1)"
        return (f"unexpected exception {where} on vCPU {self.cpu}: ESR {self.esr:#x} "
                f"at pc {self.pc:#x}, FAR {self.far:#x}")  # fmt: skip


class Channel:
    """Mailboxes at `mailboxes` (an offset into the guest's RAM file) and
    doorbells <prefix>N.bell for vCPUs 0..cpus-1, served by threads until
    `close`."""

    def __init__(
        self, directory: Path, hyp: Hypervisor, cpus: int, ram: Path, mailboxes: int
    ) -> None:
        self.prefix = str(directory / "ch")
        self.hyp = hyp
        self.cpus = cpus
        self.lock = threading.Lock()
        self._raw: deque[_Raw] = deque(maxlen=MAX_CALLS)  # TrapRecords, made when asked for
        self.call_count = 0
        self.actions: list[Action] = []
        self.fault: ShimFault | None = None
        self.error: BaseException | None = None  # an error of ours, on a serving thread
        self.ended = threading.Event()  # SYSTEM_OFF, a reset or a shim fault was served
        self._stop = threading.Event()
        self._bells: list[int] = []
        self._threads: list[threading.Thread] = []
        page = mmap.ALLOCATIONGRANULARITY
        base = mailboxes - mailboxes % page
        with open(ram, "r+b") as f:
            self._map = mmap.mmap(f.fileno(), mailboxes - base + cpus * MAILBOX_SIZE, offset=base)
        self._words = memoryview(self._map).cast("Q")
        self._first = (mailboxes - base) // 8
        try:
            for cpu in range(cpus):
                bell = f"{self.prefix}{cpu}.bell"
                os.mkfifo(bell, 0o600)
                self._bells.append(os.open(bell, os.O_RDWR | os.O_NONBLOCK))
        except BaseException:
            self._close_files()
            raise
        for cpu in range(cpus):
            t = threading.Thread(target=self._serve, args=(cpu,), daemon=True)
            t.start()
            self._threads.append(t)

    @property
    def calls(self) -> list[TrapRecord]:
        """The calls kept, oldest first, as `run --trace` records them."""
        return [TrapRecord(*raw) for raw in list(self._raw)]

    @property
    def calls_dropped(self) -> int:
        return self.call_count - len(self._raw)

    def _serve(self, cpu: int) -> None:
        words, bell = self._words, self._bells[cpu]
        box = self._first + cpu * MAILBOX_SIZE // 8
        answered, polled_until = 0, 0.0
        try:
            while not self._stop.is_set():
                if words[box + REQ_SEQ] != answered:
                    answered = words[box + REQ_SEQ]
                    self._answer(cpu, words, box)
                    words[box + RESP_SEQ] = answered
                    polled_until = time.monotonic() + POLL_SECONDS
                    words[box + HOST_POLLING] = 1
                    continue
                if words[box + HOST_POLLING] and time.monotonic() < polled_until:
                    continue  # (no sleep: the shortest is the timer slack, 50 us)
                words[box + HOST_POLLING] = 0
                if words[box + REQ_SEQ] != answered:
                    continue  # it came as polling stopped
                ready, _, _ = select.select([bell], [], [], WAKE_SECONDS)
                if ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(bell, 4096)
        except BaseException as e:  # reported by whoever runs the boot
            self.error = e
            self.ended.set()

    def _answer(self, cpu: int, words: memoryview, box: int) -> None:
        """Answer the request in the mailbox at `box`: the hot path of a boot."""
        req, resp = box + REQ_AT, box + RESP_AT
        _, kind, imm, pc, esr, far = words[req : req + HEADER_WORDS].tolist()
        regs = words[req + HEADER_WORDS : req + HEADER_WORDS + NUM_REGS].tolist()
        if kind > REQ_SMC or imm > 0xFFFF:  # the mailbox is guest memory: anything can be there
            malformed = (None if kind == REQ_FAULT and imm <= 1
                         else f"kind {kind:#x}" if kind > REQ_FAULT
                         else f"immediate {imm:#x} is over 16 bits")  # fmt: skip
            self.fault = ShimFault(cpu, pc, esr, far, bool(imm), malformed)
            self.ended.set()
            words[resp] = 0
            return
        conduit: Kind = "smc" if kind == REQ_SMC else "hvc"
        before = tuple(regs)
        with self.lock:
            action = self.hyp.handle(regs, conduit, imm, cpu)
            self.call_count += 1
            self._raw.append((pc, conduit, imm, before, tuple(regs[:RESULT_REGS])))
            if action is not None:
                self.actions.append(action)
        words[resp + HEADER_WORDS : resp + HEADER_WORDS + NUM_REGS] = array("Q", regs)
        if action is None:
            words[resp] = 0
            return
        if action.kind == "cpu_on":
            words[resp + 1 : resp + 5] = array(
                "Q", [action.cpu, mpidr_of(action.cpu), action.entry, action.context]
            )
        elif action.kind in ("system_off", "system_reset"):
            self.ended.set()
        words[resp] = ACTIONS[action.kind]

    def close(self) -> None:
        """Stop the serving threads and let go of the mailboxes (QEMU has exited)."""
        self._stop.set()
        for t in self._threads:
            t.join(timeout=5)
        self._close_files()

    def _close_files(self) -> None:
        for fd in self._bells:
            os.close(fd)
        self._bells = []
        self._words.release()
        self._map.close()
