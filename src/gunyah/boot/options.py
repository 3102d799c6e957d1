"""What a boot is asked to do (`BootOptions`) and the checks its inputs pass
before anything starts: the guest's memory, the command line the device tree
carries, the user's initramfs. Each refusal is one `BootError` line."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from . import devicetree, initramfs, modules
from .layout import MAX_MEMORY, MEMORY_GRANULE, MIN_MEMORY
from .vm import VmSpec

MAX_INITRD = 256 << 20


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
    vm: VmSpec | None = None  # a secondary VM our VMM runs in the primary (boot.vm)


def judged(opts: BootOptions) -> bool:
    """Whether a module gives this boot's verdict: ours, or the user's first."""
    ours_or_theirs = opts.identify_module or (opts.user_verdict and bool(opts.modules))
    return opts.initrd is None and ours_or_theirs


def module_args(opts: BootOptions) -> dict[str, str]:
    """Each module's parameters, by its .ko's file name."""
    args = dict(opts.module_args)
    if opts.identify_module and opts.identify_args:
        args[modules.IDENTIFY_SOURCE.with_suffix(".ko").name] = opts.identify_args
    return args


def read_files(files: tuple[tuple[Path, str], ...]) -> tuple[tuple[str, bytes], ...]:
    """The user's files for our initramfs (`--initramfs-file`), read, bounded;
    BootError for one that cannot be read or is too big."""
    out = []
    for src, dest in files:
        try:
            with src.open("rb") as f:
                data = f.read(initramfs.MAX_FILE + 1)
        except OSError as e:
            raise BootError(f"--initramfs-file {src}: {e.strerror}") from None
        if len(data) > initramfs.MAX_FILE:
            raise BootError(f"--initramfs-file {src}: over {initramfs.MAX_FILE >> 20} MiB")
        out.append((dest, data))
    return tuple(out)


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
