"""One boot: QEMU's `virt` machine with virtualization on, our EL2 shim as
its firmware, the kernel at EL1 behind the shim's stage-2 map, every HVC and
SMC answered by the model.

The run ends the first way it can: SYSTEM_OFF or a reset reaches the model
(`poweroff`, `reset`); the kernel says it powers down but nothing can do it
(`halted`: a persona without PSCI), every vCPU is off, or every one waits
in WFI with nothing to wake it (`halted`); the kernel panics (`panic`); the shim
reports an exception it did not expect (`shim-fault`); QEMU exits on its
own (`qemu-exit`); or the timeout passes (`timeout`).

The pieces, one idea each: layout.py (where everything is in memory),
options.py (what is asked, checked), qemu.py (QEMU's command line and files),
channel.py (the shim's calls, answered by the model), console.py (what the
guest prints, bounded), results.py (the verdict and the exit status). This
module puts them together and watches the boot end. QEMU is always killed
and reaped, whatever ends the boot.
"""

from __future__ import annotations

import dataclasses
import mmap
import os
import secrets
import subprocess
import tempfile
import threading
import time
from pathlib import Path

from .. import outcome
from ..abi.devicetree import PRIMARY_VM_ID
from ..model import Hypervisor
from ..model.secondary_log import SecondaryLog
from ..model.vms import RIGHTS_RWX, Mapping
from . import devicetree, initramfs, modules, qemu, vm
from .channel import Channel
from .console import MAX_LINE, Console
from .guest import guest_kernel
from .kernel import BadKernel, Parts
from .layout import (
    BOOT_RM_LINK,
    CONFIG,
    CONFIG_MAGIC,
    KERNEL_ADDR,
    MAX_CPUS,
    QEMU_DTB_END,
    RAM_BASE,
    RAM_SIZE,
    SHIM_CONFIG,
    SHIM_MAILBOXES,
    STAGE2_BASE,
    STAGE2_SIZE,
    UART_BASE,
)
from .memory import BootMemory
from .modules import ModuleError
from .options import BootError as BootError
from .options import BootOptions as BootOptions
from .options import (
    check_append,
    check_memory,
    judged,
    module_args,
    read_files,
    read_initrd,
)
from .results import BootResult as BootResult
from .results import result
from .stage2 import Stage2
from .world import World

# cryptomgr.notests: the crypto self-tests test nothing of ours and cost a
# fifth of a boot under TCG (docs/boot.md section 2, the command line).
BOOTARGS = (f"console=ttyAMA0 earlycon=pl011,{UART_BASE:#x} nokaslr rdinit=/init "
            "cryptomgr.notests")  # fmt: skip
PANIC_GRACE = 0.5  # seconds for the rest of a panic's lines
HALT_GRACE = 1.0  # seconds for SYSTEM_OFF to follow the kernel's power-down line
EXIT_GRACE = 0.1  # seconds for the channel's last answer once QEMU has exited
WATCH_SECONDS = 0.1  # the longest the watcher sleeps without news
STAGE2_WAIT_SECONDS = 0.0001  # between looks while the shim applies a stage-2 change
# How long every vCPU must have waited with nothing to wake it before the boot
# ends as halted: a vCPU another just woke tells the host within microseconds.
WAIT_GRACE = 0.5


