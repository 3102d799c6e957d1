"""Run the `gunyah` command as a user does: the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

_SCRIPT = Path(sys.executable).parent / "gunyah"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [shutil.which("gunyah") or "gunyah"]


def gunyah(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], capture_output=True, text=True, input=stdin, timeout=timeout
    )


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
