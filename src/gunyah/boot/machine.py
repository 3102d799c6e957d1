"""One boot: QEMU's `virt` machine with virtualization on, our EL2 shim as
its firmware, the kernel at EL1 behind the shim's stage-2 map, every HVC and
SMC answered by the model.

The run ends the first way it can: SYSTEM_OFF or a reset reaches the model
(`poweroff`, `reset`); the kernel says it powers down but nothing can do it
(`halted`: a persona without PSCI), every vCPU is off, or every one waits
in WFI with nothing to wake it (`halted`); the kernel panics (`panic`); the shim
reports an exception it did not expect (`shim-fault`); QEMU exits on its
own (`qemu-exit`); or the timeout passes (`timeout`).

The guest is an adversary. QEMU gets no semihosting (QEMU serves it at EL1
too: host files and commands), and every file it is given is an anonymous
memory file passed as a descriptor, so nothing of a boot is in /dev/shm or on
disk while it runs. QEMU dies with us (PR_SET_PDEATHSIG, through setpriv)
and is always killed and reaped, whatever ends the boot. What the guest
prints is kept within a byte bound, and only lines carrying the boot's nonce
give a verdict or a capture.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import re
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..conduit import RESET_STATUS, TrapRecord
from ..guest.driver import VERDICT_EXIT, VERDICTS
from ..model import Hypervisor
from . import devicetree, initramfs, modules
from .channel import Channel
from .guest import guest_kernel
from .kernel import BadKernel, Parts
from .memory import BootMemory
from .modules import ModuleError

RAM_BASE = 0x4000_0000
RAM_SIZE = 1 << 30
SHIM_BASE = 0x7FE0_0000  # shim/shim.h: the top 2 MiB, outside the guest's stage-2 map
MAX_MEMORY = SHIM_BASE - RAM_BASE  # the most a guest is given, and the default
MIN_MEMORY = 16 << 20
MEMORY_GRANULE = 2 << 20  # the shim maps the guest's RAM in 2 MiB blocks
SHIM_CONFIG = 0x7FF0_0000
SHIM_MAILBOXES = 0x7FF1_0000
KERNEL_ADDR = RAM_BASE + 0x20_0000
QEMU_DTB_END = RAM_BASE + 0x10_0000  # QEMU without -kernel puts its own device tree below
CONFIG = struct.Struct("<6Q")  # struct shim_config
CONFIG_MAGIC = 0x3230474643485947
MAX_CPUS = 8
CPU_MODEL = "cortex-a57"  # -cpu max boots too but 6x slower (BOOT-NOTES.md)
# highmem=off: every device below 4 GiB, the shim's 32-bit stage-2 map covers them
MACHINE = "virt,virtualization=on,highmem=off"
BOOTARGS = "console=ttyAMA0 earlycon=pl011,0x9000000 nokaslr rdinit=/init"
EXIT_FAILED = 125
EXIT_NO_VERDICT = 5  # the boot ended, but the module under test gave no verdict
# QEMU's chr-testdev on a virtio console, as kvm-unit-tests' runner gives it: the
# guest writes its status and QEMU exits with (status << 1) | 1
TESTDEV = ["-device", "virtio-serial-device", "-device", "virtconsole,chardev=ctd",
           "-chardev", "testdev,id=ctd"]  # fmt: skip

MAX_LINE = 4096  # bytes of one console line; the rest of it is dropped
MAX_CONSOLE = 4 << 20  # bytes of Python memory the console kept may take
MAX_CAPTURE = 16 << 20  # bytes of base64 the guest's capture may take
PANIC = "Kernel panic - not syncing"
PANIC_END = "---[ end Kernel panic"
POWER_DOWN = "reboot: Power down"
PANIC_GRACE = 0.5  # seconds for the rest of a panic's lines
HALT_GRACE = 1.0  # seconds for SYSTEM_OFF to follow the kernel's power-down line
EXIT_GRACE = 0.1  # seconds for the channel's last answer once QEMU has exited
WATCH_SECONDS = 0.1  # the longest the watcher sleeps without news
# How long every vCPU must have waited with nothing to wake it before the boot
# ends as halted: a vCPU another just woke tells the host within microseconds.
WAIT_GRACE = 0.5
_STAMP = re.compile(r"^\[\s*\d+\.\d+\] ")


class BootError(Exception):
    """The boot could not be set up (QEMU, the device tree, the layout)."""


@dataclass(frozen=True)
class BootOptions:
    persona: str = "gunyah"
    cpus: int = 1
    method: str = "hvc"
    modules: tuple[Path, ...] = ()  # .c or .ko, after ours
    identify_module: bool = True  # insert ours
    identify_args: str = ""  # its parameters (bench=N times N forwarded calls)
    user_verdict: bool = False  # without ours: the first of `modules` gives the verdict
    initrd: Path | None = None  # the user's own: no modules, no init of ours
    append: str = ""
    timeout: float = 60.0
    capture: bool = False  # the guest sends what `gunyah probe` reads
    active: bool = False  # and runs `gunyah probe --active` first
    module_args: tuple[tuple[str, str], ...] = ()  # (a module's .ko file name, its parameters)
    kernel_addr: int | None = None  # where a raw binary loads
    memory: int = MAX_MEMORY  # bytes of RAM the guest is given, from RAM_BASE
    cmdline: str | None = None  # the whole command line, instead of ours
    testdev: bool = False  # QEMU's chr-testdev: the guest's exit status ends QEMU
    files: tuple[tuple[Path, str], ...] = ()  # (a host file, its path in our initramfs)
    run: str | None = None  # a shell command our init runs once the modules are in


def _read_files(files: tuple[tuple[Path, str], ...]) -> tuple[tuple[str, bytes], ...]:
    """The user's files for the initramfs, read, bounded; BadKernel (a usage
    error) for one that cannot be read or is too big."""
    out = []
    for src, dest in files:
        try:
            with src.open("rb") as f:
                data = f.read(initramfs.MAX_FILE + 1)
        except OSError as e:
            raise BadKernel(f"--initramfs-file {src}: {e.strerror}") from None
        if len(data) > initramfs.MAX_FILE:
            raise BadKernel(f"--initramfs-file {src}: over {initramfs.MAX_FILE >> 20} MiB")
        out.append((dest, data))
    return tuple(out)


@dataclass
class ModuleReport:
    name: str
    loaded: bool | None  # None: init never got to it
    log: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "loaded": self.loaded, "log": self.log}


@dataclass
class BootResult:
    stopped_by: str
    exit_status: int
    boot_seconds: float
    console: list[str]
    console_dropped: int
    calls: list[TrapRecord]
    calls_dropped: int
    modules: list[ModuleReport]
    verdict: str | None
    persona: str
    cpus: int
    reset_type: int | None = None
    guest_status: int | None = None  # what the guest reported: 0 for SYSTEM_OFF, or chr-testdev's
    kernel_kind: str = "linux"  # linux, elf or raw
    problem: str | None = None  # why the boot failed, in one line
    actions: list[dict[str, Any]] = field(default_factory=list)
    actions_dropped: int = 0
    capture: bytes | None = None  # the guest's tar.gz of what the probe reads
    capture_problem: str | None = None  # why there is none, when one was asked for
    halted_because: str | None = None  # for `halted`: what was left to run, in one line

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "cpus": self.cpus,
            "exit_status": self.exit_status,
            "guest_status": self.guest_status,
            "kernel": self.kernel_kind,
            "stopped_by": self.stopped_by,
            "problem": self.problem,
            "halted_because": self.halted_because,
            "boot_seconds": round(self.boot_seconds, 3),
            "verdict": self.verdict,
            "modules": [m.to_dict() for m in self.modules],
            "console": self.console,
            "console_dropped": self.console_dropped,
            "calls_dropped": self.calls_dropped,
            "calls": [c.to_dict() for c in self.calls],
            "actions": self.actions,
            "actions_dropped": self.actions_dropped,
            "capture_bytes": None if self.capture is None else len(self.capture),
            "capture_problem": self.capture_problem,
        }


class _Console:
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
        self.count += 1
        cost = sys.getsizeof(line)
        self.lines.append(line)
        self.kept += cost
        while self.kept > MAX_CONSOLE:
            self.kept -= sys.getsizeof(self.lines.popleft())


def _memfd(name: str, data: bytes = b"", size: int = 0) -> int:
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


def _qemu_path(path: Path | str) -> str:
    """A path as a QEMU option value: its commas doubled."""
    return str(path).replace(",", ",,")


def _align(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def _qemu_base(parts: Parts, cpus: int) -> list[str]:
    return [parts.qemu, "-nodefaults", "-cpu", CPU_MODEL, "-smp", str(cpus),
            "-m", f"{RAM_SIZE >> 20}M", "-display", "none", "-monitor", "none",
            "-nic", "none", "-no-reboot"]  # fmt: skip


def qemu_dtb(parts: Parts, cpus: int) -> bytes:
    """The device tree QEMU builds for this machine."""
    with tempfile.TemporaryDirectory(prefix="gunyah-dtb-") as tmp:
        out = Path(tmp) / "qemu.dtb"
        cmd = [*_qemu_base(parts, cpus), "-machine", f"{MACHINE},dumpdtb={_qemu_path(out)}"]
        try:
            p = subprocess.run(
                cmd, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL
            )
        except subprocess.TimeoutExpired:
            raise BootError("QEMU did not write its device tree within 60 s") from None
        if p.returncode != 0 or not out.is_file():
            why = (p.stderr.strip().splitlines() or ["no message"])[-1]
            raise BootError(f"QEMU could not describe its virt machine (too old?): {why}")
        return out.read_bytes()


def prepare_modules(opts: BootOptions, parts: Parts) -> list[Path]:
    """Every module to insert, built where given as C and checked against the
    kernel: ours first. ModuleError names the module and the problem."""
    if opts.initrd is not None:
        return []
    for m in opts.modules:
        if m.suffix not in (".c", ".ko"):
            raise ModuleError(f"--module takes a .c or .ko file, not {m}")
    sources = ([modules.IDENTIFY_SOURCE] if opts.identify_module else []) + list(opts.modules)
    built: list[Path] = []
    for src in sources:
        built.append(modules.build(src, parts.headers) if src.suffix == ".c" else src)
    expected = None
    if parts.headers is not None:
        expected = modules.vermagic(modules.build(modules.IDENTIFY_SOURCE, parts.headers))
    for ko in built:
        modules.check(ko, expected)
    if len({k.name for k in built}) != len(built):
        raise ModuleError("two modules share a name; a kernel loads only one of them")
    return built


MAX_INITRD = 256 << 20


def check_initrd(path: Path) -> None:
    """BootError unless the user's initramfs is a regular file under 256 MiB."""
    if not path.is_file():  # before opening: a FIFO or a device would not end
        raise BootError(f"--initrd {path}: not a regular file")
    if path.stat().st_size > MAX_INITRD:
        raise BootError(f"--initrd {path}: over {MAX_INITRD >> 20} MiB")


