"""One boot: QEMU's `virt` machine with virtualization on, our EL2 shim as
its firmware, the kernel at EL1, every HVC and SMC answered by the model.

The run ends the first way it can: SYSTEM_OFF or a reset reaches the model
(`poweroff`, `reset`); the kernel says it powers down but nothing can do it
(`halted`: a persona without PSCI); the kernel panics (`panic`); the shim
reports an exception it did not expect (`shim-fault`); QEMU exits on its
own (`qemu-exit`); or the timeout passes (`timeout`). QEMU is always
killed and reaped, and the temporary directory removed, whatever ends it,
Ctrl-C included.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import struct
import subprocess
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
from .kernel import Parts, image_size
from .modules import ModuleError

RAM_BASE = 0x4000_0000
RAM_SIZE = 1 << 30
SHIM_BASE = 0x7FE0_0000  # shim/shim.h: the top 2 MiB, hidden from the kernel
SHIM_CONFIG = 0x7FF0_0000
SHIM_MAILBOXES = 0x7FF1_0000
SHARED_MEMORY = Path("/dev/shm")  # the guest's RAM file: memory, never written to a disk
KERNEL_ADDR = RAM_BASE + 0x20_0000
CONFIG = struct.Struct("<4Q448s")
CONFIG_MAGIC = 0x3130474643485947
MAX_CPUS = 8
CPU_MODEL = "cortex-a57"  # -cpu max boots too but 6x slower (BOOT-NOTES.md)
BOOTARGS = "console=ttyAMA0 earlycon=pl011,0x9000000 nokaslr rdinit=/init"
EXIT_FAILED = 125

MAX_LINE = 4096
MAX_LINES = 20_000
PANIC = "Kernel panic - not syncing"
PANIC_END = "---[ end Kernel panic"
POWER_DOWN = "reboot: Power down"
VERDICT_LINE = re.compile(r"gunyah-verdict: (\S+)")
MAX_CAPTURE_LINES = (16 << 20) // 76  # 16 MiB of base64 at 76 characters a line
PANIC_GRACE = 0.5  # seconds for the rest of a panic's lines
HALT_GRACE = 1.0  # seconds for SYSTEM_OFF to follow the kernel's power-down line
EXIT_GRACE = 0.1  # seconds for the channel's last answer once QEMU has exited
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
    initrd: Path | None = None  # the user's own: no modules, no init of ours
    append: str = ""
    timeout: float = 60.0
    capture: bool = False  # the guest sends what `gunyah probe` reads


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
    problem: str | None = None  # why the boot failed, in one line
    actions: list[dict[str, Any]] = field(default_factory=list)
    capture: bytes | None = None  # the guest's tar.gz of what the probe reads
    capture_problem: str | None = None  # why there is none, when one was asked for

    def to_dict(self) -> dict[str, Any]:
        return {
            "persona": self.persona,
            "cpus": self.cpus,
            "exit_status": self.exit_status,
            "stopped_by": self.stopped_by,
            "problem": self.problem,
            "boot_seconds": round(self.boot_seconds, 3),
            "verdict": self.verdict,
            "modules": [m.to_dict() for m in self.modules],
            "console": self.console,
            "console_dropped": self.console_dropped,
            "calls_dropped": self.calls_dropped,
            "calls": [c.to_dict() for c in self.calls],
            "actions": self.actions,
            "capture_bytes": None if self.capture is None else len(self.capture),
            "capture_problem": self.capture_problem,
        }


class _Console:
    """QEMU's serial output, line by line, bounded; it notes the lines a boot
    ends on."""

    def __init__(self, stream: Any) -> None:
        self.lines: deque[str] = deque(maxlen=MAX_LINES)
        self.count = 0
        self.capture: list[str] | None = None  # base64 lines between the markers
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
                self._line(raw)
            if len(buf) > MAX_LINE:
                self._line(buf)
                buf = b""
        if buf:
            self._line(buf)

    def _line(self, raw: bytes) -> None:
        line = raw[:MAX_LINE].decode("utf-8", "replace").rstrip("\r")
        if self.capture is not None and not self.capture_done:
            if line == initramfs.CAPTURE_END:
                self.capture_done = True
            elif len(self.capture) < MAX_CAPTURE_LINES:
                self.capture.append(line)
            else:
                self.capture_overflow = True
            return
        if line == initramfs.CAPTURE_BEGIN and self.capture is None:
            self.capture = []
            return
        self.lines.append(line)
        self.count += 1
        now = time.monotonic()
        if PANIC in line and self.panic_at is None:
            self.panic_at = now
        if PANIC_END in line:
            self.panic_ended = True
        if POWER_DOWN in line and self.power_down_at is None:
            self.power_down_at = now


def _ram_file(work: Path) -> Path:
    """The file QEMU keeps the guest's RAM in, shared with the channel: in
    /dev/shm where there is one (named for the boot's own directory and
    removed with it), else in that directory."""
    directory = (
        SHARED_MEMORY if SHARED_MEMORY.is_dir() and os.access(SHARED_MEMORY, os.W_OK) else work
    )
    ram = directory / f"{work.name}.ram"
    fd = os.open(ram, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.ftruncate(fd, RAM_SIZE)
    finally:
        os.close(fd)
    return ram


def _align(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def _qemu_base(parts: Parts, cpus: int) -> list[str]:
    return [parts.qemu, "-cpu", CPU_MODEL, "-smp", str(cpus), "-m", f"{RAM_SIZE >> 20}M",
            "-display", "none", "-monitor", "none", "-nic", "none", "-no-reboot"]  # fmt: skip


def qemu_dtb(parts: Parts, cpus: int, workdir: Path) -> bytes:
    """The device tree QEMU builds for this machine."""
    out = workdir / "qemu.dtb"
    cmd = [*_qemu_base(parts, cpus), "-machine", f"virt,virtualization=on,dumpdtb={out}"]
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
    if not (opts.identify_module and opts.identify_args):
        return {}
    return {modules.IDENTIFY_SOURCE.with_suffix(".ko").name: opts.identify_args}


def boot(
    opts: BootOptions, parts: Parts, shim: Path, cancel: threading.Event | None = None
) -> BootResult:
    """Boot once and report; BootError/ModuleError before QEMU starts. Setting
    `cancel` stops the boot (`interrupted`)."""
    if not 1 <= opts.cpus <= MAX_CPUS:
        raise BootError(f"--smp takes 1 to {MAX_CPUS} vCPUs")
    hyp = Hypervisor(opts.persona, cpus=opts.cpus)
    kernel_end = KERNEL_ADDR + image_size(parts.image)
    kos = prepare_modules(opts, parts)
    with tempfile.TemporaryDirectory(prefix="gunyah-boot-") as tmp:
        work = Path(tmp)
        if opts.initrd is not None:
            initrd = read_initrd(opts.initrd)
        else:
            initrd = initramfs.build(parts.busybox, kos, _module_args(opts), opts.capture)
        dtb_addr = _align(kernel_end, 0x20_0000)
        initrd_addr = dtb_addr + 0x20_0000
        if initrd_addr + len(initrd) > SHIM_BASE:
            raise BootError("the kernel and initramfs do not fit below the shim in 1 GiB")
        edit = devicetree.Edit(
            method=opts.method,
            memory_base=RAM_BASE,
            memory_size=SHIM_BASE - RAM_BASE,
            bootargs=f"{BOOTARGS} {opts.append}".strip(),
            initrd=(initrd_addr, initrd_addr + len(initrd)),
            gunyah=hyp.persona.dispatch == "gunyah",
        )
        dtb = devicetree.edit(qemu_dtb(parts, opts.cpus, work), edit)
        if len(dtb) > 0x20_0000:
            raise BootError("the device tree is over 2 MiB")
        (work / "guest.dtb").write_bytes(dtb)
        (work / "initrd").write_bytes(initrd)
        prefix = str(work / "ch").encode()
        if len(prefix) + 8 > 448:
            raise BootError("the temporary directory's path is too long for the shim")
        (work / "config").write_bytes(
            CONFIG.pack(CONFIG_MAGIC, KERNEL_ADDR, dtb_addr, opts.cpus, prefix)
        )
        loads = [
            ("shim", None, shim),
            ("kernel", KERNEL_ADDR, parts.image),
            ("dtb", dtb_addr, work / "guest.dtb"),
            ("initrd", initrd_addr, work / "initrd"),
            ("config", SHIM_CONFIG, work / "config"),
        ]
        ram = _ram_file(work)
        cmd = [*_qemu_base(parts, opts.cpus),
               "-object", f"memory-backend-file,id=ram,size={RAM_SIZE},mem-path={ram},share=on",
               "-machine", "virt,virtualization=on,memory-backend=ram",
               "-serial", "stdio", "-semihosting-config", "enable=on,target=native"]  # fmt: skip
        for _, addr, path in loads:
            if addr is None:
                cmd += ["-device", f"loader,file={path},cpu-num=0"]
            else:
                cmd += ["-device", f"loader,file={path},addr={addr:#x},force-raw=on"]
        channel = Channel(work, hyp, opts.cpus, ram, SHIM_MAILBOXES - RAM_BASE)
        try:
            return _run(cmd, channel, opts, kos, work / "qemu.stderr", cancel)
        finally:
            channel.close()
            ram.unlink(missing_ok=True)


def _run(
    cmd: list[str],
    channel: Channel,
    opts: BootOptions,
    kos: list[Path],
    errors: Path,
    cancel: threading.Event | None,
) -> BootResult:
    """QEMU's stderr goes to a file: a pipe nobody reads while it runs could fill and stop it."""
    start = time.monotonic()
    with errors.open("wb") as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, start_new_session=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        console = _Console(proc.stdout)
        stopped_by = _watch(proc, channel, console, start + opts.timeout, cancel)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    seconds = time.monotonic() - start
    console.thread.join(timeout=5)
    with errors.open("rb") as err:
        err.seek(max(0, errors.stat().st_size - MAX_LINE))
        stderr = err.read().decode("utf-8", "replace")
    if proc.stdout is not None:
        proc.stdout.close()
    return _result(stopped_by, seconds, channel, console, opts, kos, stderr)


