"""Stress runs: the long forms of properties the tests check in a few
cycles, each timed against a baseline taken in the same run.

    python bench/stress.py [--json] [--only NAME ...] [--cycles N]

`ring` fills the boot channel's call ring at its real size (MAX_CALLS, and
5 more) under the compiled serving loop and its Python reference, driven
from another process as the shim drives it; `cpu-cycle` boots the real
kernel and turns CPU 1 off and on 1000 times (the race between CPU_OFF and
CPU_ON) under two personas; `console-flood` boots it with a module that
prints 6 MiB of four-byte characters, half as much again as the console
keeps, and checks the host kept within its byte bound and the README's
memory. Each checks what the short test checks and
exits 1 when it does not hold; it prints the time per operation of the
subject and of its baseline and their ratio, which is what to compare
between machines.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from run import report  # the bench's one row printer, beside this file

HERE = Path(__file__).resolve().parent
CPU_CYCLE = HERE.parent / "tests" / "modules" / "hostile" / "cpu_cycle.c"
FLOOD = HERE.parent / "tests" / "modules" / "hostile" / "flood.c"
README_MEMORY_MIB = 400  # the README's promise for a boot, whatever the guest does
UID = [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]  # the Gunyah persona's CALL_UID
MAILBOXES = 0x1000  # the mailbox's offset in the shared memory file

# the shim's side of one mailbox, in a process of its own: N calls to
# CALL_UID (pc = the call's number), each waited for; prints its seconds
_DRIVER = """import mmap, sys, time
from array import array
from gunyah.boot import channel as c
fd, n, box = (int(a) for a in sys.argv[1:4])
words = memoryview(mmap.mmap(fd, 0)).cast("Q")
seq = words[box + c.REQ_SEQ]
req = box + c.REQ_AT
deadline = time.monotonic() + 600
start = time.perf_counter()
for i in range(n):
    words[req : req + c.HEADER_WORDS + 1] = array("Q", [0, c.REQ_HVC, 0, i, 0, 0, 0x8600FF01])
    seq += 1
    words[box + c.REQ_SEQ] = seq
    spins = 0
    while words[box + c.RESP_SEQ] != seq:
        spins += 1
        if spins % 4096 == 0 and time.monotonic() > deadline:
            sys.exit("no answer")
print(time.perf_counter() - start)
"""


class Failed(Exception):
    """A property the stress run checks did not hold."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Failed(what)