def read_initrd(path: Path) -> bytes:
    check_initrd(path)
    try:
        return path.read_bytes()[:MAX_INITRD]
    except OSError as e:
        raise BootError(f"--initrd {path}: {e.strerror}") from None


def _module_args(opts: BootOptions) -> dict[str, str]:
    """Each module's parameters, by its .ko's file name."""
    args = dict(opts.module_args)
    if opts.identify_module and opts.identify_args:
        args[modules.IDENTIFY_SOURCE.with_suffix(".ko").name] = opts.identify_args
    return args


def check_memory(size: int) -> None:
    """BootError unless a guest can be given `size` bytes of RAM."""
    if not MIN_MEMORY <= size <= MAX_MEMORY or size % MEMORY_GRANULE:
        raise BootError(f"--memory: {size / (1 << 20):g} MiB; a guest is given "
                        f"{MIN_MEMORY >> 20} to {MAX_MEMORY >> 20} MiB, in steps of "
                        f"{MEMORY_GRANULE >> 20} MiB")  # fmt: skip


def check_append(append: str) -> None:
    """BootError unless the device tree can carry `append`."""
    try:
        devicetree.command_line_bytes(append)
    except ValueError as e:
        raise BootError(f"--append: {e}") from None


def _pdeathsig() -> list[str]:
    """setpriv --pdeathsig: QEMU gets SIGKILL when the thread that started it
    goes, however it goes (SIGKILL included)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        raise BootError("setpriv (util-linux) is not installed: run `gunyah boot-setup`")
    return [setpriv, "--pdeathsig", "KILL", "--"]


def boot(
    opts: BootOptions, parts: Parts, shim: Path, cancel: threading.Event | None = None
) -> BootResult:
    """Boot once and report; BootError/ModuleError before QEMU starts. Setting
    `cancel` stops the boot (`interrupted`)."""
    if not 1 <= opts.cpus <= MAX_CPUS:
        raise BootError(f"--smp takes 1 to {MAX_CPUS} vCPUs")
    check_append(opts.append)
    if opts.cmdline is not None:
        check_append(opts.cmdline)
    check_memory(opts.memory)
    ram_end = RAM_BASE + opts.memory  # the shim stays at SHIM_BASE; RAM past ram_end is unmapped
    hyp = Hypervisor(opts.persona, cpus=opts.cpus)
    guest = guest_kernel(parts.image, opts.kernel_addr, KERNEL_ADDR, (QEMU_DTB_END, ram_end))
    if not guest.linux:  # a test kernel: nothing of ours runs in it
        if opts.modules or opts.capture or opts.files or opts.run is not None:
            raise BadKernel(f"{parts.image} is not a Linux Image: it cannot load modules, "
                            "take files, run a command or send a probe capture")  # fmt: skip
        opts = dataclasses.replace(opts, identify_module=False)
    kos = prepare_modules(opts, parts) if guest.linux else []
    wrapper = _pdeathsig()
    nonce = secrets.token_hex(16)
    initrd: bytes | None = None
    if opts.initrd is not None:
        initrd = read_initrd(opts.initrd)
    elif guest.linux:
        try:
            initrd = initramfs.build(parts.busybox, kos, nonce, _module_args(opts),
                                     judge=_judged(opts), capture=opts.capture,
                                     active=opts.active, files=_read_files(opts.files),
                                     run=opts.run)  # fmt: skip
        except ValueError as e:
            raise BadKernel(str(e)) from None
    dtb_addr = _align(guest.end, 0x20_0000)
    initrd_addr = dtb_addr + 0x20_0000
    if initrd_addr + len(initrd or b"") > ram_end:
        raise BootError(f"the kernel, device tree and initramfs do not fit in the guest's "
                        f"{opts.memory >> 20} MiB of RAM")  # fmt: skip
    base = opts.cmdline if opts.cmdline is not None else BOOTARGS if guest.linux else ""
    bootargs = f"{base} {opts.append}" if opts.append and base else base or opts.append
    edit = devicetree.Edit(
        method=opts.method,
        memory_base=RAM_BASE,
        memory_size=opts.memory,
        bootargs=bootargs,
        initrd=None if initrd is None else (initrd_addr, initrd_addr + len(initrd)),
        gunyah=hyp.persona.dispatch == "gunyah",
    )
    dtb = devicetree.edit(qemu_dtb(parts, opts.cpus), edit)
    if len(dtb) > 0x20_0000:
        raise BootError("the device tree is over 2 MiB")
    config = CONFIG.pack(CONFIG_MAGIC, guest.entry, dtb_addr, opts.cpus, RAM_BASE, ram_end)
    fds: list[int] = []
    try:
        ram = _memfd("ram", size=RAM_SIZE)
        fds.append(ram)
        loads: list[tuple[int | None, str]] = [(None, _qemu_path(shim))]
        blobs = [(s.address, s.data) for s in guest.segments if s.data]
        if guest.linux:
            loads.append((KERNEL_ADDR, _qemu_path(parts.image)))
        blobs += [(dtb_addr, dtb), (SHIM_CONFIG, config)]
        if initrd is not None:
            blobs.append((initrd_addr, initrd))
        for addr, data in blobs:
            fds.append(_memfd("load", data))
            loads.append((addr, f"/proc/self/fd/{fds[-1]}"))
        cmd = [*wrapper, *_qemu_base(parts, opts.cpus),
               "-object", f"memory-backend-file,id=ram,size={RAM_SIZE},"
               f"mem-path=/proc/self/fd/{ram},share=on",
               "-machine", f"{MACHINE},memory-backend=ram", "-serial", "stdio"]  # fmt: skip
        if opts.testdev:
            cmd += TESTDEV
        for at, path in loads:
            if at is None:
                cmd += ["-device", f"loader,file={path},cpu-num=0"]
            else:
                cmd += ["-device", f"loader,file={path},addr={at:#x},force-raw=on"]
        channel = Channel(hyp, opts.cpus, ram, SHIM_MAILBOXES - RAM_BASE)
        memory = BootMemory(ram, RAM_BASE, ram_end, lambda: channel.translation(hyp.cpu))
        hyp.attach_memory(memory)
        # the RAM is the model's too: the RM's parcels are cut from it and a
        # secondary VM's vCPU runs in the pages they name
        hyp.attach_ram(RAM_BASE, memory.ram)
        try:
            result = _run(cmd, fds, channel, opts, kos, nonce, cancel)
            return dataclasses.replace(result, kernel_kind=guest.kind)
        finally:
            channel.close()
            hyp.attach_memory(None)
            memory.close()
    finally:
        for fd in fds:
            os.close(fd)


def _judged(opts: BootOptions) -> bool:
    """Whether a module gives this boot's verdict: ours, or the user's first."""
    ours_or_theirs = opts.identify_module or (opts.user_verdict and bool(opts.modules))
    return opts.initrd is None and ours_or_theirs


def _run(
    cmd: list[str],
    fds: list[int],
    channel: Channel,
    opts: BootOptions,
    kos: list[Path],
    nonce: str,
    cancel: threading.Event | None,
) -> BootResult:
    """QEMU's stderr goes to an unnamed file: a pipe nobody reads while it
    runs could fill and stop it."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, pass_fds=fds, start_new_session=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            console = _Console(proc.stdout, nonce, opts.capture, channel.ended)
            stopped_by = _watch(proc, channel, console, start + opts.timeout, cancel)
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        seconds = time.monotonic() - start
        console.thread.join(timeout=5)
        err.seek(max(0, err.seek(0, os.SEEK_END) - MAX_LINE))
        stderr = err.read().decode("utf-8", "replace")
    if proc.stdout is not None:
        proc.stdout.close()
    return _result(stopped_by, seconds, channel, console, opts, kos, stderr, proc.returncode)