def _watch(
    proc: subprocess.Popen[bytes],
    channel: Channel,
    console: _Console,
    deadline: float,
    cancel: threading.Event | None,
) -> str:
    exited_at: float | None = None
    while True:
        if cancel is not None and cancel.is_set():
            return "interrupted"
        now = time.monotonic()
        actions = [a.kind for a in channel.actions]
        if "system_off" in actions:
            return "poweroff"
        if "system_reset" in actions:
            return "reset"
        if channel.fault is not None:
            return "shim-fault"
        if channel.error is not None:
            return "host-error"
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
        channel.ended.wait(0.02)


def _capture(console: _Console) -> tuple[bytes | None, str | None]:
    """The guest's capture, decoded, or why there is none."""
    if console.capture is None:
        return None, "the guest never began sending its capture"
    if console.capture_overflow:
        return None, "the guest's capture is over 16 MiB"
    if not console.capture_done:
        return None, "the guest's capture was cut short"
    try:
        return base64.b64decode("".join(console.capture), validate=True), None
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
            opts: BootOptions, kos: list[Path], stderr: str) -> BootResult:  # fmt: skip
    lines = list(console.lines)
    verdict = None
    for line in lines:
        m = VERDICT_LINE.search(line)
        if m and m.group(1) in VERDICTS:
            verdict = m.group(1)
    problem = None
    reset_type = None
    if stopped_by in ("poweroff", "halted"):
        status = VERDICT_EXIT[verdict] if verdict is not None and opts.identify_module else 0
    elif stopped_by == "reset":
        status = RESET_STATUS
        reset_type = next((a.reset_type for a in channel.actions if a.kind == "system_reset"), None)
    else:
        status = EXIT_FAILED
        problem = {
            "panic": "the kernel panicked",
            "timeout": f"the guest did not power off within {opts.timeout:g} s",
            "qemu-exit": "QEMU exited before the guest powered off"
            + (f": {stderr.strip().splitlines()[-1]}" if stderr.strip() else ""),
            "interrupted": "the boot was stopped (Ctrl-C)",
            "shim-fault": channel.fault.describe() if channel.fault else "",
            "host-error": f"the host side of the channel failed: {channel.error!r}",
        }.get(stopped_by, stopped_by)  # fmt: skip
    capture, capture_problem = _capture(console) if opts.capture else (None, None)
    return BootResult(
        capture=capture,
        capture_problem=capture_problem,
        stopped_by=stopped_by,
        exit_status=status,
        boot_seconds=seconds,
        console=lines,
        console_dropped=console.count - len(lines),
        calls=list(channel.calls),
        calls_dropped=channel.calls_dropped,
        modules=_module_reports(kos, lines),
        verdict=verdict,
        persona=opts.persona,
        cpus=opts.cpus,
        reset_type=reset_type,
        problem=problem,
        actions=[a.to_dict() for a in channel.actions],
    )
