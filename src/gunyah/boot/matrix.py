"""The conformance matrix on a real kernel: one boot per persona, in
parallel, each with its own QEMU, channel and temporary directory.

A row's observed verdict is the module's `gunyah-verdict: <verdict>` line
(our identification module's, or a user's module that logs the same line),
as our init reports it with the boot's nonce: only what the module logged
while it loaded counts, never the command line or another module. A module
that logs none, or a boot that panics, times out or fails, fails its row
with the reason and the last console lines behind it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..conformance import Row
from ..model import Persona
from . import layout, machine
from .kernel import Parts

CONSOLE_TAIL = 30  # console lines a failing row keeps
CALLS_TAIL = 200  # calls a row keeps (the last): 15 rows of 10,000 would not stay bounded
LOG_TAIL = 30  # lines of the judged module's log a row keeps (the last)
GUEST_MEMORY = layout.RAM_SIZE  # what one boot may take, at most, of the host's memory


def memory_available() -> int | None:
    """MemAvailable from /proc/meminfo, in bytes; None where it cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_jobs(jobs: int) -> str | None:
    """Why `jobs` parallel boots cannot run here, if they cannot."""
    if jobs < 1:
        return "--jobs must be at least 1"
    available = memory_available()
    if available is not None and jobs * GUEST_MEMORY > available:
        most = max(1, available // GUEST_MEMORY)
        return (f"{jobs} parallel boots need up to {jobs * GUEST_MEMORY >> 30} GiB, but "
                f"{available >> 20} MiB are available: use --jobs {most} or fewer")  # fmt: skip
    return None


def _row(label: str, persona: Persona, result: machine.BootResult) -> Row:
    calls = tuple(result.calls[-CALLS_TAIL:])
    dropped = result.calls_dropped + len(result.calls) - len(calls)
    console = tuple(result.console[-CONSOLE_TAIL:])
    if result.stopped_by in ("poweroff", "halted") and result.verdict is not None:
        observed, reason = result.verdict, None
    elif result.stopped_by in ("poweroff", "halted"):
        observed, reason = "no verdict", result.problem or "the module gave no verdict"
    else:
        observed, reason = result.stopped_by, result.problem or result.stopped_by
    log = tuple(result.modules[0].log[-LOG_TAIL:]) if result.modules else ()
    return Row(label, persona, observed, calls, reason, console, result.boot_seconds, dropped,
               stopped_by=result.stopped_by, module_log=log)  # fmt: skip


def check_kernel(personas: Iterable[Persona], opts: machine.BootOptions, parts: Parts,
                 shim: Path, jobs: int) -> list[Row]:  # fmt: skip
    """Every persona booted with `opts`, up to `jobs` at a time. Ctrl-C stops
    every boot (each kills and reaps its QEMU) before it propagates."""
    personas = list(personas)
    label = opts.modules[0].name if opts.modules else "gunyah_identify.ko"
    machine.prepare_modules(opts, parts)  # built once, before the boots share the cache
    cancel = threading.Event()

    def one(p: Persona) -> Row:
        result = machine.boot(replace(opts, persona=p.name), parts, shim, cancel)
        return _row(label, p, result)

    pool = ThreadPoolExecutor(max_workers=min(jobs, len(personas)) or 1)
    try:
        futures = [pool.submit(one, p) for p in personas]
        return [f.result() for f in futures]
    except BaseException:
        cancel.set()
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
