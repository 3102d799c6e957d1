"""What a boot reports: how it ended (gunyah.outcome's stop reasons), the exit
status that gives, why it failed in one line, and what the console, the
channel and the modules kept.

Why apart from the boot: the judging is a function of what was seen, so it
can be read, and changed, without QEMU running."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import outcome
from ..conduit import TrapRecord
from ..guest.driver import VERDICT_EXIT, VERDICTS
from ..model.secondary_log import SecondaryLog, merge
from . import initramfs, vm
from .channel import Channel
from .console import Console, capture, module_logs
from .options import BootOptions, judged


@dataclass
class ModuleReport:
    name: str
    loaded: bool | None  # None: init never got to it
    log: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "loaded": self.loaded, "log": self.log}


@dataclass
class BootResult:
    stopped_by: str  # one of gunyah.outcome.STOPS
    exit_status: int
    boot_seconds: float
    console: list[str]
    console_dropped: int
    calls: list[TrapRecord]
    calls_dropped: int
    modules: list[ModuleReport]
    verdict: str | None
    persona: str
    cpus: int
    reset_type: int | None = None
    guest_status: int | None = None  # what the guest reported: 0 for SYSTEM_OFF, or chr-testdev's
    kernel_kind: str = "linux"  # linux, elf or raw
    problem: str | None = None  # why the boot failed, in one line
    actions: list[dict[str, Any]] = field(default_factory=list)
    actions_dropped: int = 0
    capture: bytes | None = None  # the guest's tar.gz of what the probe reads
    capture_problem: str | None = None  # why there is none, when one was asked for
    halted_because: str | None = None  # for `halted`: what was left to run, in one line
    vm: dict[str, Any] | None = None  # --vm: the secondary VM, as boot.vm.report gives it

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "cpus": self.cpus,
            "exit_status": self.exit_status,
            "guest_status": self.guest_status,
            "kernel": self.kernel_kind,
            "stopped_by": self.stopped_by,
            "problem": self.problem,
            "halted_because": self.halted_because,
            "boot_seconds": round(self.boot_seconds, 3),
            "verdict": self.verdict,
            "modules": [m.to_dict() for m in self.modules],
            "console": self.console,
            "console_dropped": self.console_dropped,
            "calls_dropped": self.calls_dropped,
            "calls": [c.to_dict() for c in self.calls],
            "actions": self.actions,
            "actions_dropped": self.actions_dropped,
            "capture_bytes": None if self.capture is None else len(self.capture),
            "capture_problem": self.capture_problem,
            "vm": self.vm,
        }


def _no_verdict(console: Console) -> str:
    if console.verdict is None:
        return "init never reported the module's verdict (it did not run, or did not get that far)"
    if console.verdict == initramfs.NO_VERDICT:
        return "the module logged no 'gunyah-verdict: <verdict>' line while it loaded"
    return f"the module's verdict {console.verdict!r} is none of {', '.join(VERDICTS)}"


def _failure(stopped_by: str, channel: Channel, opts: BootOptions, stderr: str) -> str:
    """Why a boot that leaves nothing to judge failed, in one line."""
    last = stderr.strip().splitlines()[-1:] if stderr.strip() else []
    return {
        outcome.PANIC: "the kernel panicked",
        outcome.TIMEOUT: f"the guest did not power off within {opts.timeout:g} s",
        outcome.QEMU_EXIT: "QEMU exited before the guest powered off"
        + "".join(f": {ln}" for ln in last),
        outcome.INTERRUPTED: "the boot was stopped (Ctrl-C or a signal)",
        outcome.SHIM_FAULT: channel.fault.describe() if channel.fault else "",
        outcome.HOST_ERROR: f"the host side of the channel failed: {channel.error!r}",
    }.get(stopped_by, stopped_by)


def result(stopped_by: str, seconds: float, channel: Channel, console: Console,
           opts: BootOptions, kos: list[Path], stderr: str, qemu_status: int,
           log: SecondaryLog | None = None, vm_plan: vm.VmPlan | None = None
           ) -> BootResult:  # fmt: skip
    """The boot's report from what its watcher, console, channel and the
    secondaries' log saw. With --vm, a boot that would exit 0 exits
    EXIT_VM_FAILED when the VM did not power off cleanly."""
    lines = list(console.lines)
    verdict = console.verdict if console.verdict in VERDICTS else None
    problem = None
    reset_type = None
    guest_status = None
    if stopped_by == outcome.QEMU_EXIT and opts.testdev and qemu_status > 0 and qemu_status & 1:
        stopped_by, guest_status = outcome.GUEST_EXIT, qemu_status >> 1  # chr-testdev's status
    elif stopped_by == outcome.POWEROFF:
        guest_status = 0
    if stopped_by in outcome.JUDGED:
        if not judged(opts):
            status = guest_status or 0
        elif verdict is not None:
            status = VERDICT_EXIT[verdict]
        else:
            status, problem = outcome.EXIT_NO_VERDICT, _no_verdict(console)
    elif stopped_by == outcome.RESET:
        status = outcome.EXIT_RESET
        final = channel.final
        reset_type = final.reset_type if final is not None else None
    else:
        status = outcome.EXIT_GUEST_FAILED
        problem = _failure(stopped_by, channel, opts, stderr)
    capture_bytes, capture_problem = capture(console) if opts.capture else (None, None)
    channel.hyp.vms.drop_runners()  # a VM still running holds views of the RAM
    channel.close()  # its thread stopped: what it kept holds still
    halted = halted_because(channel) if stopped_by == outcome.HALTED else None
    calls, calls_dropped = channel.calls, channel.calls_dropped
    vm_report = None
    if log is not None:
        calls = merge(calls, calls_dropped, log.calls)
        calls_dropped += log.calls_dropped
    if vm_plan is not None and opts.vm is not None:
        vmid = log.started[0] if log is not None and log.started else None
        ended = log.ended.get(vmid) if log is not None and vmid is not None else None
        vm_report = vm.report(lines, vm_plan, opts.vm, vmid, ended)
        if status == outcome.EXIT_OK and not vm_report["ok"]:
            status, problem = outcome.EXIT_VM_FAILED, vm_report["problem"]
    actions, actions_dropped = channel.actions, channel.actions_dropped
    return BootResult(
        capture=capture_bytes,
        capture_problem=capture_problem,
        stopped_by=stopped_by,
        exit_status=status,
        boot_seconds=seconds,
        console=lines,
        console_dropped=console.count - len(lines),
        calls=calls,
        calls_dropped=calls_dropped,
        modules=[ModuleReport(*m) for m in module_logs(kos, lines)],
        verdict=verdict,
        persona=opts.persona,
        cpus=opts.cpus,
        reset_type=reset_type,
        guest_status=guest_status,
        problem=problem,
        actions=[a.to_dict() for a in actions],
        actions_dropped=actions_dropped,
        halted_because=halted,
        vm=vm_report,
    )


def halted_because(channel: Channel) -> str:
    """For a `halted` boot: what was left to run, in one line."""
    on = [cpu for cpu, up in enumerate(channel.hyp.power.on) if up]
    if not on:
        return "every vCPU is off"
    if set(on) <= channel.waiting:
        return (f"every vCPU that is on ({', '.join(map(str, on))}) waits in WFI with nothing "
                "to wake it: no armed timer, no interrupt the GIC would pass on")  # fmt: skip
    return "the kernel said it powers down, and the persona has no PSCI to do it with"