def _watch(
    proc: subprocess.Popen[bytes],
    channel: Channel,
    console: _Console,
    deadline: float,
    cancel: threading.Event | None,
) -> str:
    """How the boot ended. It wakes when the channel or the console has news
    (channel.ended, set by both), else every WATCH_SECONDS: a thread that
    woke more often would take the GIL from the channel's serving loop."""
    exited_at: float | None = None
    settled: tuple[int, float] | None = None  # (wait_changes, since) while all vCPUs wait
    while True:
        channel.ended.clear()  # before the looks: news from now on wakes the wait below
        if cancel is not None and cancel.is_set():
            return "interrupted"
        now = time.monotonic()
        final = channel.final
        if final is not None:
            return "poweroff" if final.kind == "system_off" else "reset"
        if channel.fault is not None:
            return "shim-fault"
        if channel.error is not None:
            return "host-error"
        if not any(channel.hyp.power.on):  # every vCPU off: nothing left to run
            return "halted"
        online = {cpu for cpu, on in enumerate(channel.hyp.power.on) if on}
        if online <= set(channel.waiting):  # and nothing but one of them could wake another
            changes = channel.wait_changes
            if settled is None or settled[0] != changes:
                settled = (changes, now)
            elif now - settled[1] > WAIT_GRACE:
                return "halted"
        else:
            settled = None
        if console.power_down_at is not None and (
            console.panic_at is not None or now - console.power_down_at > HALT_GRACE
        ):
            return "halted"
        if console.panic_at is not None and (
            console.panic_ended or now - console.panic_at > PANIC_GRACE
        ):
            return "panic"
        if proc.poll() is not None:
            if exited_at is None:  # the channel's last answer may still be on its way
                exited_at = now
            elif now - exited_at > EXIT_GRACE:
                return "qemu-exit"
        if now > deadline:
            return "timeout"
        channel.ended.wait(WATCH_SECONDS)


