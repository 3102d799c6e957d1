"""The host side of the shim's channel: a mailbox a vCPU in shared memory,
one thread serving them all, every call answered by the same `Hypervisor`
everything else uses.

Why this shape: QEMU's RAM is a shared memory file we map too, so a request
the shim writes in its own memory (the vCPU's `struct mailbox`, shim.h),
which the guest's stage-2 map leaves out, is seen here without copying.
Nothing else passes between shim and host: no doorbell, no host file, no
semihosting, so a guest has no path to the host but its calls. Waiting
costs the choice: after each answer the thread polls the mailboxes, since a
kernel's calls come in bursts; once they have been quiet for POLL_SECONDS it
sleeps between looks, longer the longer they stay quiet, up to
WAKE_SECONDS, so an idle guest costs the host little and a call after a
quiet spell waits at most that long.

The records (24 little-endian 64-bit words each way) are declared in
shim/shim.h; `RECORD` and the `MAILBOX_*` offsets below are the same
layout, which a test holds together.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time
from collections import deque
from dataclasses import dataclass

from .. import psci
from ..conduit import NUM_REGS, RESULT_REGS, Action, Kind, TrapRecord
from ..model import Hypervisor
from ..model.psci import mpidr_of

HEADER_WORDS = 6
RECORD = struct.Struct(f"<{HEADER_WORDS + NUM_REGS}Q")  # request and response alike
REQ_HVC, REQ_SMC, REQ_FAULT, REQ_RESULT = 0, 1, 2, 3
ACTIONS = {None: 0, "cpu_on": 1, "cpu_off": 2, "system_off": 3, "system_reset": 4}
MAX_CALLS = 10_000  # calls kept (the last ones); the rest are counted
MAX_ACTIONS = 1_000  # actions kept (the last ones); the rest are counted

# struct mailbox (shim.h), in 64-bit words
MAILBOX_SIZE = 0x400
REQ_SEQ, RESP_SEQ = 0, 1
REQ_AT = 4
RESP_AT = REQ_AT + RECORD.size // 8
_unpack, _pack = RECORD.unpack_from, RECORD.pack_into
POLL_SECONDS = 0.0005  # how long the host polls after an answer before it sleeps
WAKE_SECONDS = 0.001  # the longest a quiet host sleeps between looks
SPINS_PER_LOOK = 64  # polls of the mailboxes between looks at the clock


# a call as kept on the hot path: TrapRecord's fields, in order
_Raw = tuple[int, Kind, int, tuple[int, ...], "list[int] | tuple[int, ...]"]


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
    """Mailboxes at `mailboxes` (an offset into the guest's RAM, the shared
    memory file `ram_fd`) for vCPUs 0..cpus-1, served by one thread until
    `close`."""

    def __init__(self, hyp: Hypervisor, cpus: int, ram_fd: int, mailboxes: int) -> None:
        self.hyp = hyp
        self.cpus = cpus
        self._raw: deque[_Raw] = deque(maxlen=MAX_CALLS)  # TrapRecords, made when asked for
        self.call_count = 0
        self._actions: deque[Action] = deque(maxlen=MAX_ACTIONS)
        self.action_count = 0
        self.final: Action | None = None  # the SYSTEM_OFF or reset that ended the boot
        self._pending: dict[int, tuple[_Raw, Action]] = {}  # CPU_ON the shim carries out
        self.fault: ShimFault | None = None
        self.error: BaseException | None = None  # an error of ours, on the serving thread
        self.ended = threading.Event()  # SYSTEM_OFF, a reset or a shim fault was served
        self._stop = threading.Event()
        page = mmap.ALLOCATIONGRANULARITY
        base = mailboxes - mailboxes % page
        self._map = mmap.mmap(ram_fd, mailboxes - base + cpus * MAILBOX_SIZE, offset=base)
        self._words = memoryview(self._map).cast("Q")
        self._first = (mailboxes - base) // 8
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def calls(self) -> list[TrapRecord]:
        """The calls kept, oldest first, as `run --trace` records them."""
        return [TrapRecord(pc, kind, imm, before, tuple(after[:RESULT_REGS]))
                for pc, kind, imm, before, after in list(self._raw)]  # fmt: skip

    @property
    def calls_dropped(self) -> int:
        return self.call_count - len(self._raw)

    @property
    def actions(self) -> list[Action]:
        """The actions kept, oldest first."""
        return list(self._actions)

    @property
    def actions_dropped(self) -> int:
        return self.action_count - len(self._actions)

    def _serve(self) -> None:
        words = self._words
        boxes = [self._first + cpu * MAILBOX_SIZE // 8 for cpu in range(self.cpus)]
        answered = [0] * self.cpus
        cpus = range(self.cpus)
        clock, sleep, stop = time.monotonic, time.sleep, self._stop
        last, spins = clock(), 0
        try:
            while True:
                for cpu in cpus:
                    seq = words[boxes[cpu] + REQ_SEQ]
                    if seq != answered[cpu]:
                        answered[cpu] = seq
                        self._answer(cpu, words, boxes[cpu])
                        words[boxes[cpu] + RESP_SEQ] = seq
                        last, spins = clock(), 0
                spins += 1
                if spins < SPINS_PER_LOOK:  # the clock and the stop flag, now and then
                    continue
                spins = 0
                if stop.is_set():
                    return
                quiet = clock() - last
                if quiet > POLL_SECONDS:  # (no sleep while polling: the shortest is 50 us)
                    sleep(min(WAKE_SECONDS, quiet / 4))
        except BaseException as e:  # reported by whoever runs the boot
            self.error = e
            self.ended.set()

    def _malformed(self, cpu: int, words: memoryview, req: int, why: str) -> None:
        _, _, _, pc, esr, far = words[req : req + HEADER_WORDS].tolist()
        self.fault = ShimFault(cpu, pc, esr, far, False, why)
        self.ended.set()

    def _answer(self, cpu: int, words: memoryview, box: int) -> None:
        """Answer the request in the mailbox at `box`: the hot path of a boot
        (one read of the request, one write of the answer). Only the serving
        thread calls the model, so it takes no lock."""
        req, resp = (box + REQ_AT) * 8, (box + RESP_AT) * 8
        request = _unpack(self._map, req)
        kind, imm = request[1], request[2]
        if kind > REQ_SMC or imm > 0xFFFF:  # only the shim writes here, but check all the same
            words[box + RESP_AT] = 0
            _, _, _, pc, esr, far = request[:HEADER_WORDS]
            if kind == REQ_RESULT:
                self._result(cpu, request[HEADER_WORDS])
            elif kind == REQ_FAULT and imm <= 1:
                self.fault = ShimFault(cpu, pc, esr, far, bool(imm))
                self.ended.set()
            else:
                self._malformed(cpu, words, box + REQ_AT, f"kind {kind:#x}" if kind > REQ_FAULT
                                else f"immediate {imm:#x} is over 16 bits")  # fmt: skip
            return
        before = request[HEADER_WORDS:]
        regs = list(before)
        conduit: Kind = "smc" if kind == REQ_SMC else "hvc"
        action = self.hyp.handle(regs, conduit, imm, cpu)
        self.call_count += 1
        raw = (request[3], conduit, imm, before, regs)  # X0..X7 kept: `calls` cuts them
        self._raw.append(raw)
        if action is None:
            _pack(self._map, resp, 0, 0, 0, 0, 0, 0, *regs)
            return
        self.action_count += 1
        self._actions.append(action)
        header = [ACTIONS[action.kind], 0, 0, 0, 0, 0]
        if action.kind == "cpu_on":
            self._pending[cpu] = (raw, action)
            header[1:5] = [action.cpu, mpidr_of(action.cpu), action.entry, action.context]
        elif action.kind in ("system_off", "system_reset"):
            self.final = action
            self.ended.set()
        _pack(self._map, resp, *header, *regs)

    def _result(self, cpu: int, received: int) -> None:
        """The shim carried out a CPU_ON: where QEMU would not start the vCPU,
        the model's state goes back to what it was and the trace shows what
        the guest received."""
        pending = self._pending.pop(cpu, None)
        if pending is None:
            self._malformed(cpu, self._words, self._first + cpu * MAILBOX_SIZE // 8 + REQ_AT,
                            "a CPU_ON result with no CPU_ON")  # fmt: skip
            return
        raw, action = pending
        if received == psci.SUCCESS:
            return
        self.hyp.power.on[action.cpu] = False
        fixed = (*raw[:4], (received, *raw[4][1:RESULT_REGS]))
        for i in range(len(self._raw) - 1, -1, -1):
            if self._raw[i] is raw:
                self._raw[i] = fixed
                break

    def close(self) -> None:
        """Stop the serving thread and let go of the mailboxes (QEMU has
        exited); once is enough, twice does no harm."""
        if self._map.closed:
            return
        self._stop.set()
        self._thread.join(timeout=5)
        self._words.release()
        self._map.close()
