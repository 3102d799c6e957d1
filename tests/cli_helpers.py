"""Run the `gunyah` command as a user does: the installed console script, or
its entry point in this process.

Commands that start nothing of their own (no QEMU, no compiler) run here,
through `gunyah.cli.main`, which the console script calls: the same parser,
output and exit status, without a Python start-up per call (a quarter of a
CPU-second each; the suite makes hundreds). Boots, and the tests of the
process itself (signals, closed streams, peak memory, the console script, a
bound on time), start the installed command; `GUNYAH_TEST_SUBPROCESS=1`
starts it for every call.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from gunyah.cli import main

_SCRIPT = Path(sys.executable).parent / "gunyah"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [shutil.which("gunyah") or "gunyah"]
# the commands that start no process of their own; conformance only without --kernel
IN_PROCESS = frozenset({"identify", "run", "call", "rm", "decode", "explain", "conformance",
                        "probe", "trace", "personas"})  # fmt: skip


def gunyah(
    *args: str, stdin: str | None = None, timeout: float | None = None
) -> subprocess.CompletedProcess[str]:
    """The command's run. A test that gives `timeout` is one whose point is
    that the command ends (a FIFO, a hostile file): that runs in a process
    of its own, which the timeout can stop."""
    if timeout is None and _in_process(args):
        return _run_here(args, stdin)
    return subprocess.run([*COMMAND, *args], capture_output=True, text=True, input=stdin,
                          timeout=timeout or 120)  # fmt: skip


def _in_process(args: tuple[str, ...]) -> bool:
    return (bool(args) and args[0] in IN_PROCESS and "--kernel" not in args
            and not os.environ.get("GUNYAH_TEST_SUBPROCESS"))  # fmt: skip


def _run_here(args: tuple[str, ...], stdin: str | None) -> subprocess.CompletedProcess[str]:
    """`main(args)` with its standard streams in memory, as the console script
    runs it: what sys.exit would make of its return or of a SystemExit."""
    streams = [io.TextIOWrapper(io.BytesIO(), encoding="utf-8", write_through=True)
               for _ in range(2)]  # fmt: skip
    given = io.TextIOWrapper(io.BufferedReader(io.BytesIO((stdin or "").encode())),
                             encoding="utf-8")  # fmt: skip
    saved = sys.stdin
    sys.stdin = given
    try:
        with contextlib.redirect_stdout(streams[0]), contextlib.redirect_stderr(streams[1]):
            try:
                code: Any = main(list(args))
            except SystemExit as e:
                code = e.code
            if code is not None and not isinstance(code, int):
                print(code, file=sys.stderr)
                code = 1
    finally:
        sys.stdin = saved
    out, err = (s.buffer.getvalue().decode() for s in streams)  # type: ignore[attr-defined]
    return subprocess.CompletedProcess([*COMMAND, *args], code or 0, out, err)


def gunyah_json(*args: str) -> tuple[int, Any]:
    p = gunyah(*args, "--json")
    assert p.stderr == "", p.stderr
    return p.returncode, json.loads(p.stdout)


def assert_usage_error(p: subprocess.CompletedProcess[str], fragment: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert "Traceback" not in p.stderr
    assert fragment in lines[0], lines[0]


def run_measured(
    *args: str, stdin: Any = subprocess.DEVNULL, timeout: float = 120, signal_after: float = 0
) -> tuple[int, int, str]:
    """(exit status, peak resident memory in MiB, stderr) of one `gunyah` run,
    measured by the kernel (wait4's rusage). It runs under resource limits, so
    a runaway fails its test instead of taking the machine: 3 GiB of address
    space (the CPU emulator reserves about 1 GiB of it for translated code) and
    `timeout` seconds of CPU. With `signal_after`, SIGINT is sent that many
    seconds in, as Ctrl-C would."""
    import os
    import resource
    import signal
    import tempfile
    import time

    def limits() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
        cpu = int(timeout) + 1
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))

    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen([*COMMAND, *args], stdin=stdin, stdout=subprocess.DEVNULL,
                                stderr=err, preexec_fn=limits)  # fmt: skip
        started = time.monotonic()
        signalled = False
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            elapsed = time.monotonic() - started
            if signal_after and not signalled and elapsed >= signal_after:
                proc.send_signal(signal.SIGINT)
                signalled = True
            if elapsed > timeout:
                proc.kill()
                os.wait4(proc.pid, 0)
                raise AssertionError(f"gunyah {' '.join(args)} still running after {timeout} s")
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        return proc.returncode, usage.ru_maxrss // 1024, err.read().decode()
