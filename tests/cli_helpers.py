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
