"""A read-only look at a machine: under Gunyah, hosting it, or neither?

`views` reads a root (a directory, never leaving it, or a capture),
`checks` looks at each place, `kernel_log` says which log lines count,
`report` adds the evidence up, `capture` writes and reads bug-report tars.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from . import capture, collector
from .capture import CaptureError, TarView
from .checks import _dt_strings, run
from .report import (
    GUNYAH_VERDICTS,
    VERDICT_GUEST,
    VERDICT_HOST,
    VERDICT_NONE,
    VERDICT_OTHER,
    Evidence,
    Report,
)
from .views import DirView, View

__all__ = [
    "GUNYAH_VERDICTS", "VERDICT_GUEST", "VERDICT_HOST", "VERDICT_NONE", "VERDICT_OTHER",
    "CaptureError", "Evidence", "Report", "View", "_dt_strings", "detect", "open_view", "probe",
    "write_capture",
]  # fmt: skip


def open_view(root: str) -> View:
    """A directory is a system tree; a file is a capture from `--capture`.
    Raises ValueError with one line that names the root."""
    if not root:
        raise ValueError("--root needs a directory or a capture file, not ''")
    try:
        if os.path.isdir(root):
            return DirView(root)
        if os.path.isfile(root):
            return _collected(root) or TarView(root)
    except OSError as e:
        raise ValueError(f"{root}: cannot read: {e.strerror or e}") from None
    if os.path.exists(root):
        raise ValueError(f"{root}: not a directory or a capture file")
    raise ValueError(f"{root}: no such directory or capture file")


def _collected(path: str) -> View | None:
    """The collector's printed output (its markers, base64 between them) as a
    capture, or None where the file is something else."""
    with open(path, "rb") as f:
        if collector.BEGIN.encode() not in f.read(4096):
            return None
        f.seek(0)
        text = f.read(collector.MAX_OUTPUT + 1)
    if len(text) > collector.MAX_OUTPUT:
        raise ValueError(f"{path}: over {collector.MAX_OUTPUT >> 20} MiB: not the "
                         "collector's output")  # fmt: skip
    try:
        tar = collector.unpack(text)
    except collector.CollectorError as e:
        raise ValueError(f"{path}: {e}") from None
    with tempfile.NamedTemporaryFile(prefix="gunyah-collected-", suffix=".tar") as t:
        t.write(tar)
        t.flush()
        try:
            view = TarView(t.name)  # read whole into memory: the file may go
        except CaptureError as e:  # named as the user named it, not by our temporary file
            raise CaptureError(str(e).replace(t.name, f"{path} (the collector's capture)")) \
                from None  # fmt: skip
    view.name = path
    return view


def probe(root: str = "/", active_output: bytes | None = None) -> Report:
    """The report on `root`; `active_output` is what the active check
    printed on that system (active.run_here), when it ran."""
    with open_view(root) as view:
        return run(view, active_output)


def detect(root: str = "/") -> dict[str, Any]:
    """What `gunyah probe --json` prints, for scripts and test suites: the
    verdict, the detect-virt identifier, the hypervisors named, the evidence."""
    return probe(root).to_dict()


def write_capture(report: Report, path: str) -> None:
    """A tar of exactly what the probe read, which `--root` reads back; an
    existing file is never replaced (FileExistsError)."""
    capture.write(path, report.root, report.read, report.unreadable, report.nodes)