def prepare_modules(opts: BootOptions, parts: Parts) -> list[Path]:
    """Every module to insert, built where given as C and checked against the
    kernel: ours first. ModuleError names the module and the problem."""
    if opts.initrd is not None:
        return []
    for m in opts.modules:
        if m.suffix not in (".c", ".ko"):
            raise ModuleError(f"--module takes a .c or .ko file, not {m}")
    sources = ([modules.IDENTIFY_SOURCE] if opts.identify_module else []) + list(opts.modules)
    modules.build_all([s for s in sources if s.suffix == ".c"], parts.headers)  # in one go
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
    hyp = Hypervisor(opts.persona, cpus=opts.cpus, link=BOOT_RM_LINK)
    guest = guest_kernel(parts.image, opts.kernel_addr, KERNEL_ADDR, (QEMU_DTB_END, ram_end))
    if not guest.linux:  # a test kernel: nothing of ours runs in it
        if opts.modules or opts.capture or opts.files or opts.run is not None:
            raise BadKernel(f"{parts.image} is not a Linux Image: it cannot load modules, "
                            "take files, run a command or send a probe capture")  # fmt: skip
        opts = dataclasses.replace(opts, identify_module=False)
    vm_plan: vm.VmPlan | None = None
    vm_files: tuple[tuple[str, bytes], ...] = ()
    if opts.vm is not None:
        opts, vm_plan, vm_files = _with_vm(opts, guest.linux, hyp.persona.rm)
    kos = prepare_modules(opts, parts) if guest.linux else []
    wrapper = qemu.pdeathsig()
    nonce = secrets.token_hex(16)
    initrd: bytes | None = None
    if opts.initrd is not None:
        initrd = read_initrd(opts.initrd)
    elif guest.linux:
        try:
            initrd = initramfs.build(parts.busybox, kos, nonce, module_args(opts),
                                     judge=judged(opts), capture=opts.capture,
                                     active=opts.active,
                                     files=read_files(opts.files) + vm_files,
                                     run=opts.run)  # fmt: skip
        except ValueError as e:
            raise BadKernel(str(e)) from None
    dtb_addr = -(-guest.end // 0x20_0000) * 0x20_0000  # the next 2 MiB boundary
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
    dtb = devicetree.edit(qemu.qemu_dtb(parts, opts.cpus), edit)
    if len(dtb) > 0x20_0000:
        raise BootError("the device tree is over 2 MiB")
    config = CONFIG.pack(CONFIG_MAGIC, guest.entry, dtb_addr, opts.cpus, RAM_BASE, ram_end,
                         BOOT_RM_LINK.tx_intid)  # fmt: skip
    fds: list[int] = []
    closing: list[Stage2 | mmap.mmap] = []  # closed last first
    try:
        ram = qemu.memfd("ram", size=RAM_SIZE)
        fds.append(ram)
        # the primary's stage 2 over its RAM: the host's to change, the shim's to carry out
        s2map = mmap.mmap(ram, STAGE2_SIZE, offset=STAGE2_BASE - RAM_BASE)
        stage2 = Stage2(memoryview(s2map), [Mapping(RAM_BASE, RAM_BASE, opts.memory, RIGHTS_RWX)],
                        wait=lambda: time.sleep(STAGE2_WAIT_SECONDS))  # fmt: skip
        closing.append(s2map)
        closing.append(stage2)
        loads: list[tuple[int | None, str]] = [(None, qemu.option_path(shim))]
        blobs = [(s.address, s.data) for s in guest.segments if s.data]
        if guest.linux:
            loads.append((KERNEL_ADDR, qemu.option_path(parts.image)))
        blobs += [(dtb_addr, dtb), (SHIM_CONFIG, config), (STAGE2_BASE, stage2.image())]
        if initrd is not None:
            blobs.append((initrd_addr, initrd))
        for addr, data in blobs:
            fds.append(qemu.memfd("load", data))
            loads.append((addr, f"/proc/self/fd/{fds[-1]}"))
        cmd = qemu.command(wrapper, parts, opts.cpus, ram, loads, opts.testdev)
        channel = Channel(hyp, opts.cpus, ram, SHIM_MAILBOXES - RAM_BASE, stage2=stage2)
        # the secondaries' calls, placed among the primary's by its count
        log = SecondaryLog(clock=lambda: channel.call_count)
        hyp.vms.log = log

        def mapped(ipa: int, size: int) -> bool:  # in the primary's stage 2 now
            return hyp.vms.translate(PRIMARY_VM_ID, ipa, size) == ipa

        memory = BootMemory(ram, RAM_BASE, ram_end, lambda: channel.translation(hyp.cpu), mapped)
        hyp.attach_memory(memory)
        # the RAM is the model's too: the RM's parcels are cut from it and a
        # secondary VM's vCPU runs in the pages they name
        hyp.attach_ram(RAM_BASE, memory.ram)
        hyp.vms.stage2[PRIMARY_VM_ID] = stage2.check
        # a secondary VM's vCPUs run on the shim, behind their own stage 2
        # (docs/boot.md section 12)
        world = World.over_ram(ram, channel, lambda: hyp.cpu)
        hyp.vms.backends = world
        channel.tick = world.tick
        try:
            result = _run(cmd, fds, channel, opts, kos, nonce, cancel, log, vm_plan)
            return dataclasses.replace(result, kernel_kind=guest.kind)
        finally:
            hyp.vms.drop_runners()  # a VM still running holds views of the RAM
            channel.close()
            hyp.vms.backends = None
            world.close()
            hyp.vms.stage2.pop(PRIMARY_VM_ID, None)
            hyp.attach_memory(None)
            memory.close()
    finally:
        for thing in reversed(closing):
            thing.release() if isinstance(thing, Stage2) else thing.close()
        for fd in fds:
            os.close(fd)


def _loads_vm_manager(mods: tuple[Path, ...]) -> bool:
    """Whether the boot inserts our VM manager (as C or built)."""
    return any(m.stem == modules.VM_MANAGER_SOURCE.stem for m in mods)


def _with_vm(opts: BootOptions, linux: bool, rm: bool
             ) -> tuple[BootOptions, vm.VmPlan, tuple[tuple[str, bytes], ...]]:  # fmt: skip
    """--vm: the boot's options with our VM manager module and our VMM's
    command, the VM's plan and its files; BadKernel in one line for what
    cannot be."""
    assert opts.vm is not None
    if not linux or opts.initrd is not None:
        raise BadKernel("--vm runs our VMM in our initramfs: it needs a Linux kernel "
                        "and no --initrd")  # fmt: skip
    if not rm:
        raise BadKernel(f"--vm: the persona {opts.persona} has no resource manager to create "
                        "a VM with; use gunyah or gunyah-qemu")  # fmt: skip
    if opts.run is not None:
        raise BadKernel("--vm has our init run our VMM: it cannot go with --run (run your own "
                        "VMM with --initramfs-file and --run instead)")  # fmt: skip
    try:
        plan = vm.plan(opts.vm)
        vmm = vm.vmm_elf().read_bytes()
        files = vm.files(opts.vm, plan, vmm)
    except (vm.VmError, OSError) as e:
        raise BadKernel(str(e)) from None
    mods = opts.modules
    if opts.vm.own_manager:
        if not mods:
            raise BadKernel("--no-vm-manager: give your VM manager with --module "
                            "(a .ko or .c that offers /dev/gunyah)")  # fmt: skip
    elif not _loads_vm_manager(mods):
        mods = (*mods, modules.VM_MANAGER_SOURCE)
    return dataclasses.replace(opts, modules=mods, run=plan.run), plan, files


def _run(
    cmd: list[str],
    fds: list[int],
    channel: Channel,
    opts: BootOptions,
    kos: list[Path],
    nonce: str,
    cancel: threading.Event | None,
    log: SecondaryLog,
    vm_plan: vm.VmPlan | None,
) -> BootResult:
    """QEMU's stderr goes to an unnamed file: a pipe nobody reads while it
    runs could fill and stop it."""
    start = time.monotonic()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=err, pass_fds=fds, start_new_session=True)  # fmt: skip
        try:
            assert proc.stdout is not None
            console = Console(proc.stdout, nonce, opts.capture, channel.ended)
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
    return result(stopped_by, seconds, channel, console, opts, kos, stderr, proc.returncode,
                  log, vm_plan)  # fmt: skip