def _capture(console: _Console) -> tuple[bytes | None, str | None]:
    """The guest's capture, decoded, or why there is none."""
    if console.capture is None:
        return None, "the guest never began sending its capture"
    if console.capture_overflow:
        return None, "the guest's capture is over 16 MiB"
    if not console.capture_done:
        return None, "the guest's capture was cut short"
    try:
        return base64.b64decode(bytes(console.capture), validate=True), None
    except (binascii.Error, ValueError):
        return None, "the guest's capture is not valid base64"


def _module_reports(kos: list[Path], lines: list[str]) -> list[ModuleReport]:
    reports, pending = [], [ko.name for ko in kos]
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
            reports.append(ModuleReport(name, loaded, log))
            log = []
        elif not text.startswith(initramfs.MARK):
            log.append(text)
    reports += [ModuleReport(name, None, []) for name in pending]
    return reports


def _result(stopped_by: str, seconds: float, channel: Channel, console: _Console,
            opts: BootOptions, kos: list[Path], stderr: str, qemu_status: int
            ) -> BootResult:  # fmt: skip
    lines = list(console.lines)
    verdict = console.verdict if console.verdict in VERDICTS else None
    problem = None
    reset_type = None
    guest_status = None
    if stopped_by == "qemu-exit" and opts.testdev and qemu_status > 0 and qemu_status & 1:
        stopped_by, guest_status = "guest-exit", qemu_status >> 1  # chr-testdev's status
    elif stopped_by == "poweroff":
        guest_status = 0
    if stopped_by in ("poweroff", "halted", "guest-exit"):
        if not _judged(opts):
            status = guest_status or 0
        elif verdict is not None:
            status = VERDICT_EXIT[verdict]
        else:
            status = EXIT_NO_VERDICT
            problem = (
                "init never reported the module's verdict (it did not run, or did not get "
                "that far)" if console.verdict is None
                else "the module logged no 'gunyah-verdict: <verdict>' line while it loaded"
                if console.verdict == initramfs.NO_VERDICT
                else f"the module's verdict {console.verdict!r} is none of {', '.join(VERDICTS)}"
            )  # fmt: skip
    elif stopped_by == "reset":
        status = RESET_STATUS
        final = channel.final
        reset_type = final.reset_type if final is not None else None
    else:
        status = EXIT_FAILED
        problem = {
            "panic": "the kernel panicked",
            "timeout": f"the guest did not power off within {opts.timeout:g} s",
            "qemu-exit": "QEMU exited before the guest powered off"
            + (f": {stderr.strip().splitlines()[-1]}" if stderr.strip() else ""),
            "interrupted": "the boot was stopped (Ctrl-C or a signal)",
            "shim-fault": channel.fault.describe() if channel.fault else "",
            "host-error": f"the host side of the channel failed: {channel.error!r}",
        }.get(stopped_by, stopped_by)  # fmt: skip
    capture, capture_problem = _capture(console) if opts.capture else (None, None)
    channel.close()  # its thread stopped: what it kept holds still
    halted_because = _halted_because(channel) if stopped_by == "halted" else None
    calls, calls_dropped = channel.calls, channel.calls_dropped
    actions, actions_dropped = channel.actions, channel.actions_dropped
    return BootResult(
        capture=capture,
        capture_problem=capture_problem,
        stopped_by=stopped_by,
        exit_status=status,
        boot_seconds=seconds,
        console=lines,
        console_dropped=console.count - len(lines),
        calls=calls,
        calls_dropped=calls_dropped,
        modules=_module_reports(kos, lines),
        verdict=verdict,
        persona=opts.persona,
        cpus=opts.cpus,
        reset_type=reset_type,
        guest_status=guest_status,
        problem=problem,
        actions=[a.to_dict() for a in actions],
        actions_dropped=actions_dropped,
        halted_because=halted_because,
    )


def _halted_because(channel: Channel) -> str:
    on = [cpu for cpu, up in enumerate(channel.hyp.power.on) if up]
    if not on:
        return "every vCPU is off"
    if set(on) <= channel.waiting:
        return (f"every vCPU that is on ({', '.join(map(str, on))}) waits in WFI with nothing "
                "to wake it: no armed timer, no interrupt the GIC would pass on")  # fmt: skip
    return "the kernel said it powers down, and the persona has no PSCI to do it with"
