"""QEMU for a boot: the `virt` machine with virtualization on, its command
line, the anonymous memory files it is given, and the wrapper that kills it
with us.

Why this shape: the guest is an adversary. QEMU gets no semihosting (QEMU
serves it at EL1 too: host files and commands), and every file it is given is
an anonymous memory file passed as a descriptor, so nothing of a boot is in
/dev/shm or on disk while it runs. QEMU dies with us (PR_SET_PDEATHSIG,
through setpriv)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from .kernel import Parts
from .layout import RAM_SIZE
from .options import BootError

CPU_MODEL = "cortex-a57"  # -cpu max boots too but 6x slower (docs/boot.md section 2, the CPU model)
# highmem=off: every device below 4 GiB, the shim's 32-bit stage-2 map covers them.
# gic-version=3: a GICv3, as the real hypervisor's QEMU machine and every Snapdragon
# have; its=off: no ITS, so no LPIs the shim's halted detection cannot see (no device
# of this machine sends an MSI). docs/boot.md section 2.
MACHINE = "virt,virtualization=on,highmem=off,gic-version=3,its=off"
# QEMU's chr-testdev on a virtio console, as kvm-unit-tests' runner gives it: the
# guest writes its status and QEMU exits with (status << 1) | 1
TESTDEV = ["-device", "virtio-serial-device", "-device", "virtconsole,chardev=ctd",
           "-chardev", "testdev,id=ctd"]  # fmt: skip
DTB_TIMEOUT = 60  # seconds for QEMU to describe its machine


def memfd(name: str, data: bytes = b"", size: int = 0) -> int:
    """An anonymous memory file holding `data` (or `size` zero bytes), for
    QEMU as /proc/self/fd/N: nothing to remove, whatever ends the boot."""
    fd = os.memfd_create(f"gunyah-{name}", os.MFD_CLOEXEC)
    try:
        with open(fd, "wb", closefd=False) as f:
            f.write(data)
        if size:
            os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd


def option_path(path: Path | str) -> str:
    """A path as a QEMU option value: its commas doubled."""
    return str(path).replace(",", ",,")


def base_args(parts: Parts, cpus: int) -> list[str]:
    """QEMU with nothing but the machine's CPUs and RAM: no devices of its
    defaults, no display, monitor or network, no reboot."""
    return [parts.qemu, "-nodefaults", "-cpu", CPU_MODEL, "-smp", str(cpus),
            "-m", f"{RAM_SIZE >> 20}M", "-display", "none", "-monitor", "none",
            "-nic", "none", "-no-reboot"]  # fmt: skip


def qemu_dtb(parts: Parts, cpus: int) -> bytes:
    """The device tree QEMU builds for this machine."""
    with tempfile.TemporaryDirectory(prefix="gunyah-dtb-") as tmp:
        out = Path(tmp) / "qemu.dtb"
        cmd = [*base_args(parts, cpus), "-machine", f"{MACHINE},dumpdtb={option_path(out)}"]
        try:
            p = subprocess.run(
                cmd, capture_output=True, text=True, timeout=DTB_TIMEOUT, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise BootError(f"QEMU did not write its device tree within {DTB_TIMEOUT} s") from None
        if p.returncode != 0 or not out.is_file():
            why = (p.stderr.strip().splitlines() or ["no message"])[-1]
            raise BootError(f"QEMU could not describe its virt machine (too old?): {why}")
        return out.read_bytes()


def pdeathsig() -> list[str]:
    """setpriv --pdeathsig: QEMU gets SIGKILL when the thread that started it
    goes, however it goes (SIGKILL included)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise BootError("setpriv (util-linux) is not installed: run `gunyah boot-setup`")
    return [setpriv, "--pdeathsig", "KILL", "--"]


def command(
    wrapper: list[str],
    parts: Parts,
    cpus: int,
    ram_fd: int,
    loads: list[tuple[int | None, str]],
    testdev: bool,
) -> list[str]:
    """The boot's QEMU: RAM in the shared memory file `ram_fd` (the host maps
    it too), the console on stdout, each of `loads` (address, file) loaded
    raw, or as an ELF that vCPU 0 starts at (address None: the shim)."""
    cmd = [*wrapper, *base_args(parts, cpus),
           "-object", f"memory-backend-file,id=ram,size={RAM_SIZE},"
           f"mem-path=/proc/self/fd/{ram_fd},share=on",
           "-machine", f"{MACHINE},memory-backend=ram", "-serial", "stdio"]  # fmt: skip
    if testdev:
        cmd += TESTDEV
    for at, path in loads:
        if at is None:
            cmd += ["-device", f"loader,file={path},cpu-num=0"]
        else:
            cmd += ["-device", f"loader,file={path},addr={at:#x},force-raw=on"]
    return cmd
