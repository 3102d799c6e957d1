"""`gunyah probe --active`: ask /dev/gunyah to create a VM with each driver
generation's ioctl and destroy it at once, and say which ABI answered and how.

The only check that changes anything, so never by default. The asking is done
by a static AArch64 program (active.c, built as active.elf from the ABI table
below) because the devices that hold /dev/gunyah have no Python: it runs here
on an arm64 Linux system, on an Android device through the collector over adb,
and in a boot's guest. What it prints is untrusted text, read here, bounded.

The create-VM ioctls, both `_IO(type, nr)` with no argument struct:
- upstream-style drivers (the gunyah_* series, include/uapi/linux/gunyah.h):
  GUNYAH_CREATE_VM = _IO('G', 0x0), earlier named GH_CREATE_VM, same number;
- Qualcomm's vendor drivers (gh_*; Android's bionic copy of their
  linux/gunyah.h): GH_CREATE_VM = _IO(0xB2, 0x01).
Either returns a new file descriptor for the VM; closing it destroys the VM.
"""

from __future__ import annotations

import errno
import os
import platform
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

HELPER = "active.elf"
DEVICE = "dev/gunyah"
RESULT_FILE = "gunyah-collector/active"  # where a capture keeps what the helper printed
MAX_OUTPUT = 4096  # bytes of the helper's output read
TIMEOUT = 30.0
_IOC_TYPESHIFT = 8  # asm-generic/ioctl.h: _IO(type, nr) is (type << 8) | nr, no size, no dir


@dataclass(frozen=True)
class CreateVm:
    abi: str  # the driver generation that speaks it: "upstream" or "vendor"
    name: str
    type: int
    nr: int

    @property
    def number(self) -> int:
        return (self.type << _IOC_TYPESHIFT) | self.nr


CREATE_VM = (
    CreateVm("upstream", "GUNYAH_CREATE_VM", ord("G"), 0x00),
    CreateVm("vendor", "GH_CREATE_VM", 0xB2, 0x01),
)
BY_ABI = {c.abi: c for c in CREATE_VM}

_OPEN = re.compile(r"gunyah-active: open (?:(ok)|errno (\d{1,4}))")
_ASKED = re.compile(r"gunyah-active: (\w{1,16}) 0x([0-9a-f]{1,8}) "
                    r"(?:vm (\S{1,95})|answered (\d{1,19})|errno (\d{1,4}))")  # fmt: skip

# What an errno from create-VM tells the person holding the device.
MEANINGS = {
    errno.ENOTTY: "does not speak this ABI",
    errno.EINVAL: "refused it: a driver of this ABI that does not allow this kind of VM, or "
                  "one that reads the number differently ('gunyah explain \"/dev/gunyah: "
                  "Invalid argument\"' says more)",
    errno.ENOMEM: "out of memory for a new VM (the hypervisor's or the kernel's)",
    errno.EPERM: "not permitted to create VMs",
    errno.EACCES: "not permitted to create VMs",
    errno.ENODEV: "the driver has no hypervisor behind it",
    errno.EOPNOTSUPP: "the hypervisor does not support VMs made this way",
}
OPEN_MEANINGS = {
    errno.ENOENT: "there is no /dev/gunyah: no Gunyah VM manager here",
    errno.EACCES: "/dev/gunyah is not open to this user: run as root",
    errno.EPERM: "/dev/gunyah is not open to this user: run as root",
    errno.ENXIO: "/dev/gunyah has no driver behind it",
    errno.ENODEV: "/dev/gunyah has no driver behind it",
}


class ActiveError(Exception):
    """The active check could not be run; the message says why."""


def helper_path() -> Path:
    return Path(str(resources.files(__package__).joinpath(HELPER)))


def c_defines() -> tuple[str, ...]:
    """The ABI table as active.c reads it, for the compiler."""
    table = "".join(f'X("{c.abi}",{c.number:#x}UL)' for c in CREATE_VM)
    return (f"-DGUNYAH_CREATE_VM_ABIS={table}",)


def run_here(device: str = "/" + DEVICE) -> bytes:
    """Run the helper on this system; its output. ActiveError where it cannot run."""
    if platform.system() != "Linux" or platform.machine() not in ("aarch64", "arm64"):
        raise ActiveError("--active runs on the arm64 Linux system that holds /dev/gunyah, not "
                          f"on this {platform.machine()} machine: over adb, add --adb")  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="gunyah-active-") as tmp:
        program = Path(tmp) / HELPER  # a copy we may execute, whatever the install kept of modes
        try:
            shutil.copyfile(helper_path(), program)
            program.chmod(0o700)
            p = subprocess.run([str(program), device], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               timeout=TIMEOUT)  # fmt: skip
        except subprocess.TimeoutExpired:
            raise ActiveError(f"{device} did not answer within {TIMEOUT:g} s") from None
        except OSError as e:
            raise ActiveError(f"cannot run the active check: {e.strerror or e}") from None
    return p.stdout[:MAX_OUTPUT]


def _errno(n: int) -> dict[str, Any]:
    return {"errno": n, "errno_name": errno.errorcode.get(n, f"errno {n}")}


def parse(output: bytes) -> dict[str, Any]:
    """What the helper printed, as the probe reports it: whether the device
    opened, and for each ABI it asked, the answer and what it means. Lines
    that are not the helper's, or name an ABI or number not in our table,
    are left out (counted in `ignored`)."""
    result: dict[str, Any] = {"opened": None, "answers": [], "ignored": 0}
    for raw in output[:MAX_OUTPUT].decode("ascii", "replace").splitlines():
        if m := _OPEN.fullmatch(raw):
            if m[1]:
                result["opened"] = True
            else:
                n = int(m[2])
                result["opened"] = False
                result["open_error"] = {**_errno(n), "meaning": OPEN_MEANINGS.get(
                    n, f"/dev/gunyah did not open ({os.strerror(n)})")}  # fmt: skip
            continue
        m = _ASKED.fullmatch(raw)
        call = BY_ABI.get(m[1]) if m else None
        if m is None or call is None or int(m[2], 16) != call.number or \
                any(a["abi"] == call.abi for a in result["answers"]):  # fmt: skip
            result["ignored"] += 1
            continue
        answer: dict[str, Any] = {"abi": call.abi, "ioctl": call.name, "number": call.number}
        if m[3] is not None:
            answer.update(created=True, vm_fd=m[3],
                          meaning="created a VM (destroyed at once)")  # fmt: skip
        elif m[4] is not None:
            answer.update(created=False, returned=int(m[4]),
                          meaning=f"answered {m[4]} rather than a VM's descriptor")  # fmt: skip
        else:
            n = int(m[5])
            answer.update(created=False, **_errno(n),
                          meaning=MEANINGS.get(n, os.strerror(n)))  # fmt: skip
        result["answers"].append(answer)
    return result


def summary(result: dict[str, Any]) -> str:
    """One line: which ABI answered and how."""
    if result["opened"] is False:
        return f"active check: {result['open_error']['meaning']}"
    if not result["answers"]:
        return "active check: the device gave no answer we could read"
    parts = []
    for a in result["answers"]:
        how = "created a VM" if a.get("created") else \
            a.get("errno_name") or f"answered {a.get('returned')}"  # fmt: skip
        parts.append(f"{a['abi']} {a['ioctl']} ({a['number']:#x}): {how}")
    return "active check: " + "; ".join(parts)
