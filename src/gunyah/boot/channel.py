"""The host side of the shim's channel: a mailbox a vCPU in shared memory,
one thread serving them all, every call answered by the same `Hypervisor`
everything else uses.

Why this shape: QEMU's RAM is a shared memory file we map too, so a request
the shim writes in its own memory (the vCPU's `struct mailbox`, layout.py),
which the guest's stage-2 map leaves out, is seen here without copying.
Nothing else passes between shim and host: no doorbell, no host file, no
semihosting, so a guest has no path to the host but its calls. Waiting
costs the choice: after each answer the thread polls the mailboxes, since a
kernel's calls come in bursts; once they have been quiet for POLL_SECONDS it
sleeps between looks, longer the longer they stay quiet, up to
WAKE_SECONDS, so an idle guest costs the host little and a call after a
quiet spell waits at most that long.

The records (24 little-endian 64-bit words each way) and the mailbox's
offsets come from boot/layout.py, which the shim's C header is generated
from.

Interrupts: whatever the model raises in the primary VM (its VIC: the RM
queues' interrupts, vcpu_run's wake-ups) it raises inside some call of the
primary's, since the RM and every secondary VM run only inside the
primary's calls; so each answer carries the interrupt IDs raised meanwhile
(the response's `irqs` word), and the shim sets them pending before the
guest resumes.
"""

from __future__ import annotations

import mmap
import struct
import threading
import time
from array import array
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from .. import psci
from ..abi.calls import HYPERCALL_NUMBERS, hypercall_id, native_imm
from ..conduit import NUM_REGS, RESULT_REGS, Action, Kind, TrapRecord
from ..mem import Translation
from ..model import Hypervisor
from ..model.psci import mpidr_of
from . import layout
from .stage2 import Stage2

try:  # the compiled serving loop, built at install where there is a C compiler
    from .. import _mailbox
except ImportError:  # pragma: no cover - depends on the install
    _mailbox = None  # type: ignore[assignment]

HEADER_WORDS = layout.HEADER_WORDS
RECORD = layout.RECORD  # request and response alike
REQ_HVC, REQ_SMC, REQ_FAULT = layout.REQ_HVC, layout.REQ_SMC, layout.REQ_FAULT
REQ_RESULT, REQ_WAIT, REQ_WOKE = layout.REQ_RESULT, layout.REQ_WAIT, layout.REQ_WOKE
REQ_TICK = layout.REQ_TICK
IRQS_AT = layout.RESPONSE_IRQS  # the response's irqs word
IRQ_MAX = (1 << layout.IRQ_BITS) - 1
ACTIONS = layout.ACTIONS
MAX_CALLS = 10_000  # calls kept (the last ones); the rest are counted
MAX_ACTIONS = 1_000  # actions kept (the last ones); the rest are counted

# struct mailbox, in 64-bit words
MAILBOX_SIZE = layout.MAILBOX_SIZE
REQ_SEQ, RESP_SEQ = layout.MAILBOX_REQ_SEQ, layout.MAILBOX_RESP_SEQ
REQ_AT = layout.MAILBOX_REQ
RESP_AT = layout.MAILBOX_RESP
MMU_AT = layout.MAILBOX_MMU  # struct translation: SCTLR, TCR, TTBR0, TTBR1 (EL1)
RUN_SEQ, EXIT_SEQ = layout.MAILBOX_RUN_SEQ, layout.MAILBOX_EXIT_SEQ  # the world switch's
WORLD_AT = layout.MAILBOX_WORLD  # struct world: context, vttbr, flush, kick, slice_us
WAKE_AT = layout.MAILBOX_WAKE_AT  # the counter value an idle CPU wakes at, 0 none
_unpack, _pack = RECORD.unpack, RECORD.pack_into
POLL_SECONDS = 0.0005  # how long the host polls after an answer before it sleeps
WAKE_SECONDS = 0.001  # the longest a quiet host sleeps between looks
SPINS_PER_LOOK = 64  # polls of the mailboxes between looks at the clock
RUN_SECONDS = 60.0  # the longest a secondary's run may last (the primary's tick ends it)
NESTED_SLICE_US = 1000  # the longest a run served inside another CPU's run lasts
# vcpu_run, in its native form (hvc #0x6065) and its SMCCC one (x0 0xc6008065)
_VCPU_RUN_NATIVE = native_imm(HYPERCALL_NUMBERS["vcpu_run"])
_VCPU_RUN_SMCCC = hypercall_id(HYPERCALL_NUMBERS["vcpu_run"])


