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

# What init prints; `gunyah boot` reads these lines from the console.
MARK = "gunyah-boot:"
INIT_DONE = f"{MARK} init done"
LOADED = f"{MARK} loaded "
FAILED = f"{MARK} failed to load "
CAPTURE_BEGIN = "gunyah-capture: begin"
CAPTURE_END = "gunyah-capture: end"
CAPTURE_FLAG = "capture-probe"

# What `gunyah probe` reads, gathered by the guest when /capture-probe exists
# (probe.checks: the device tree's /hypervisor, cpuinfo, modules, the kernel
# version, /sys/hypervisor, DMI, drivers, the kernel log) into a tree of plain
# files (procfs files report size 0, so they are copied with cat), then sent
# to the console as a base64 tar.gz between two marker lines.
CAPTURE = f"""if [ -e /{CAPTURE_FLAG} ]; then
    C=/capture
    for base in proc/device-tree sys/firmware/devicetree/base; do
        if [ -d "/$base/hypervisor" ]; then
            /bin/busybox mkdir -p "$C/$base"
            /bin/busybox cp -r "/$base/hypervisor" "$C/$base/"
        fi
    done
    for f in proc/cpuinfo proc/modules proc/version proc/sys/kernel/osrelease \
             sys/hypervisor/type sys/class/dmi/id/sys_vendor sys/class/dmi/id/product_name; do
        if [ -r "/$f" ]; then
            /bin/busybox mkdir -p "$C/${{f%/*}}"
            /bin/busybox cat "/$f" > "$C/$f"
        fi
    done
    set --
    for d in /sys/bus/*/drivers/*; do
        set -- "$@" "$C$d"
    done
    /bin/busybox mkdir -p "$@"
    /bin/busybox mkdir -p "$C/var/log"
    /bin/busybox dmesg > "$C/var/log/dmesg"
    echo "{CAPTURE_BEGIN}"
    /bin/busybox tar -cf - -C "$C" . 2>/dev/null | /bin/busybox gzip -c | /bin/busybox base64
    echo "{CAPTURE_END}"
fi
"""


INIT = f"""#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
while read -r m args; do
    if /bin/busybox insmod "/modules/$m" $args; then
        echo "{LOADED}$m"
    else
        echo "{FAILED}$m"
    fi
done < /modules/order
{CAPTURE}echo "{INIT_DONE}"
/bin/busybox poweroff -f
"""


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
    busybox: Path, modules: list[Path], args: dict[str, str] | None = None, capture: bool = False
) -> bytes:
    """The gzipped archive: /init, /bin/busybox, /dev/console and /modules,
    each module inserted with its `args` (by file name), if any; with
    `capture`, init also sends what the probe reads."""
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
        Entry("init", stat.S_IFREG | 0o755, INIT.encode()),
        Entry("modules", stat.S_IFDIR | 0o755),
        Entry("modules/order", stat.S_IFREG | 0o644, _order(names, args)),
    ]
    entries += [Entry(f"modules/{m.name}", stat.S_IFREG | 0o644, m.read_bytes()) for m in modules]
    if capture:
        entries.append(Entry(CAPTURE_FLAG, stat.S_IFREG | 0o644))
    return gzip.compress(_newc(entries), compresslevel=1, mtime=0)
