"""`gunyah boot`: a real arm64 Linux kernel on the model, in QEMU; and
`gunyah boot-setup`: what that needs, installed."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .. import render
from ..boot.layout import (
    KERNEL_ADDR,
    MAX_CPUS,
    MAX_MEMORY,
    MEMORY_GRANULE,
    MIN_MEMORY,
    QEMU_DTB_END,
    RAM_SIZE,
    SHIM_SIZE,
)
from ..boot.vm import (
    DEFAULT_LINUX_MEMORY,
    DEFAULT_RAW_MEMORY,
    MAX_VM_MEMORY,
    MIN_VM_MEMORY,
    VM_MEMORY_GRANULE,
)
from ..limits import MAX_TIMEOUT
from ..outcome import EXIT_NO_VERDICT, EXIT_RESET, EXIT_SIGNALLED, EXIT_VM_FAILED
from .common import (
    EXIT_GUEST_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    UsageError,
    add_json,
    add_persona,
    check_output_path,
    error,
    number,
    seconds,
)

if TYPE_CHECKING:
    from ..boot.vm import VmSpec


def _verdict_statuses() -> str:
    """The verdicts' exit statuses as --help says them: 0 supported, ..."""
    from ..guest.driver import VERDICT_TABLE

    return ", ".join(f"{v.exit_status} {v.name}" for v in VERDICT_TABLE)


_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}


def memory_size(text: str) -> int:
    """A size as QEMU's -m reads one: a number of bytes, or with K, M or G
    (MiB when no unit is given, as -m takes it)."""
    t = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = t[-1:] if t[-1:] in _UNITS else ""
    digits = t[: len(t) - len(unit)]
    if not digits.isdigit() or len(digits) > 12:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size (e.g. 256M or 1G)")
    return int(digits) * (_UNITS[unit] if unit else 1 << 20)


def cmd_boot(args: argparse.Namespace) -> int:
    from ..boot.kernel import BadKernel, MissingPart, find_parts
    from ..boot.machine import boot
    from ..boot.modules import ModuleError, ko_name
    from ..boot.modules import module_args as module_args_of
    from ..boot.options import BootError, BootOptions, check_append, check_initrd, check_memory
    from ..toolchain import SHIM_ELF

    try:
        check_memory(args.memory)
        check_append(args.append)
        if args.cmdline is not None:
            check_append(args.cmdline)
        if args.initrd is not None:
            check_initrd(args.initrd)
    except BootError as e:
        raise UsageError(str(e)) from None
    if not 1 <= args.smp <= MAX_CPUS:
        raise UsageError(f"--smp takes 1 to {MAX_CPUS} vCPUs, not {args.smp}")
    capture = args.capture_probe
    if args.probe_active and capture is None:
        raise UsageError("--probe-active runs in the guest's capture: add --capture-probe FILE")
    kos = {ko_name(m).removesuffix(".ko"): ko_name(m) for m in args.module}
    module_args = []
    for text in args.module_args:
        try:
            name, params = module_args_of(text)
        except ModuleError as e:
            raise UsageError(str(e)) from None
        if name not in kos:
            raise UsageError(f"--module-args {name}=...: no --module is named {name}")
        module_args.append((kos[name], params))
    files = _initramfs_files(args.initramfs_file)
    vm = _vm_spec(args)
    if (files or args.run is not None) and args.initrd is not None:
        raise UsageError("--initramfs-file and --run need our init: they cannot go with --initrd")
    if capture is not None:
        if args.initrd is not None:
            raise UsageError("--capture-probe needs our init: it cannot go with --initrd")
        if not str(capture) or os.path.lexists(capture):
            raise UsageError(f"{capture}: already exists; a capture never replaces a file")
        check_output_path(capture)
    opts = BootOptions(
        persona=args.persona,
        cpus=args.smp,
        method=args.method,
        modules=tuple(args.module),
        identify_module=not args.no_identify,
        initrd=args.initrd,
        append=args.append,
        timeout=args.timeout,
        capture=capture is not None,
        active=args.probe_active,
        module_args=tuple(module_args),
        kernel_addr=args.kernel_addr,
        memory=args.memory,
        cmdline=args.cmdline,
        testdev=args.testdev,
        files=files,
        run=args.run,
        vm=vm,
    )
    try:
        parts = find_parts(args.kernel, args.headers)
        result = boot(opts, parts, SHIM_ELF)
    except (BadKernel, ModuleError) as e:
        raise UsageError(str(e)) from None
    except (MissingPart, BootError) as e:
        error(str(e))
        return EXIT_GUEST_FAILED
    status = result.exit_status
    if capture is not None:
        problem = result.capture_problem or _write_capture(result.capture or b"", capture)
        if problem is not None:
            error(f"no probe capture: {problem}")
            status = EXIT_GUEST_FAILED
    data = result.to_dict()
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(render.boot_report(data, args.verbose, args.trace))
        if capture is not None and status != EXIT_GUEST_FAILED:
            print(f"probe capture: {capture} (read it with 'gunyah probe --root {capture}')")
    return status