def _fill_ring(compiled: bool, calls: int) -> float:
    """Seconds per round trip for `calls` calls through one mailbox, checking
    that the channel kept the last MAX_CALLS of them, answered, and counted
    the rest."""
    from gunyah.boot import channel
    from gunyah.model import Hypervisor

    ram = os.memfd_create("stress-ram")
    try:
        os.ftruncate(ram, 1 << 16)
        ch = channel.Channel(Hypervisor("gunyah"), 1, ram, MAILBOXES, compiled)
        check(ch.compiled == compiled, "the compiled serving loop is not built")
        try:
            p = subprocess.run([sys.executable, "-c", _DRIVER, str(ram), str(calls),
                                str(MAILBOXES // 8)], pass_fds=(ram,), capture_output=True,
                               text=True, timeout=900)  # fmt: skip
            check(p.returncode == 0, f"the driver failed: {p.stderr.strip()}")
        finally:
            ch.close()
        check(ch.fault is None and ch.error is None, f"the channel stopped: {ch.fault or ch.error}")
        kept = ch.calls
        dropped = calls - channel.MAX_CALLS
        check(ch.call_count == calls and ch.calls_dropped == dropped,
              f"{ch.call_count} calls counted, {ch.calls_dropped} dropped")  # fmt: skip
        check([c.pc for c in kept] == list(range(dropped, calls)), "not the last calls kept")
        check(all(list(c.after[:4]) == UID for c in kept), "a kept call has another answer")
        return float(p.stdout) / calls
    finally:
        os.close(ram)


def bench_ring(repeat: int = 3) -> list[dict[str, Any]]:
    import timeit

    from gunyah.boot import channel
    from gunyah.model import Hypervisor

    calls = channel.MAX_CALLS + 5
    best = {True: float("inf"), False: float("inf")}
    for _ in range(repeat):  # interleaved rounds; the best of each
        for compiled in best:
            best[compiled] = min(best[compiled], _fill_ring(compiled, calls))
    hyp = Hypervisor("gunyah")

    def model_call() -> None:
        hyp.handle([0x8600FF01] + [0] * 17, "hvc", 0, 0, 0x40)

    model = min(timeit.repeat(model_call, number=20_000, repeat=7)) / 20_000
    note = f"{calls} calls, the last {channel.MAX_CALLS} kept"
    return [
        {"name": "ring-compiled", "subject": "mailbox round trip, compiled serving loop",
         "seconds": best[True], "baseline": "one model call in Python",
         "baseline_seconds": model, "ratio": best[True] / model, "target": "", "note": note},
        {"name": "ring-python", "subject": "mailbox round trip, Python serving loop",
         "seconds": best[False], "baseline": "the compiled loop's round trip",
         "baseline_seconds": best[True], "ratio": best[False] / best[True], "target": "",
         "note": note},
    ]  # fmt: skip


def _cycle_boot(persona: str, cycles: int) -> dict[str, Any]:
    from gunyah.boot.channel import MAX_ACTIONS

    with_args = ["--module-args", f"cpu_cycle=cycles={cycles}"]
    p = subprocess.run([sys.executable, "-m", "gunyah", "boot", "--smp", "2", "--persona",
                        persona, "--module", str(CPU_CYCLE), *with_args, "--json",
                        "--timeout", "600"], capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    check(bool(p.stdout), f"gunyah boot printed nothing: {p.stderr.strip()[-500:]}")
    d: dict[str, Any] = json.loads(p.stdout)
    online = f"cpu-cycle: {cycles} cycles, CPU1 online: 1"
    check(any(online in line for line in d["console"]), f"{persona}: {d['problem'] or online}")
    check(d["stopped_by"] == "poweroff", f"{persona}: stopped by {d['stopped_by']}")
    on = [c for c in d["calls"] if c["name"] == "PSCI_CPU_ON"]
    check(bool(on) and all(c["results"][0] == 0 for c in on), "a CPU_ON was refused")
    actions = 2 * cycles + 2  # CPU 1 on at boot, off and on a cycle, SYSTEM_OFF
    kept = min(actions, MAX_ACTIONS)
    check((len(d["actions"]), d["actions_dropped"]) == (kept, actions - kept),
          f"{len(d['actions'])} actions kept, {d['actions_dropped']} dropped")  # fmt: skip
    return d


def bench_cpu_cycle(cycles: int = 1000) -> list[dict[str, Any]]:
    rows = []
    for persona in ("kvm", "gunyah"):
        base = _cycle_boot(persona, 0)["boot_seconds"]
        d = _cycle_boot(persona, cycles)
        each = (d["boot_seconds"] - base) / cycles
        rows.append(
            {"name": f"cpu-cycle-{persona}", "subject": f"boot, CPU 1 off and on {cycles} times",
             "seconds": d["boot_seconds"], "baseline": "the same boot with 0 cycles",
             "baseline_seconds": base, "ratio": d["boot_seconds"] / base, "target": "",
             "note": f"{each * 1e3:.2f} ms a cycle; {d['calls_dropped']} calls not kept"}
        )  # fmt: skip
    return rows


# `gunyah boot ARGS` in a process that reports its own peak memory (not QEMU's)
_MEASURED = """import resource, sys
from gunyah.cli import main
rc = main(sys.argv[1:])
print(f"peak-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
"""


def _flood_boot(kib: int) -> tuple[dict[str, Any], int]:
    """The boot's report and the host's peak MiB with `kib` KiB flooded."""
    p = subprocess.run([sys.executable, "-c", _MEASURED, "boot", "--module", str(FLOOD),
                        "--module-args", f"flood=kib={kib}", "--json", "--timeout", "600"],
                       capture_output=True, text=True, timeout=900,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    check(p.returncode == 0, f"gunyah boot failed: {p.stderr.strip()[-500:]}")
    return json.loads(p.stdout), int(p.stderr.split("peak-kib ")[1].split()[0]) >> 10


def bench_console_flood() -> list[dict[str, Any]]:
    from gunyah.boot.console import MAX_CONSOLE

    kib = MAX_CONSOLE * 3 // 2 >> 10
    base, base_mib = _flood_boot(0)
    d, peak_mib = _flood_boot(kib)
    kept = sum(sys.getsizeof(line) for line in d["console"])
    check(kept <= MAX_CONSOLE and d["console_dropped"] > 0,
          f"{kept} bytes of console kept, {d['console_dropped']} lines dropped")  # fmt: skip
    check(peak_mib < README_MEMORY_MIB, f"the host took {peak_mib} MiB")
    return [
        {"name": "console-flood", "subject": f"boot, {kib} KiB printed by a module",
         "seconds": d["boot_seconds"], "baseline": "the same boot printing nothing",
         "baseline_seconds": base["boot_seconds"],
         "ratio": d["boot_seconds"] / base["boot_seconds"], "target": "",
         "note": f"host peak {peak_mib} MiB ({base_mib} without); {kept >> 10} KiB kept"},
    ]  # fmt: skip


BENCHES: dict[str, Callable[[], list[dict[str, Any]]]] = {
    "ring": bench_ring,
    "cpu-cycle": bench_cpu_cycle,
    "console-flood": bench_console_flood,
}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true", help="print results as JSON")
    ap.add_argument("--only", nargs="+", choices=list(BENCHES), help="run only these groups")
    ap.add_argument("--cycles", type=int, default=1000,
                    help="CPU_OFF/CPU_ON cycles of cpu-cycle (default 1000)")  # fmt: skip
    args = ap.parse_args(argv)
    runs = {**BENCHES, "cpu-cycle": lambda: bench_cpu_cycle(args.cycles)}
    started = time.monotonic()
    try:
        rows = [row for name in (args.only or BENCHES) for row in runs[name]()]
    except Failed as e:
        print(f"stress: FAILED: {e}", file=sys.stderr)
        return 1
    report(rows, args.json, width=16)
    if args.json:
        return 0
    print(f"stress: every property held ({time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