def _watch(
    proc: subprocess.Popen[bytes],
    channel: Channel,
    console: Console,
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
            return outcome.INTERRUPTED
        now = time.monotonic()
        final = channel.final
        if final is not None:
            return outcome.POWEROFF if final.kind == "system_off" else outcome.RESET
        if channel.fault is not None:
            return outcome.SHIM_FAULT
        if channel.error is not None:
            return outcome.HOST_ERROR
        if not any(channel.hyp.power.on):  # every vCPU off: nothing left to run
            return outcome.HALTED
        online = {cpu for cpu, on in enumerate(channel.hyp.power.on) if on}
        if online <= set(channel.waiting):  # and nothing but one of them could wake another
            changes = channel.wait_changes
            if settled is None or settled[0] != changes:
                settled = (changes, now)
            elif now - settled[1] > WAIT_GRACE:
                return outcome.HALTED
        else:
            settled = None
        if console.power_down_at is not None and (
            console.panic_at is not None or now - console.power_down_at > HALT_GRACE
        ):
            return outcome.HALTED
        if console.panic_at is not None and (
            console.panic_ended or now - console.panic_at > PANIC_GRACE
        ):
            return outcome.PANIC
        if proc.poll() is not None:
            if exited_at is None:  # the channel's last answer may still be on its way
                exited_at = now
            elif now - exited_at > EXIT_GRACE:
                return outcome.QEMU_EXIT
        if now > deadline:
            return outcome.TIMEOUT
        channel.ended.wait(WATCH_SECONDS)


