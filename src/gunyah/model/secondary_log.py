"""What the secondary VMs of one run did, as the model saw it: the VMs that
started (their IDs), how each ended (the exit type and reason the hypervisor
gave the RM), and the calls their vCPUs made to their own hypervisor in
vcpu_run, each with its VM's ID and its place among the primary's calls.

Why: a secondary's calls never reach the primary's record (the boot's
channel keeps the calls the shim traps); they are served inside the
primary's vcpu_run. `clock` says how many of the primary's calls had been
kept when one is made (the boot's channel's count), so the two records
merge in the order the calls were made. Bounded like the channel's: the
last MAX_CALLS calls and MAX_VMS VM IDs are kept, the rest counted.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from ..conduit import RESULT_REGS, Action, Kind, TrapHandler, TrapRecord

MAX_CALLS = 10_000  # as the boot's channel keeps
MAX_VMS = 64


class SecondaryLog:
    """The record; `wrap` puts it in front of a secondary VM's trap handler."""

    def __init__(self, clock: Callable[[], int] = lambda: 0) -> None:
        self.clock = clock
        self.calls: deque[tuple[int, TrapRecord]] = deque(maxlen=MAX_CALLS)
        self.call_count = 0
        self.started: list[int] = []  # the VMs whose first vCPU powered on, in order
        self.started_dropped = 0
        self.ended: dict[int, tuple[int, int]] = {}  # VMID: (exit type, reason), the first end

    @property
    def calls_dropped(self) -> int:
        return self.call_count - len(self.calls)

    def vm_started(self, vmid: int) -> None:
        if len(self.started) < MAX_VMS:
            self.started.append(vmid)
        else:
            self.started_dropped += 1

    def vm_ended(self, vmid: int, exit_type: int, reason: int) -> None:
        """The hypervisor's news of a VM's end, as it gives it to the RM
        (kept even when a persona's quirk loses it on the way)."""
        if vmid not in self.ended and len(self.ended) < MAX_VMS:
            self.ended[vmid] = (exit_type, reason)

    def wrap(self, vmid: int, handler: TrapHandler) -> TrapHandler:
        return _Recording(self, vmid, handler)

    def _keep(self, record: TrapRecord) -> None:
        self.calls.append((self.clock(), record))
        self.call_count += 1


class _Recording:
    def __init__(self, log: SecondaryLog, vmid: int, inner: TrapHandler) -> None:
        self.log, self.vmid, self.inner = log, vmid, inner

    def handle(
        self, regs: list[int], kind: Kind, imm: int, cpu: int = 0, pc: int = 0
    ) -> Action | None:
        before = tuple(regs)
        action = self.inner.handle(regs, kind, imm, cpu, pc)
        self.log._keep(TrapRecord(pc, kind, imm, before, tuple(regs[:RESULT_REGS]),
                                  cpu=cpu, vmid=self.vmid))  # fmt: skip
        return action


def merge(primary: Iterable[TrapRecord], first: int,
          secondary: Iterable[tuple[int, TrapRecord]]) -> list[TrapRecord]:  # fmt: skip
    """The primary's calls (numbered from `first`, the ones dropped before
    them) and the secondaries' (each made while the primary's call of its
    number was being served: vcpu_run), in the order they were made."""
    out: list[TrapRecord] = []
    pending = deque(secondary)
    for n, call in enumerate(primary, start=first):
        while pending and pending[0][0] <= n:
            out.append(pending.popleft()[1])
        out.append(call)
    out.extend(c for _, c in pending)
    return out