# A call as kept on the hot path: bytes in a ring, not objects (objects kept
# by the thousand feed the cyclic collector, whose passes stall calls): the
# request record as the shim wrote it, then X0..X7 of the answer.
_CALL = struct.Struct(f"<{HEADER_WORDS + NUM_REGS + RESULT_REGS}Q")
_REQUEST_BYTES = RECORD.size
_KINDS: tuple[Kind, Kind] = ("hvc", "smc")


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

    def __init__(
        self, hyp: Hypervisor, cpus: int, ram_fd: int, mailboxes: int, compiled: bool = True,
        stage2: Stage2 | None = None,
    ) -> None:
        self.hyp = hyp
        # the primary's stage 2, when the shim carries it out: a call's
        # changes to it are posted before its answer
        self.stage2 = stage2
        self._handle = hyp.handle if stage2 is None else self._handle_and_post
        self.cpus = cpus
        self._ring = bytearray(MAX_CALLS * _CALL.size)  # the last MAX_CALLS calls
        self._count = array("Q", [0])  # calls kept so far (the compiled loop counts here too)
        self._actions: deque[Action] = deque(maxlen=MAX_ACTIONS)
        self.action_count = 0
        self.final: Action | None = None  # the SYSTEM_OFF or reset that ended the boot
        self._pending: dict[int, tuple[int, Action]] = {}  # CPU_ON the shim carries out, by call
        self.waiting: set[int] = set()  # vCPUs in WFI that only another vCPU could wake
        self.wait_changes = 0  # WAITs and WOKEs so far: the watcher sees the set is settled
        self.fault: ShimFault | None = None
        self._vic = hyp.vm.vic  # the interrupts raised in the primary VM, not yet delivered
        self.irq_count = 0  # interrupt IDs handed to the shim so far
        self.world_runs = 0  # a secondary's runs on the shim (world switches in and out)
        self._running: set[int] = set()  # CPUs whose secondary runs now (run_world)
        # what a REQ_TICK tells (the counter it came at): the boot's World.tick
        self.tick: Callable[[int], None] | None = None
        self.error: BaseException | None = None  # an error of ours, on the serving thread
        self.ended = threading.Event()  # news for the watcher (the console sets it too)
        self._stop = array("Q", [0])  # 1: the serving loop stops (a word the C loop reads too)
        page = mmap.ALLOCATIONGRANULARITY
        base = mailboxes - mailboxes % page
        self._map = mmap.mmap(ram_fd, mailboxes - base + cpus * MAILBOX_SIZE, offset=base)
        self._words = memoryview(self._map).cast("Q")
        self._first = (mailboxes - base) // 8
        # each CPU's mailbox, as an index into _words
        self._boxes = [self._first + cpu * MAILBOX_SIZE // 8 for cpu in range(cpus)]
        self.compiled = compiled and _mailbox is not None  # which loop serves
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def translation(self, cpu: int) -> Translation:
        """The EL1 translation registers vCPU `cpu` trapped with (its mailbox)."""
        at = self._boxes[cpu] + MMU_AT
        return Translation(*self._words[at : at + 4].tolist())

    def run_world(self, cpu: int, context: int, vttbr: int, flush: bool, kick: int = 0) -> None:
        """Run a secondary's vCPU on physical CPU `cpu`, inside the call of
        that CPU's being answered (its vcpu_run): name the context and the
        VM's VTTBR in its mailbox, bump run_seq, and wait until the shim sets
        exit_seq to it (docs/boot.md section 12); the shim first ends the
        runs on the CPUs `kick` names (a bit each: section 15). Only the
        serving thread calls it. RuntimeError when the boot stops meanwhile
        or the shim never comes back."""
        if not 0 <= cpu < self.cpus:
            raise RuntimeError(f"a secondary run on CPU {cpu}, which has no mailbox")
        box = self._boxes[cpu]
        words = self._words
        # a run served inside another's wait is short: the outer CPU's exit
        # waits for it to end (docs/boot.md section 15)
        slice_us = NESTED_SLICE_US if self._running else 0
        words[box + WORLD_AT : box + WORLD_AT + 5] = array(
            "Q", [context, vttbr, int(flush), kick, slice_us])
        seq = (words[box + RUN_SEQ] + 1) & ((1 << 64) - 1)
        words[box + RUN_SEQ] = seq  # last: the shim reads the request after it
        start = time.monotonic()
        spins = 0
        self._running.add(cpu)
        try:
            while words[box + EXIT_SEQ] != seq:
                spins += 1
                if spins < SPINS_PER_LOOK:
                    continue
                spins = 0
                if self._stop[0]:
                    raise RuntimeError("the boot ended while a secondary ran")
                self._serve_runs_meanwhile()
                quiet = time.monotonic() - start
                if quiet > RUN_SECONDS:
                    raise RuntimeError(f"no exit from a secondary in {RUN_SECONDS} s")
                if quiet > POLL_SECONDS:  # no sleep while polling, as the serving loop's:
                    time.sleep(min(WAKE_SECONDS, quiet / 4))  # a yield cost an exit 35 us
                elif len(self._running) > 1:  # but QEMU then has a vCPU thread busy a run:
                    time.sleep(0)  # the CPUs are theirs before ours
        finally:
            self._running.discard(cpu)
        self.world_runs += 1


    @property
    def call_count(self) -> int:
        return self._count[0]

    @property
    def calls(self) -> list[TrapRecord]:
        """The calls kept, oldest first, as `run --trace` records them, each
        with the primary VM's ID."""
        first = self.calls_dropped
        vmid = self.hyp.vm.vmid  # the primary's: every call the shim traps is its
        records = []
        for n in range(first, self.call_count):
            w = _CALL.unpack_from(self._ring, n % MAX_CALLS * _CALL.size)
            records.append(TrapRecord(w[3], _KINDS[w[1]], w[2], w[HEADER_WORDS : -RESULT_REGS],
                                      w[-RESULT_REGS:], cpu=w[0], vmid=vmid))  # fmt: skip
        return records

    @property
    def calls_dropped(self) -> int:
        return max(0, self.call_count - MAX_CALLS)

    @property
    def actions(self) -> list[Action]:
        """The actions kept, oldest first."""
        return list(self._actions)

    @property
    def actions_dropped(self) -> int:
        return self.action_count - len(self._actions)

    def _serve(self) -> None:
        boxes = self._boxes
        try:
            if self.compiled:
                assert _mailbox is not None
                _mailbox.serve(self._map, boxes, self._handle, self._act, self._other,
                               self._ring, self._count, self._stop, POLL_SECONDS,
                               WAKE_SECONDS, self._vic.pending, self._irqs)  # fmt: skip
            else:
                self._serve_python(boxes)
        except BaseException as e:  # reported by whoever runs the boot
            self.error = e
            self.ended.set()

    def _serve_python(self, boxes: list[int]) -> None:
        """The serving loop where the compiled one (_mailbox.c) is not built:
        the same steps, and the reference for them."""
        words = self._words
        vcpus = [(cpu, box + REQ_SEQ, box + RESP_SEQ, box) for cpu, box in enumerate(boxes)]
        stop = self._stop
        clock, sleep = time.monotonic, time.sleep
        last, spins = clock(), 0
        while True:
            for cpu, seq_at, answered_at, box in vcpus:
                # answered: its response's number is its request's (a request
                # posted before this loop began is served all the same, and
                # one a run's wait answered, run_world, is not again)
                seq = words[seq_at]
                if seq != words[answered_at]:
                    self._serve_one(cpu, box, seq)
                    last, spins = clock(), 0
            spins += 1
            if spins < SPINS_PER_LOOK:  # the clock and the stop word, now and then
                continue
            spins = 0
            if stop[0]:
                return
            quiet = clock() - last
            if quiet > POLL_SECONDS:  # (no sleep while polling: the shortest is 50 us)
                sleep(min(WAKE_SECONDS, quiet / 4))

    def set_wake_at(self, counter: int) -> None:
        """Every CPU's wake_at (docs/boot.md section 17): an idle CPU's WFI
        ends there and asks with REQ_TICK; 0, none."""
        for box in self._boxes:
            self._words[box + WAKE_AT] = counter

    def _serve_one(self, cpu: int, box: int, seq: int) -> None:
        """Answer the request numbered `seq` in CPU `cpu`'s mailbox, number
        the answer, and keep the call."""
        words = self._words
        request = self._answer(cpu, words, box)
        words[box + RESP_SEQ] = seq
        if request is not None:  # kept once the guest has its answer
            self._keep(request, (box + RESP_AT) * 8)

    def _serve_runs_meanwhile(self) -> None:
        """While a secondary runs on one CPU, another CPU's vcpu_run is
        answered here, inside the first's wait (docs/boot.md section 15):
        each CPU that asks runs its secondary vCPU at the same time, as the
        hypervisor runs each vCPU on the CPU that called for it. Only
        vcpu_run: every other call waits for the serving loop, so nothing
        else of the model changes under a run (the RM's requests, a VM's
        teardown). A CPU whose run is in flight is not asked again."""
        words = self._words
        for cpu, box in enumerate(self._boxes):
            if cpu in self._running:
                continue
            seq = words[box + REQ_SEQ]
            if seq == words[box + RESP_SEQ]:
                continue
            req = box + REQ_AT
            kind, imm, x0 = words[req + 1], words[req + 2], words[req + HEADER_WORDS]
            if kind == REQ_HVC and (imm == _VCPU_RUN_NATIVE or (
                    imm == 0 and x0 & 0xFFFF_FFFF == _VCPU_RUN_SMCCC)):  # fmt: skip
                # the model's record of whose call it serves is the outer
                # call's again afterwards: its run goes on on its own CPU
                hyp, cpu_was, pc_was = self.hyp, self.hyp.cpu, self.hyp.pc
                try:
                    self._serve_one(cpu, box, seq)
                finally:
                    hyp.cpu, hyp.pc = cpu_was, pc_was

    def _handle_and_post(
        self, regs: list[int], kind: Kind, imm: int, cpu: int = 0, pc: int = 0
    ) -> Action | None:
        """The model's answer, and what it changed of the primary's stage 2
        posted to the shim, which carries it out before the guest goes on."""
        try:
            return self.hyp.handle(regs, kind, imm, cpu, pc)
        finally:
            assert self.stage2 is not None
            self.stage2.commit()

    def _malformed(self, cpu: int, words: memoryview, req: int, why: str) -> None:
        _, _, _, pc, esr, far = words[req : req + HEADER_WORDS].tolist()
        self.fault = ShimFault(cpu, pc, esr, far, False, why)
        self.ended.set()

    def _answer(self, cpu: int, words: memoryview, box: int) -> bytes | None:
        """Answer the request in the mailbox at `box` (one read of it, one
        write of the answer); its bytes, when it was a call to keep. Only the
        serving thread calls the model, so it takes no lock."""
        req = (box + REQ_AT) * 8
        raw = self._map[req : req + _REQUEST_BYTES]  # before the guest can reuse the mailbox
        request = _unpack(raw)
        kind, imm = request[1], request[2]
        if kind > REQ_SMC or imm > 0xFFFF:
            self._other(cpu, box)
            return None
        regs = list(request[HEADER_WORDS:])
        action = self._handle(regs, _KINDS[kind], imm, cpu, request[3])
        if action is None:
            irqs = self._irqs() if self._vic.pending else 0
            _pack(self._map, req + RECORD.size, 0, 0, 0, 0, 0, irqs, *regs)
        else:
            self._act(cpu, box, regs, action)
        return raw

    def _irqs(self) -> int:
        """The response's irqs word: the oldest interrupts raised in the
        primary VM and not yet handed over, as many as one response holds
        (the rest go with the next). An ID no GIC has is dropped here; the
        shim refuses any its GIC lacks."""
        ids = [i for i in self._vic.take(layout.IRQ_SLOTS) if 0 < i <= IRQ_MAX]
        self.irq_count += len(ids)
        return layout.pack_irqs(ids)

    def _other(self, cpu: int, box: int) -> None:
        """A request that is not a call: a CPU_ON's outcome, a vCPU that
        waits with nothing to wake it or woke all the same, a fault the shim
        reports, the counter come to wake_at (REQ_TICK: the vCPUs whose
        timers fired are woken first, so that the answer carries their
        wake-up interrupts), or one the shim would never write (only the
        shim writes here, but it is checked all the same)."""
        words = self._words
        _, kind, imm, pc, esr, far = words[box + REQ_AT : box + REQ_AT + HEADER_WORDS].tolist()
        if kind == REQ_TICK and self.tick is not None:  # before the answer: what it raises
            self.tick(words[box + REQ_AT + HEADER_WORDS])
        words[box + RESP_AT] = 0
        words[box + RESP_AT + IRQS_AT] = self._irqs() if self._vic.pending else 0
        if kind == REQ_TICK:
            return
        if kind == REQ_RESULT:
            self._result(cpu, words[box + REQ_AT + HEADER_WORDS])
        elif kind == REQ_FAULT and imm <= 1:
            self.fault = ShimFault(cpu, pc, esr, far, bool(imm))
            self.ended.set()
        elif kind == REQ_WAIT or (kind == REQ_WOKE and cpu in self.waiting):
            self.wait_changes += 1
            if kind == REQ_WAIT:  # news for the watcher: perhaps none is left to run
                self.waiting.add(cpu)
                self.ended.set()
            else:
                self.waiting.discard(cpu)
        else:
            why = "a wake with no wait" if kind == REQ_WOKE else f"kind {kind:#x}" \
                if kind > REQ_FAULT else f"immediate {imm:#x} is over 16 bits"  # fmt: skip
            self._malformed(cpu, words, box + REQ_AT, why)

    def _act(self, cpu: int, box: int, regs: list[int], action: Action) -> None:
        """The answer to a call that asks for an action: its header says what."""
        self.action_count += 1
        self._actions.append(action)
        header = [ACTIONS[action.kind], 0, 0, 0, 0, self._irqs() if self._vic.pending else 0]
        if action.kind == "cpu_on":
            self._pending[cpu] = (self.call_count, action)  # the number it is kept as
            header[1:5] = [action.cpu, mpidr_of(action.cpu), action.entry, action.context]
        elif action.kind in ("system_off", "system_reset"):
            self.final = action
            self.ended.set()
        _pack(self._map, (box + RESP_AT) * 8, *header, *regs)

    def _keep(self, request: bytes, resp: int) -> None:
        """The call in the ring: its request, and X0..X7 of its answer (which
        stays in the mailbox until the next request has been answered)."""
        at = self.call_count % MAX_CALLS * _CALL.size
        ring = self._ring
        ring[at : at + _REQUEST_BYTES] = request
        regs = resp + HEADER_WORDS * 8
        ring[at + _REQUEST_BYTES : at + _CALL.size] = self._map[regs : regs + RESULT_REGS * 8]
        self._count[0] += 1

    def _result(self, cpu: int, received: int) -> None:
        """The shim carried out a CPU_ON: where QEMU would not start the vCPU,
        the model's state goes back to what it was and the trace shows what
        the guest received."""
        pending = self._pending.pop(cpu, None)
        if pending is None:
            self._malformed(cpu, self._words, self._boxes[cpu] + REQ_AT,
                            "a CPU_ON result with no CPU_ON")  # fmt: skip
            return
        call, action = pending
        if received == psci.SUCCESS:
            return
        self.hyp.power.on[action.cpu] = False
        if call >= self.calls_dropped:  # still kept: X0 after is what the guest received
            at = call % MAX_CALLS * _CALL.size + _REQUEST_BYTES
            struct.pack_into("<Q", self._ring, at, received)

    def close(self) -> None:
        """Stop the serving thread and let go of the mailboxes (QEMU has
        exited); once is enough, twice does no harm."""
        if self._map.closed:
            return
        self._stop[0] = 1
        self._thread.join(timeout=5)
        self._words.release()
        self._map.close()