def _vm_spec(args: argparse.Namespace) -> VmSpec | None:
    """--vm and its options, checked before anything boots: each refusal one
    line (a usage error)."""
    from ..boot import vm
    from ..model.personas import get_persona

    if args.vm is None:
        given = [o for o, v in (("--vm-memory", args.vm_memory), ("--vm-cmdline", args.vm_cmdline),
                                ("--vm-dtb", args.vm_dtb), ("--vm-initrd", args.vm_initrd),
                                ("--vm-cpus", args.vm_cpus),
                                ("--no-vm-manager", args.no_vm_manager or None))
                 if v is not None]  # fmt: skip
        if given:
            raise UsageError(f"{', '.join(given)}: for the VM of --vm IMAGE; give --vm too")
        return None
    if args.run is not None or args.initrd is not None:
        raise UsageError("--vm has our init run our VMM: it cannot go with --run or --initrd "
                         "(run your own VMM with --initramfs-file and --run instead)")  # fmt: skip
    if not get_persona(args.persona).rm:
        raise UsageError(f"--vm: the persona {args.persona} has no resource manager to create "
                         "a VM with; use --persona gunyah or gunyah-qemu")  # fmt: skip
    if args.no_vm_manager and not args.module:
        raise UsageError("--no-vm-manager: give your VM manager with --module (a .ko or .c "
                         "that offers /dev/gunyah)")  # fmt: skip
    spec = vm.VmSpec(args.vm, args.vm_memory, args.vm_cmdline, args.vm_dtb, args.vm_initrd,
                     1 if args.vm_cpus is None else args.vm_cpus,
                     own_manager=args.no_vm_manager)  # fmt: skip
    try:
        vm.plan(spec)
        vm.vmm_elf()
    except vm.VmError as e:
        raise UsageError(str(e)) from None
    return spec


def _initramfs_files(texts: list[str]) -> tuple[tuple[Path, str], ...]:
    """--initramfs-file SRC:DEST, each checked: a readable file and a place
    of the user's own in the archive, no place twice."""
    from ..boot.initramfs import MAX_FILES, file_path

    if len(texts) > MAX_FILES:
        raise UsageError(f"--initramfs-file: at most {MAX_FILES} files")
    out: list[tuple[Path, str]] = []
    for text in texts:
        src, sep, dest = text.rpartition(":")
        if not sep or not src:
            raise UsageError(f"--initramfs-file {text!r}: give SRC:DEST, such as ./vmm:/vmm")
        try:
            file_path(dest)
        except ValueError as e:
            raise UsageError(f"--initramfs-file: {e}") from None
        if not Path(src).is_file():
            raise UsageError(f"--initramfs-file {src}: not a regular file")
        if any(d == dest for _, d in out):
            raise UsageError(f"--initramfs-file: {dest} is given twice")
        out.append((Path(src), dest))
    return tuple(out)


