"""Arm semihosting as the vCPU serves it: console output and exit.

Arm "Semihosting for AArch32 and AArch64": `HLT #0xF000` with the operation
in W0 and its argument block's address in X1. Served: SYS_WRITEC, SYS_WRITE0,
SYS_WRITE to handles 1 and 2, SYS_OPEN of ":tt", SYS_EXIT, SYS_EXIT_EXTENDED.
Console output is kept up to MAX_OUTPUT bytes and the rest only counted, so
a guest that writes for ever holds no more memory than that.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

SEMIHOSTING_HLT = 0xD45E0000  # HLT #0xF000
SYS_OPEN = 0x01
SYS_WRITEC = 0x03
SYS_WRITE0 = 0x04
SYS_WRITE = 0x05
SYS_EXIT = 0x18
SYS_EXIT_EXTENDED = 0x20
ADP_STOPPED_APPLICATION_EXIT = 0x20026
CONSOLE_HANDLES = {1, 2}  # stdout and stderr as SYS_OPEN(":tt") hands them out
MAX_STRING = 1 << 20
MAX_OUTPUT = 1 << 20  # bytes of console output a run keeps; the rest are counted
PAGE = 0x1000


class Unsupported(Exception):
    """An operation this vCPU does not serve."""


class Semihosting:
    """One run's semihosting state. `read(address, size)` reads guest memory
    and raises on an unmapped address (the caller reports that as a fault)."""

    def __init__(self, read: Callable[[int, int], bytes | bytearray]) -> None:
        self.read = read
        self.output = bytearray()
        self.output_dropped = 0
        self.exit_status: int | None = None  # set when the guest exits

    def call(self, op: int, arg: int) -> int | None:
        """Serves one operation; returns what goes back in X0, if anything."""
        if op == SYS_WRITEC:
            self._console(arg, 1)
            return None
        if op == SYS_WRITE0:
            self.output += self._cstring(arg, MAX_OUTPUT - len(self.output))
            return None
        if op == SYS_WRITE:
            handle, buf, length = struct.unpack("<3Q", self.read(arg, 24))
            if handle not in CONSOLE_HANDLES:
                return int(length)  # nothing written
            self._console(buf, length)
            return 0
        if op == SYS_OPEN:
            name_ptr, mode, _length = struct.unpack("<3Q", self.read(arg, 24))
            if self._cstring(name_ptr) != b":tt":
                return -1
            return 0 if mode < 4 else 1 if mode < 8 else 2
        if op in (SYS_EXIT, SYS_EXIT_EXTENDED):
            reason, subcode = struct.unpack("<2Q", self.read(arg, 16))
            # the whole status: 0x100 is not 0
            self.exit_status = subcode if reason == ADP_STOPPED_APPLICATION_EXIT else 1
            return None
        raise Unsupported(f"unsupported semihosting operation {op:#x}")

    def _console(self, address: int, length: int) -> None:
        keep = min(length, MAX_OUTPUT - len(self.output))
        if keep:
            self.output += self.read(address, keep)
        self.output_dropped += length - keep

    def _cstring(self, address: int, limit: int = MAX_STRING) -> bytes:
        """A NUL-terminated string, read a page at a time, at most `limit` bytes."""
        out = bytearray()
        limit = min(limit, MAX_STRING)
        while len(out) < limit:
            at = address + len(out)
            chunk = bytes(self.read(at, min(PAGE - at % PAGE, limit - len(out))))
            end = chunk.find(b"\0")
            if end >= 0:
                return bytes(out + chunk[:end])
            out += chunk
        return bytes(out)
