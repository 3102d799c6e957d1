"""The collector (collector.sh): what the probe reads, gathered by a POSIX sh
script on a device that has no Python, an Android phone over adb or a boot's
guest, and brought back as a capture.

Its output is a base64 tar.gz (or tar) between two marker lines; `unpack`
takes it out of any stream of text, bounded, and `--root` reads the result.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import io
import shutil
import subprocess
import zlib
from importlib import resources

BEGIN = "gunyah-capture: begin"
END = "gunyah-capture: end"
MAX_OUTPUT = 32 << 20  # bytes of the collector's output read, base64 and all
MAX_CAPTURE = 64 << 20  # bytes of tar it may unpack to
ADB_TIMEOUT = 120.0


class CollectorError(Exception):
    """The collector's output could not be had or read; the message says why."""


def script() -> str:
    return resources.files(__package__).joinpath("collector.sh").read_text()


def unpack(output: bytes, begin: str = BEGIN, end: str = END) -> bytes:
    """The tar between the markers of the collector's output."""
    lines = output.splitlines()
    try:
        first = lines.index(begin.encode())
        last = lines.index(end.encode(), first + 1)
    except ValueError:
        raise CollectorError("the collector's output holds no capture (did it run?)") from None
    try:
        data = base64.b64decode(b"".join(ln.strip() for ln in lines[first + 1 : last]),
                                validate=True)  # fmt: skip
    except (binascii.Error, ValueError):
        raise CollectorError("the collector's capture is not valid base64") from None
    if data[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
                data = gz.read(MAX_CAPTURE + 1)
        except (OSError, EOFError, zlib.error):
            raise CollectorError("the collector's capture is not valid gzip") from None
        if len(data) > MAX_CAPTURE:
            raise CollectorError(f"the collector's capture is over {MAX_CAPTURE >> 20} MiB")
    return data


def active_helper() -> str:
    """The active check's program as the collector takes it: GUNYAH_ACTIVE's value."""
    from .active import helper_path

    return base64.b64encode(helper_path().read_bytes()).decode()


def over_adb(serial: str | None, active: bool = False) -> bytes:
    """Run the collector on the device through `adb exec-out` (nothing pushed:
    the script, and with `active` the active check's program, travel in the
    command, base64) and return its tar."""
    adb = shutil.which("adb")
    if adb is None:
        raise CollectorError("adb is not on PATH: install Android's platform-tools")
    encoded = base64.b64encode(script().encode()).decode()
    env = f"GUNYAH_ACTIVE={active_helper()} " if active else ""
    cmd = [adb, *(["-s", serial] if serial else []), "exec-out",
           f"echo {encoded} | base64 -d | {env}sh -s"]  # fmt: skip
    try:
        p = subprocess.run(cmd, capture_output=True, timeout=ADB_TIMEOUT,
                           stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired:
        raise CollectorError(f"the device did not answer within {ADB_TIMEOUT:g} s") from None
    if len(p.stdout) > MAX_OUTPUT:
        raise CollectorError(f"the device sent over {MAX_OUTPUT >> 20} MiB")
    if p.returncode != 0 and BEGIN.encode() not in p.stdout:
        why = (p.stderr.decode("utf-8", "replace").strip().splitlines() or ["no message"])[-1]
        raise CollectorError(f"adb failed: {why}")
    return unpack(p.stdout)
