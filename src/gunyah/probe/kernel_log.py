"""What the kernel itself logged about its hypervisor, and nothing else.

A log line is evidence only when it is a kernel record (not a process's
syslog message) and its message *starts* with what a driver or the kernel
prints about the hypervisor. A process called `gunyah`, a path or a command
line that contains the word is never evidence.

Where the lines come from:
- `Running under Gunyah hypervisor <variant %llx>/v<version %u>`: the Gunyah
  guest driver's banner (arch/arm64/gunyah/gunyah_hypercall.c; the later
  drivers/virt/gunyah/gunyah.c prefixes it with its pr_fmt `gunyah: `);
- `gunyah: `, `gunyah_<x>: `, `gh_<x>: ` and `misc gunyah: `: the Gunyah
  drivers' own prefixes (pr_fmt, and dev_printk's `<driver> <device>: `);
- `Hypervisor detected: <name>`: x86's arch/x86/kernel/cpu/hypervisor.c;
- `smccc: KVM: hypervisor services detected`: arm64 KVM guests
  (drivers/firmware/smccc/kvm_guest.c);
- `kvm [N]: Protected nVHE mode initialized successfully`: a host whose
  KVM runs protected (pKVM) at EL2 (arch/arm64/kvm/arm.c).

Record formats read: /dev/kmsg (`prio,seq,usec,flags;message`: only facility
0, which user space cannot write), dmesg output (`[ seconds] message`), and
syslog files (`... kernel: message`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from .. import abi

LOG_FILES = ("dev/kmsg", "var/log/dmesg", "var/log/kern.log", "var/log/messages")

_KMSG = re.compile(r"(\d{1,4}),\d{1,20},\d{1,20},[^;]{0,64};(.*)")
_DMESG = re.compile(r"\[\s{0,12}\d{1,12}\.\d{1,9}\] (.*)")
_SYSLOG = re.compile(r"\S+(?: \S+){0,5}? kernel: (?:\[\s{0,12}\d{1,12}\.\d{1,9}\] )?(.*)")

BANNER = re.compile(
    rf"(?:gunyah: )?({re.escape(abi.BANNER_PREFIX)}([0-9a-f]{{1,16}})/v(\d{{1,10}}))\s*"
)
GUNYAH_DRIVER = re.compile(
    r"(?:gunyah|gunyah_\w{1,64}|gh_\w{1,64}|misc gunyah)(?: [^:\s]{1,200})?: "
)
OTHER = (
    (re.compile(r"Hypervisor detected: (\S.{0,63}?)\s*"), None),
    (re.compile(r"smccc: KVM: hypervisor services detected\b.*"), "KVM"),
    (re.compile(r"kvm \[\d{1,6}\]: Protected nVHE mode initialized successfully\s*"), "pKVM"),
)


def kernel_message(line: str, path: str) -> str | None:
    """The kernel's message in a log line, or None where the line is not a
    kernel record (or not one this file's format can vouch for)."""
    if path == "dev/kmsg":
        m = _KMSG.fullmatch(line)
        return m.group(2) if m and int(m.group(1)) >> 3 == 0 else None
    if path == "var/log/dmesg":
        m = _DMESG.fullmatch(line)
        return m.group(1) if m else None
    m = _SYSLOG.fullmatch(line)
    return m.group(1) if m else None


@dataclass
class KernelLog:
    """The evidence one log file holds."""

    banner: str | None = None  # the banner as logged
    variant: int | None = None
    api_version: int | None = None
    gunyah_lines: list[str] = field(default_factory=list)  # every line a Gunyah driver logged
    hypervisors: list[str] = field(default_factory=list)  # hypervisors the kernel named
    other_lines: list[str] = field(default_factory=list)  # the lines that named them


def read_log(text: str, path: str) -> KernelLog:
    log = KernelLog()
    for line in text.splitlines():
        msg = kernel_message(line, path)
        if msg is None:
            continue
        banner = BANNER.fullmatch(msg)
        if banner:
            log.gunyah_lines.append(line)
            if log.banner is None:
                log.banner = banner.group(1)
                log.variant = int(banner.group(2), 16)
                log.api_version = int(banner.group(3))
            continue
        if GUNYAH_DRIVER.match(msg):
            log.gunyah_lines.append(line)
            continue
        for pattern, name in OTHER:
            m = pattern.fullmatch(msg)
            if m:
                log.hypervisors.append(name or m.group(1))
                log.other_lines.append(line)
                break
    return log
