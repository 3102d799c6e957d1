"""The guest's initramfs: a static busybox, the modules to insert, and an
init that inserts them and powers the machine off, as a gzipped cpio
archive in the kernel's "newc" format (Documentation/driver-api/early-userspace/
buffer-format.rst), written here because the format is a few fixed fields
and no well-kept Python library writes it."""

from __future__ import annotations

import gzip
import io
import re
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
{run}{capture}echo "{done}"
$B poweroff -f
"""


# The user's command (`--run`), from a file of its own so that nothing in it
# is read as part of init, under busybox's sh with its applets on PATH.
RUN_SCRIPT = "run.sh"
RAN = f"{MARK} run exited "
_RUN = f"""$B mkdir -p /tmp
$B --install -s /bin
PATH=/bin TMPDIR=/tmp $B sh /{RUN_SCRIPT}
echo "{RAN}$?"
"""
MAX_FILE = 128 << 20  # bytes of one file put into the initramfs
MAX_FILES = 64
_PART = re.compile(r"[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,63}")
# what our init and its archive hold: a user's file may not replace or shadow them
_RESERVED = ("init", "bin", "dev", "proc", "sys", "modules", "collector.sh", "active.elf",
             RUN_SCRIPT)  # fmt: skip


def file_path(dest: str) -> str:
    """A user's file's place in the archive (`--initramfs-file SRC:DEST`): an
    absolute path of at most 8 plain names, none of ours; ValueError if not."""
    parts = dest.split("/")
    if (not dest.startswith("/") or not 2 <= len(parts) <= 9
            or not all(_PART.fullmatch(p) for p in parts[1:])):  # fmt: skip
        raise ValueError(f"{dest!r}: give an absolute path of plain names (letters, digits, "
                         "._+-; at most 8 deep), such as /vmm or /vm/image")  # fmt: skip
    if parts[1] in _RESERVED or parts[1] == "tmp":
        raise ValueError(f"{dest!r}: /{parts[1]} is our init's; put your files elsewhere")
    return "/".join(parts[1:])


def init_script(nonce: str, judge: bool, capture: bool, active: bool = False,
                run: bool = False) -> str:  # fmt: skip
    """/init for one boot: insert the modules, run the user's command if
    asked, report the judged one's verdict with the nonce, send the capture if
    asked (with the active check's answers if asked), power off."""
    begin, end = capture_markers(nonce)
    gather = _CAPTURE.format(begin=begin, end=end, active=_ACTIVE if active else "")
    return _INIT.format(
        judge=int(judge), loaded=LOADED, failed=FAILED, verdict=VERDICT,
        prefix=verdict_prefix(nonce), none=NO_VERDICT, done=INIT_DONE,
        capture=gather if capture else "", run=_RUN if run else "",
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
    files: tuple[tuple[str, bytes], ...] = (),
    run: str | None = None,
) -> bytes:
    """The gzipped archive: /init, /bin/busybox, /dev/console and /modules,
    each module inserted with its `args` (by file name), if any, the first
    judged when `judge`; with `capture`, init also sends what the probe
    reads, and with `active` as well, runs the probe's active check first.
    `files` go in at their absolute paths (file_path), executable; `run`, a
    shell command, runs after the modules are in."""
    if active and not capture:
        raise ValueError("the active check's answers travel in the capture")
    if len(files) > MAX_FILES:
        raise ValueError(f"at most {MAX_FILES} files go into the initramfs")
    placed = [(file_path(dest), data) for dest, data in files]
    if len({name for name, _ in placed}) != len(placed):
        raise ValueError("two files share a place in the initramfs")
    taken = {name for name, _ in placed}
    for name, data in placed:
        if any(f"{other}/" == name[: len(other) + 1] for other in taken):
            raise ValueError(f"/{name}: another file is in the place of its directory")
        if len(data) > MAX_FILE:
            raise ValueError(f"/{name}: over {MAX_FILE >> 20} MiB")
    if run is not None and ("\0" in run or len(run) > 4096):
        raise ValueError("the command to run: one text without NUL, at most 4096 characters")
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
              init_script(nonce, judge, capture, active, run is not None).encode()),
        Entry("collector.sh", stat.S_IFREG | 0o644, collector.script().encode()),
        Entry("modules", stat.S_IFDIR | 0o755),
        Entry("modules/order", stat.S_IFREG | 0o644, _order(names, args)),
    ]
    if active:
        entries.append(Entry("active.elf", stat.S_IFREG | 0o755, helper_path().read_bytes()))
    entries += [Entry(f"modules/{m.name}", stat.S_IFREG | 0o644, m.read_bytes()) for m in modules]
    if run is not None:
        entries.append(Entry(RUN_SCRIPT, stat.S_IFREG | 0o644, (run + "\n").encode()))
    dirs = {"dev", "proc", "sys", "bin", "modules"}
    for name, data in placed:
        parents = name.split("/")[:-1]
        for i in range(1, len(parents) + 1):
            d = "/".join(parents[:i])
            if d in dirs:
                continue
            dirs.add(d)
            entries.append(Entry(d, stat.S_IFDIR | 0o755))
        entries.append(Entry(name, stat.S_IFREG | 0o755, data))
    return gzip.compress(_newc(entries), compresslevel=1, mtime=0)


def secondary(init: bytes) -> bytes:
    """The initramfs `gunyah boot --vm` gives a Linux secondary: /init (the
    program given, src/gunyah/vmm/vm_init.c) and /dev/console for its
    output. Not compressed: the secondary unpacks it under TCG."""
    return _newc([
        Entry("dev", stat.S_IFDIR | 0o755),
        Entry("dev/console", stat.S_IFCHR | 0o600, rdev=(5, 1)),
        Entry("init", stat.S_IFREG | 0o755, init),
    ])  # fmt: skip
