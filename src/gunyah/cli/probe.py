"""`gunyah probe`: a read-only look at this machine, or a captured one."""

from __future__ import annotations

import argparse
import os
from typing import Any

from .. import render
from .common import (
    EXIT_OK,
    UsageError,
    add_json,
    emit,
)


def cmd_probe(args: argparse.Namespace) -> int:
    from .. import probe
    from ..probe import collector

    if args.collector:
        print(collector.script(), end="")
        return EXIT_OK
    if args.capture is not None and not args.capture:
        raise UsageError("--capture needs a file name, not ''")
    if args.capture and os.path.lexists(args.capture):
        raise UsageError(f"{args.capture}: already exists; the capture never replaces a file")
    if args.adb is not None:  # (after the checks: a device is asked nothing in vain)
        return _over_adb(args)
    ran: bytes | None = None
    if args.active:
        if args.root != "/":
            raise UsageError("--active asks this system's /dev/gunyah (or a device's, with "
                             "--adb): it cannot go with --root; a capture taken with "
                             "--active keeps its answers")  # fmt: skip
        from ..probe.active import ActiveError, run_here

        try:
            ran = run_here()
        except ActiveError as e:
            raise UsageError(str(e)) from None
    try:
        report = probe.probe(args.root, ran)
    except ValueError as e:
        raise UsageError(str(e)) from None
    if args.capture:
        try:
            probe.write_capture(report, args.capture)
        except FileExistsError:
            raise UsageError(
                f"{args.capture}: already exists; the capture never replaces a file"
            ) from None
        except OSError as e:
            raise UsageError(
                f"{args.capture}: cannot write the capture: {e.strerror or e}"
            ) from None
    data = report.to_dict()
    if args.detect_virt:  # systemd-detect-virt's convention: 0 when virtualised
        print(data["detect_virt"])
        return EXIT_OK if data["detect_virt"] != "none" else 1
    emit(args, data, render.probe_report(data))
    if args.capture and not args.json:
        print(f"Evidence written to {args.capture}; read it back with --root {args.capture}")
    return EXIT_OK if report.verdict in probe.GUNYAH_VERDICTS else 1


def _over_adb(args: argparse.Namespace) -> int:
    """The collector on the device, its tar probed here as --root would."""
    import tempfile

    from ..probe import collector

    if args.root != "/":
        raise UsageError("--adb probes the device: it cannot go with --root")
    try:
        tar = collector.over_adb(args.adb or None, active=args.active)
    except collector.CollectorError as e:
        raise UsageError(str(e)) from None
    with tempfile.TemporaryDirectory(prefix="gunyah-adb-") as tmp:
        path = os.path.join(tmp, "device.tar")
        with open(path, "wb") as f:
            f.write(tar)
        args.root, args.adb, args.active = path, None, False
        return cmd_probe(args)


def register(sub: Any) -> None:
    p = sub.add_parser(
        "probe",
        help="look at this machine (read-only): under Gunyah, hosting it, or neither?",
        description="Gather, without changing anything, what this Linux or Android system "
        "shows about its hypervisor: the device tree's /hypervisor node and its children, "
        "/sys/hypervisor, /dev/gunyah, Gunyah modules and drivers, the Gunyah driver's "
        "kernel log lines, the CPU implementer, DMI, the kernel version (and, only with "
        "--active, what /dev/gunyah answers when asked to create a VM). Verdict: "
        "gunyah-host, gunyah-guest, other-hypervisor or no-evidence. Exit status: 0 for a "
        "Gunyah verdict, 1 otherwise, 2 bad usage.",
    )
    p.add_argument(
        "--root",
        default="/",
        metavar="DIR",
        help="read the system tree rooted at DIR, or a capture file, instead of /",
    )
    p.add_argument(
        "--capture",
        metavar="FILE",
        help="also write what was read to FILE (a tar; .gz compresses) for a bug "
        "report; --root FILE reads it back",
    )
    p.add_argument("--adb", nargs="?", const="", metavar="SERIAL",
                   help="probe an Android device from this PC: the collector runs on it "
                   "through adb (nothing is installed), and what it gathered is read here")
    p.add_argument("--collector", action="store_true",
                   help="print the collector (POSIX sh, toybox or busybox) to run on a "
                   "device by hand: 'sh collector.sh > out.txt' there, then 'gunyah probe "
                   "--root out.txt' here")
    p.add_argument("--detect-virt", action="store_true",
                   help="print one identifier as systemd-detect-virt does (gunyah, kvm, "
                   "pkvm, geniezone, xen, ..., vm-other, none) and exit 0 when it is not "
                   "none")  # fmt: skip
    from ..probe.active import CREATE_VM

    ioctls = ", ".join(f"{c.abi} {c.name} {c.number:#x}" for c in CREATE_VM)
    p.add_argument("--active", action="store_true",
                   help="the one check that changes something, never by default: ask "
                   f"/dev/gunyah to create a VM with each driver generation's ioctl ({ioctls}) "
                   "and destroy it at once, and report which answered and how; here on "
                   "arm64 Linux, or on the device with --adb")  # fmt: skip
    add_json(p)
    p.set_defaults(func=cmd_probe)