def _write_capture(guest_tar: bytes, dest: Path) -> str | None:
    """Run the probe over the tree the guest sent and write what it read as a
    capture; the reason when that cannot be done."""
    from .. import probe

    with tempfile.TemporaryDirectory(prefix="gunyah-capture-") as tmp:
        raw = Path(tmp) / "guest.tar.gz"
        raw.write_bytes(guest_tar)
        try:
            report = probe.probe(str(raw))
            probe.write_capture(report, str(dest))
        except FileExistsError:
            return f"{dest} appeared while the guest ran; a capture never replaces a file"
        except (ValueError, OSError) as e:
            return str(e)
    return None


def cmd_boot_setup(args: argparse.Namespace) -> int:
    from ..boot.kernel import SETUP_SCRIPT, cache_dir

    cache = args.cache or cache_dir()
    p = subprocess.run(["bash", str(SETUP_SCRIPT), str(cache)], stdin=subprocess.DEVNULL)
    return p.returncode


def register(sub: Any) -> None:
    p = sub.add_parser(
        "boot",
        help="boot a real arm64 Linux kernel (or a test kernel) in QEMU with the model as "
        "its hypervisor",
        description="Boot an arm64 Linux kernel in QEMU's virt machine with our EL2 shim "
        "underneath: every HVC and SMC the kernel makes goes to the hypervisor model "
        "(PSCI included), our identification module is inserted and logs its verdict, "
        "and init powers the machine off. The guest is treated as hostile: it sees its RAM "
        "and QEMU's devices and nothing of the shim or the host, and only our init's line "
        "with a per-boot secret gives the verdict. Any other arm64 guest boots too: a "
        "static ELF or a raw binary (--kernel-addr), such as a kvm-unit-tests test, with "
        "your own command line (--cmdline) and exit status (--testdev); nothing of ours "
        "runs in it. Needs 'gunyah boot-setup' once. Exit "
        f"status: after a power-off, the module's verdict ({_verdict_statuses()}; "
        f"{EXIT_OK} without our module); for a kernel that is not Linux, its own "
        f"status (chr-testdev's, {EXIT_OK} for a power-off or once every vCPU is off); "
        f"{EXIT_NO_VERDICT} when the module gave no verdict; {EXIT_VM_FAILED} with --vm when "
        "the boot would exit 0 but the VM did not power off cleanly (its VMM failed, or it "
        "crashed, reset or never ended) or its test failed (a kvm-unit-tests 'EXIT: "
        f"STATUS=n' on its console that is not a pass or a skip); {EXIT_RESET} when "
        f"the guest asked for a reset; {EXIT_GUEST_FAILED} for a panic, a timeout or a "
        f"QEMU failure; {EXIT_USAGE} for "
        "bad usage (a module that does not build, a file that cannot be booted); "
        f"{EXIT_INTERRUPTED}, {EXIT_SIGNALLED + signal.SIGTERM} or "
        f"{EXIT_SIGNALLED + signal.SIGHUP} when stopped by Ctrl-C, SIGTERM or SIGHUP.",
    )
    add_persona(p)
    p.add_argument("--smp", type=int, default=1, metavar="N",
                   help=f"vCPUs, 1 to {MAX_CPUS} (default 1)")  # fmt: skip
    p.add_argument("--memory", type=memory_size, default=MAX_MEMORY, metavar="SIZE",
                   help="the guest's RAM, as QEMU's -m gives it (256M, 1G; MiB without a "
                   f"unit): {MIN_MEMORY >> 20}M to {MAX_MEMORY >> 20}M in steps of "
                   f"{MEMORY_GRANULE >> 20}M (default {MAX_MEMORY >> 20}M: "
                   f"{RAM_SIZE >> 30} GiB less the shim's {SHIM_SIZE >> 20} MiB)")  # fmt: skip
    p.add_argument("--method", choices=("hvc", "smc"), default="hvc",
                   help="the PSCI/SMCCC conduit the device tree names (default hvc)")  # fmt: skip
    p.add_argument("--module", type=Path, action="append", default=[], metavar="FILE",
                   help="a module to insert after ours: FILE.c is built against the "
                   "kernel's headers first (repeatable)")  # fmt: skip
    p.add_argument("--module-args", action="append", default=[], metavar="NAME=PARAMS",
                   help="parameters for the --module named NAME, as insmod takes them "
                   "('standin_gunyah=abi=vendor'; repeatable)")  # fmt: skip
    p.add_argument("--no-identify", action="store_true", help="do not insert our module")
    p.add_argument("--kernel", type=Path, metavar="FILE",
                   help="what to boot: an arm64 Linux Image (default: the one "
                   "boot-setup fetched), a static AArch64 ELF, or a raw binary with "
                   "--kernel-addr")  # fmt: skip
    p.add_argument("--kernel-addr", type=number(64), metavar="ADDR",
                   help="load a raw binary --kernel at ADDR and enter it there: at or "
                   f"above {QEMU_DTB_END:#x} (QEMU keeps its device tree in RAM's first MiB; "
                   f"{KERNEL_ADDR:#x}, where an Image goes, suits a relocatable test "
                   "kernel)")  # fmt: skip
    p.add_argument("--headers", type=Path, metavar="DIR",
                   help="that kernel's kbuild headers, for building modules")  # fmt: skip
    p.add_argument("--initrd", type=Path, metavar="FILE",
                   help="your own initramfs instead of ours (no modules are inserted)")  # fmt: skip
    p.add_argument("--append", default="", metavar="ARGS", help="more kernel command line")
    p.add_argument("--cmdline", metavar="STRING",
                   help="the whole command line instead of ours (a test kernel's argv; the "
                   "empty string too); --append still adds to it")  # fmt: skip
    p.add_argument("--testdev", action="store_true",
                   help="give the guest QEMU's chr-testdev (a virtio console, as "
                   "kvm-unit-tests' runner does) to report its exit status through. Its "
                   "virtio DMA reaches all of RAM, the shim's included: for test kernels "
                   "you trust")  # fmt: skip
    p.add_argument("--timeout", type=seconds, default=60.0, metavar="S",
                   help=f"stop the guest after S seconds (default 60, "
                   f"at most {MAX_TIMEOUT:g})")  # fmt: skip
    p.add_argument("--capture-probe", type=Path, metavar="FILE",
                   help="the guest gathers what 'gunyah probe' reads and it is written to "
                   "FILE as a capture ('gunyah probe --root FILE' reads it)")  # fmt: skip
    p.add_argument("--probe-active", action="store_true",
                   help="with --capture-probe: the guest also runs 'gunyah probe --active' "
                   "(create and destroy a VM through its /dev/gunyah with each ABI), and the "
                   "answers go into the capture")  # fmt: skip
    p.add_argument("--initramfs-file", action="append", default=[], metavar="SRC:DEST",
                   help="put the host's file SRC into our initramfs at DEST (an absolute "
                   "path such as /vmm; executable), repeatable: your VMM, a guest image, a "
                   "VM's device tree")  # fmt: skip
    p.add_argument("--run", metavar="CMD",
                   help="a shell command our init runs (busybox sh, its applets on PATH) "
                   "once the modules are in, before it powers off; its output is the "
                   "console's, and init says 'gunyah-boot: run exited N'")  # fmt: skip
    p.add_argument("--vm", type=Path, metavar="IMAGE",
                   help="run a second VM: our VM manager module and our VMM go into the "
                   "primary's initramfs, and the VMM creates a VM from IMAGE (an arm64 Linux "
                   "Image, told by its header; a static ELF entered at its first address, "
                   "linked there or a static PIE, such as a kvm-unit-tests .elf; or a raw "
                   "binary entered at its first byte; loaded at the VM's memory base, "
                   "0x80000000), runs it and reports every "
                   "exit; the VM's console (the PL011 at 0x9000000 its tree names) and how it "
                   "ended (VM_EXITED's exit type and reason) are printed beside the primary's "
                   "(needs a persona with the resource manager: gunyah, gunyah-qemu); with "
                   "--no-vm-manager, your VM manager instead of ours")  # fmt: skip
    p.add_argument("--vm-memory", type=memory_size, metavar="SIZE",
                   help=f"the VM's memory, as --memory takes it: {MIN_VM_MEMORY >> 20}M to "
                   f"{MAX_VM_MEMORY >> 20}M in steps of {VM_MEMORY_GRANULE >> 20}M (default "
                   f"{DEFAULT_RAW_MEMORY >> 20}M for an ELF or a raw binary, "
                   f"{DEFAULT_LINUX_MEMORY >> 20}M for an Image); the image and its tree "
                   "must fit in it")  # fmt: skip
    p.add_argument("--vm-cmdline", metavar="STRING",
                   help="the VM's kernel command line, in its tree's /chosen/bootargs")  # fmt: skip
    p.add_argument("--vm-dtb", type=Path, metavar="FILE",
                   help="the VM's device tree: yours (a DTB), used as given but for what the "
                   "RM and our VMM need (a gunyah-vm-config node, added if missing, with "
                   "proxy-scheduled vCPUs; /chosen). A tree the RM would refuse (no cpus, no "
                   "GICv3, a memory node) is refused before the boot. Default: ours, with a "
                   "PL011 console at 0x9000000")  # fmt: skip
    p.add_argument("--vm-cpus", type=int, metavar="N",
                   help="the VM's vCPUs in our tree (1 to 8; default 1): our VMM runs each in a "
                   "thread of its own with vcpu_run, and vCPU 0 starts the others with PSCI "
                   "CPU_ON")  # fmt: skip
    p.add_argument("--vm-initrd", type=Path, metavar="FILE",
                   help="the VM's initramfs (a cpio archive, as Linux takes one), loaded at the "
                   "top of its memory, its place in the tree's /chosen (linux,initrd-start and "
                   "-end). Default for an Image: ours, whose /init prints 'gunyah-vm-init: pid 1 "
                   "up S s on N CPUs' and powers the VM off")  # fmt: skip
    p.add_argument("--no-vm-manager", action="store_true",
                   help="with --vm: do not insert our VM manager; yours, given with --module "
                   "(such as the Linux series' drivers/virt/gunyah built for the kernel), "
                   "offers the /dev/gunyah our VMM drives (the series' v14 ioctls)")  # fmt: skip
    p.add_argument("--verbose", action="store_true", help="print the whole console")
    p.add_argument("--trace", action="store_true",
                   help="print every call the kernel made, and with --vm the VM's, each "
                   "with its VM's ID (vm0x3 the primary)")  # fmt: skip
    add_json(p)
    p.set_defaults(func=cmd_boot)

    s = sub.add_parser(
        "boot-setup",
        help="install what 'gunyah boot' needs (Debian: QEMU, cross compiler, kernel)",
        description="Install the Debian packages 'gunyah boot' needs (qemu-system-arm, "
        "gcc-aarch64-linux-gnu, linux-kbuild, make; through apt-get, as root or with sudo) "
        "and fetch bookworm's arm64 kernel Image, its headers and a static busybox into "
        "the cache ($GUNYAH_CACHE, else ~/.cache/gunyah/boot). Does nothing when all "
        "is there.",
    )
    s.add_argument("--cache", type=Path, metavar="DIR", help="the cache directory")
    s.set_defaults(func=cmd_boot_setup)
