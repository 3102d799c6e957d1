"""QEMU's serial output during a boot, read line by line within fixed bounds:
the lines a boot ends on (a panic, a power-down: their texts come from
gunyah.triage.console), init's verdict, the guest's capture, and each
module's log.

Why bounded: what the guest prints is the guest's choice. A line is cut at
MAX_LINE bytes, the lines kept take at most MAX_CONSOLE bytes (the oldest go
first), the capture at most MAX_CAPTURE, and only lines carrying the boot's
nonce give a verdict or a capture."""

from __future__ import annotations

import base64
import binascii
import re
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from ..triage.console import console_text
from . import initramfs

MAX_LINE = 4096  # bytes of one console line; the rest of it is dropped
MAX_CONSOLE = 4 << 20  # bytes of Python memory the console kept may take
MAX_CAPTURE = 16 << 20  # bytes of base64 the guest's capture may take
PANIC = console_text("panic")
PANIC_END = console_text("panic-end")
POWER_DOWN = console_text("power-down")
# our VMM relays a secondary's console as lines of its own (src/gunyah/vmm/vmm.c):
# a secondary Linux's panic or power-down there ends nothing of the primary's boot
SECONDARY_CONSOLE = "vmm: console "
_STAMP = re.compile(r"^\[\s*\d+\.\d+\] ")


class Console:
    """QEMU's serial output, line by line, kept within MAX_CONSOLE bytes (the
    oldest lines go first); it notes the lines a boot ends on, init's verdict
    (the first line with the nonce) and, when asked for, init's capture."""

    def __init__(
        self, stream: Any, nonce: str, capture: bool, wake: threading.Event | None = None
    ) -> None:
        self.wake = wake or threading.Event()  # set on a line a boot may end on, and at the end
        self.lines: deque[str] = deque()
        self.kept = 0  # bytes the kept lines take
        self.count = 0
        self.verdict: str | None = None  # what init reported, with the nonce
        self._verdict_prefix = initramfs.verdict_prefix(nonce)
        self._markers = initramfs.capture_markers(nonce) if capture else None
        self.capture: bytearray | None = None  # the base64 between the markers
        self.capture_bytes = 0  # its bytes, each line's newline counted
        self.capture_done = False
        self.capture_overflow = False
        self.panic_at: float | None = None
        self.panic_ended = False
        self.power_down_at: float | None = None
        self.thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self.thread.start()

    def _read(self, stream: Any) -> None:
        buf = b""
        while True:
            chunk = stream.read1(65536) if hasattr(stream, "read1") else stream.read(65536)
            if not chunk:
                break
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                self._line(raw[:MAX_LINE])
            if len(buf) > MAX_LINE:
                self._line(buf[:MAX_LINE])
                buf = b""
        if buf:
            self._line(buf[:MAX_LINE])
        self.wake.set()

    def _line(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        now = time.monotonic()
        if line.startswith(SECONDARY_CONSOLE):
            self._keep(line)  # a secondary's console, relayed: its panic is not the primary's
            return
        if PANIC in line and self.panic_at is None:
            self.panic_at = now
            self.wake.set()
        if PANIC_END in line:
            self.panic_ended = True
            self.wake.set()
        if POWER_DOWN in line and self.power_down_at is None:
            self.power_down_at = now
            self.wake.set()
        if self._markers is not None:
            if self.capture is not None and not self.capture_done:
                if line == self._markers[1]:
                    self.capture_done = True
                elif self.capture_bytes + len(raw) + 1 <= MAX_CAPTURE:
                    self.capture += raw.rstrip(b"\r")
                    self.capture_bytes += len(raw) + 1
                else:
                    self.capture_overflow = True
                return
            if line == self._markers[0] and self.capture is None:
                self.capture = bytearray()
                return
        if self.verdict is None and line.startswith(self._verdict_prefix):
            self.verdict = line[len(self._verdict_prefix) :]
        self._keep(line)

    def _keep(self, line: str) -> None:
        self.count += 1
        cost = sys.getsizeof(line)
        self.lines.append(line)
        self.kept += cost
        while self.kept > MAX_CONSOLE:
            self.kept -= sys.getsizeof(self.lines.popleft())


def capture(console: Console) -> tuple[bytes | None, str | None]:
    """The guest's capture, decoded, or why there is none."""
    if console.capture is None:
        return None, "the guest never began sending its capture"
    if console.capture_overflow:
        return None, f"the guest's capture is over {MAX_CAPTURE >> 20} MiB"
    if not console.capture_done:
        return None, "the guest's capture was cut short"
    try:
        return base64.b64decode(bytes(console.capture), validate=True), None
    except (binascii.Error, ValueError):
        return None, "the guest's capture is not valid base64"


def module_logs(kos: list[Path], lines: list[str]) -> list[tuple[str, bool | None, list[str]]]:
    """Each module's name, whether it loaded (None: init never got to it) and
    the lines logged while it did, from init's marks on the console."""
    reports: list[tuple[str, bool | None, list[str]]] = []
    pending = [ko.name for ko in kos]
    log: list[str] = []
    started = False
    for line in lines:
        text = _STAMP.sub("", line)
        if not started:
            started = text.startswith("Run /init")
            continue
        name = None
        if text.startswith(initramfs.LOADED):
            name, loaded = text[len(initramfs.LOADED) :], True
        elif text.startswith(initramfs.FAILED):
            name, loaded = text[len(initramfs.FAILED) :], False
        if name is not None and name in pending:
            pending.remove(name)
            reports.append((name, loaded, log))
            log = []
        elif not text.startswith(initramfs.MARK):
            log.append(text)
    reports += [(name, None, []) for name in pending]
    return reports
