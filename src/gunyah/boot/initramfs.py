"""The guest's initramfs: a static busybox, the modules to insert, and an
init that inserts them and powers the machine off, as a gzipped cpio
archive in the kernel's "newc" format (Documentation/driver-api/early-userspace/
buffer-format.rst), written here because the format is a few fixed fields
and no well-kept Python library writes it."""

from __future__ import annotations

import gzip
import io
import stat
from dataclasses import dataclass
from pathlib import Path

from ..probe import collector
from ..probe.active import helper_path

# What init prints; `gunyah boot` reads these lines from the console. Only
# the lines that carry the boot's nonce (a secret the host makes for each
# boot and writes into /init alone) count for the verdict and the capture: a
# module's own "gunyah-verdict:" line, the command line or a later module
# cannot stand in for them.
MARK = "gunyah-boot:"
INIT_DONE = f"{MARK} init done"
LOADED = f"{MARK} loaded "
FAILED = f"{MARK} failed to load "
VERDICT = "gunyah-verdict"  # a module logs "gunyah-verdict: <verdict>"
NO_VERDICT = "none"  # what init reports when the module logged none


def verdict_prefix(nonce: str) -> str:
    """The start of init's line "gunyah-verdict-<nonce>: <verdict>"."""
    return f"{VERDICT}-{nonce}: "


def capture_markers(nonce: str) -> tuple[str, str]:
    return f"gunyah-capture: begin {nonce}", f"gunyah-capture: end {nonce}"


# What `gunyah probe` reads, gathered by the guest with the very collector
# `gunyah probe --collector` prints (probe/collector.sh), under busybox's sh
# and applets, and sent to the console between two marker lines.
# With `active`, the collector also runs `gunyah probe --active`'s program.
_CAPTURE = """$B mkdir -p /tmp
$B --install -s /bin
{active}PATH=/bin TMPDIR=/tmp $B sh /collector.sh "{begin}" "{end}"
"""
_ACTIVE = "GUNYAH_ACTIVE=$($B base64 /active.elf) "

# The first module inserted is judged when `judge` is 1: init takes the
# last "gunyah-verdict: X" it logged while it loaded (the kernel log's lines
# after those there before) and reports it with the nonce, "none" if there
# was none. dmesg -n 7: module lines reach the console whatever the
# command line's loglevel says.
_INIT = """#!/bin/busybox sh
B=/bin/busybox
$B mount -t proc proc /proc
$B mount -t sysfs sysfs /sys
$B mount -t devtmpfs devtmpfs /dev
$B dmesg -n 7
judge={judge}
while read -r m args; do
    if [ "$judge" = 1 ]; then
        before=$($B dmesg | $B wc -l)
    fi
    if $B insmod "/modules/$m" $args; then
        echo "{loaded}$m"
    else
        echo "{failed}$m"
    fi
    if [ "$judge" = 1 ]; then
        v=$($B dmesg | $B tail -n +$((before + 1)) \\
            | $B sed -n 's/.*{verdict}: \\([a-z-]*\\).*/\\1/p' | $B tail -n 1)
        echo "{prefix}${{v:-{none}}}"
        judge=0
    fi
done < /modules/order
{capture}echo "{done}"
$B poweroff -f
"""


def init_script(nonce: str, judge: bool, capture: bool, active: bool = False) -> str:
    """/init for one boot: insert the modules, report the judged one's
    verdict with the nonce, send the capture if asked (with the active check's
    answers if asked), power off."""
    begin, end = capture_markers(nonce)
    gather = _CAPTURE.format(begin=begin, end=end, active=_ACTIVE if active else "")
    return _INIT.format(
        judge=int(judge), loaded=LOADED, failed=FAILED, verdict=VERDICT,
        prefix=verdict_prefix(nonce), none=NO_VERDICT, done=INIT_DONE,
        capture=gather if capture else "",
    )  # fmt: skip


@dataclass(frozen=True)
class Entry:
    name: str
    mode: int
    data: bytes = b""
    rdev: tuple[int, int] = (0, 0)


def _newc(entries: list[Entry]) -> bytes:
    out = io.BytesIO()
    for ino, e in enumerate([*entries, Entry("TRAILER!!!", 0)], start=1):
        name = e.name.encode() + b"\0"
        fields = (ino, e.mode, 0, 0, 1, 0, len(e.data), 0, 0, *e.rdev, len(name), 0)
        out.write(b"070701" + b"".join(b"%08X" % f for f in fields) + name)
        out.write(b"\0" * (-(110 + len(name)) % 4))
        out.write(e.data)
        out.write(b"\0" * (-len(e.data) % 4))
    return out.getvalue()


def _order(names: list[str], args: dict[str, str]) -> bytes:
    for n, a in args.items():
        if "\n" in a or not n:
            raise ValueError(f"module arguments for {n!r} must be one line")
    return "".join(f"{n} {args.get(n, '')}".rstrip() + "\n" for n in names).encode()


def build(
    busybox: Path,
    modules: list[Path],
    nonce: str,
    args: dict[str, str] | None = None,
    judge: bool = True,
    capture: bool = False,
    active: bool = False,
) -> bytes:
    """The gzipped archive: /init, /bin/busybox, /dev/console and /modules,
    each module inserted with its `args` (by file name), if any, the first
    judged when `judge`; with `capture`, init also sends what the probe
    reads, and with `active` as well, runs the probe's active check first."""
    if active and not capture:
        raise ValueError("the active check's answers travel in the capture")
    names = [m.name for m in modules]
    args = args or {}
    if len(set(names)) != len(names):
        raise ValueError("two modules share a file name")
    entries = [
        Entry("dev", stat.S_IFDIR | 0o755),
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("proc", stat.S_IFDIR | 0o755),
        Entry("sys", stat.S_IFDIR | 0o755),
        Entry("bin", stat.S_IFDIR | 0o755),
        Entry("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()),
        Entry("init", stat.S_IFREG | 0o755,
              init_script(nonce, judge, capture, active).encode()),
        Entry("collector.sh", stat.S_IFREG | 0o644, collector.script().encode()),
        Entry("modules", stat.S_IFDIR | 0o755),
        Entry("modules/order", stat.S_IFREG | 0o644, _order(names, args)),
    ]
    if active:
        entries.append(Entry("active.elf", stat.S_IFREG | 0o755, helper_path().read_bytes()))
    entries += [Entry(f"modules/{m.name}", stat.S_IFREG | 0o644, m.read_bytes()) for m in modules]
    return gzip.compress(_newc(entries), compresslevel=1, mtime=0)
