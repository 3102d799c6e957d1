"""`gunyah boot --vm IMAGE`: a secondary VM run by our VMM in the booted
primary, and what its VMM reported.

Before the boot: the image (a Linux arm64 Image, told by its header's magic,
or a raw binary entered at its first byte), the VM's memory, its device
tree (ours, gunyah.vmm.devicetree's, with a PL011 console at QEMU virt's
address; or the user's, with what the RM and our VMM need put in) and its
initramfs (the user's, or for a Linux Image ours: an /init that reports and
powers off, src/gunyah/vmm/vm_init.c), each checked, a refusal being one
`VmError` line. They go into our initramfs with our VMM
(src/gunyah/vmm/vmm.c), which init runs.

After it: the VMM's lines on the primary's console (`vmm: ...`, written by
the primary, so untrusted) read by `report` in one bounded pass: the
secondary's console, the exits counted, how the VM ended (the exit type and
reason of the RM's VM_EXITED, named as gunyah.abi.rm names them) and how
the VMM ended.
"""

from __future__ import annotations

import io
import os
import re
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fdt

from ..abi import rm
from ..rm import vm_config
from ..rm.vm_config import set_property, subnode
from ..vmm.devicetree import DEFAULT_BASE, MAX_CPUS, VMMIO_END, TreeError, VmTree, initrd_properties
from ..vmm.devicetree import build as build_tree
from . import initramfs
from .kernel import IMAGE_HEADER, IMAGE_MAGIC, file_head

# where the VMM and the VM's files go in our initramfs, and init's command
VMM_PATH, IMAGE_PATH, DTB_PATH, INITRD_PATH = "/vmm", "/vm/image", "/vm/dtb", "/vm/initrd"
# The VM's memory: at most what our VMM maps (src/gunyah/vmm/vmm.c MAX_MEM),
# in steps of the 2 MiB the RM aligns a VM's memory base to (rm/vm_config.py)
MAX_VM_MEMORY = 256 << 20
MIN_VM_MEMORY = 2 << 20
VM_MEMORY_GRANULE = 2 << 20
PAGE = 0x1000
DEFAULT_RAW_MEMORY = 2 << 20  # the measured VM's (docs/real-gunyah.md section 11)
DEFAULT_LINUX_MEMORY = 128 << 20
UART = 0x900_0000  # QEMU virt's PL011: where a guest built for virt writes
IMAGE_NAME = "vm"
ELF_MAGIC = b"\x7fELF"
IPA_LIMIT = 1 << 48
DT_ROOM = 0x10000  # the tree's room to grow in place after the image (vmm.c DT_ROOM)
# our /init's line (src/gunyah/vmm/vm_init.c), on the VM's console
# A kvm-unit-tests test's end on its console (lib/arm/io.c exit: the status
# (code << 1) | 1, as chr-testdev gives it QEMU; its runner takes code 0 as a
# pass and 77 >> 1 as a skip: lib/report.c report_summary)
_TEST_EXIT = re.compile(r"EXIT: STATUS=(\d{1,3})")
TEST_PASS, TEST_SKIP = 0, 77 >> 1
_INIT_UP = re.compile(r"gunyah-vm-init: pid 1 up (\d{1,6}\.\d{6}) s on (\d{1,3}) CPUs, "
                      "powering off")

POWER_OFF = rm.EXIT_TYPE["PLATFORM_OFF"]  # VM_EXITED's exit type after SYSTEM_OFF

MAX_LINES = 10_000  # of the secondary's console kept (the last ones); the rest counted
VMM_LINE = "vmm: "


class VmError(ValueError):
    """What --vm, --vm-memory, --vm-cmdline or --vm-dtb asks cannot be
    done; the message says which and what to do instead."""


@dataclass(frozen=True)
class VmSpec:
    """What the user asked for."""

    image: Path
    memory: int | None = None  # bytes; None: the image kind's default
    cmdline: str | None = None  # /chosen/bootargs
    dtb: Path | None = None  # the user's own tree
    initrd: Path | None = None  # the user's own initramfs; None: ours for a Linux Image
    cpus: int = 1  # vCPUs, in our tree (the user's tree names its own)
    # the user's --module gives /dev/gunyah (the series' VM manager, say) and
    # ours is not inserted: two drivers would both claim the RM's node
    own_manager: bool = False


@dataclass(frozen=True)
class VmPlan:
    """The VM as our VMM will make it: the files for the initramfs and
    init's command."""

    kind: str  # "linux", "elf" or "raw"
    image_bytes: int
    memory: int
    base: int
    tree: bytes
    initrd_bytes: int = 0  # 0: none
    initrd_offset: int = 0  # from the memory's base, page-aligned, at its top
    cpus: int = 1  # the vCPUs its tree names, which our VMM runs

    @property
    def run(self) -> str:
        cmd = f"{VMM_PATH} {IMAGE_PATH} {DTB_PATH} {self.memory:#x} {self.base:#x}"
        if self.initrd_bytes:
            cmd += f" {INITRD_PATH} {self.initrd_offset:#x}"
        return cmd


def _read(path: Path, limit: int, what: str) -> bytes:
    if not path.is_file():  # before opening: a FIFO would not end
        raise VmError(f"{what} {path}: not a regular file (give the path of a file)")
    try:
        with path.open("rb") as f:
            data = f.read(limit + 1)
    except OSError as e:
        raise VmError(f"{what} {path}: {e.strerror}") from None
    if len(data) > limit:
        raise VmError(f"{what} {path}: over {limit >> 10} KiB; it cannot fit")
    return data


def _head(path: Path) -> bytes:
    """The image's first bytes, enough to tell its kind."""
    try:
        return file_head(path)
    except OSError as e:
        raise VmError(f"--vm {path}: {e.strerror}") from None


def image_kind(head: bytes) -> str:
    """The kind: "linux" for an arm64 Image (the magic ARM\\x64 at byte 56: Linux's
    Documentation/arch/arm64/booting.rst), "elf" for an ELF, else "raw"."""
    if len(head) >= IMAGE_HEADER.size and IMAGE_HEADER.unpack_from(head)[-2] == IMAGE_MAGIC:
        return "linux"
    if head[:4] == ELF_MAGIC:
        return "elf"
    return "raw"


@dataclass(frozen=True)
class ElfImage:
    """A static ELF laid out for the VM as one image from its first address:
    its segments, zeros between and after them up to a page past its
    memory's reach (its .bss, and its stack where its symbols say: our VMM
    puts the device tree after the image, and kvm-unit-tests asserts its
    tree lies above its stack's top, lib/arm/setup.c), and where it was
    linked (None: position-independent, placed at the VM's base)."""

    data: bytes
    linked_at: int | None


def _stack_top(blob: bytes) -> int | None:
    """The ELF's `stacktop` symbol, if it has one: kvm-unit-tests' stack lies
    past its segments, up to there (arm/flat.lds), and must stay clear."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile
    from elftools.elf.sections import SymbolTableSection

    try:
        table = ELFFile(io.BytesIO(blob)).get_section_by_name(".symtab")
        if not isinstance(table, SymbolTableSection):
            return None
        found = table.get_symbol_by_name("stacktop")
        return int(found[0]["st_value"]) if found else None
    except (ELFError, struct.error, ValueError, OverflowError, KeyError, IndexError,
            TypeError):  # fmt: skip
        return None  # what the ELF library raises on a table that points anywhere


def elf_image(path: Path, limit: int) -> ElfImage:
    """The ELF at `path` as our VMM loads an image: at the VM's memory base,
    entered at its first byte (kvm-unit-tests' .elf files are such, static
    PIEs that relocate themselves). VmError for any other, or one that would
    not fit `limit` bytes."""
    # not at import: the CLI starts without the CPU emulator's package
    from ..vcpu.loader import GuestError, parse_elf, read_guest

    try:
        blob = read_guest(path)
        elf = parse_elf(blob, path, position_independent=True)
    except GuestError as e:
        raise VmError(f"--vm {e}") from None
    low = min(s.address for s in elf.segments)
    if elf.entry != low:
        raise VmError(f"--vm {path}: its entry point {elf.entry:#x} is not its first address "
                      f"{low:#x}; a VM starts at its image's first byte")  # fmt: skip
    reach = max(elf.end, _stack_top(blob) or 0) - low
    size = -(-reach // PAGE) * PAGE + PAGE
    if size > limit:
        raise VmError(f"--vm {path}: it reaches {reach >> 10} KiB from its first address, "
                      f"more than the {limit >> 10} KiB it may have")  # fmt: skip
    data = bytearray(size)
    for seg in elf.segments:
        at = seg.address - low
        data[at : at + len(seg.data)] = seg.data
    return ElfImage(bytes(data), None if elf.relocatable else low)


def check_memory(size: int) -> None:
    """VmError unless a VM can be given `size` bytes (--vm-memory)."""
    if not MIN_VM_MEMORY <= size <= MAX_VM_MEMORY or size % VM_MEMORY_GRANULE:
        raise VmError(f"--vm-memory: {size / (1 << 20):g} MiB; a VM is given "
                      f"{MIN_VM_MEMORY >> 20} to {MAX_VM_MEMORY >> 20} MiB, in steps of "
                      f"{VM_MEMORY_GRANULE >> 20} MiB")  # fmt: skip


def _initrd(spec: VmSpec, kind: str, limit: int) -> bytes | None:
    """The VM's initramfs: the user's, else ours for a Linux Image, else none."""
    if spec.initrd is not None:
        data = _read(spec.initrd, limit, "--vm-initrd")
        if not data:
            raise VmError(f"--vm-initrd {spec.initrd}: empty; give a cpio archive (newc), "
                          "compressed or not")  # fmt: skip
        return data
    if kind == "linux":
        return initramfs.secondary(vm_init_elf().read_bytes())
    return None


def plan(spec: VmSpec) -> VmPlan:
    """The VM, checked: VmError for what cannot work, in one line."""
    if spec.memory is not None:
        check_memory(spec.memory)
    if not 1 <= spec.cpus <= MAX_CPUS:
        raise VmError(f"--vm-cpus: {spec.cpus}; a VM is given 1 to {MAX_CPUS} vCPUs (the RM's "
                      "cores, our VM manager's)")  # fmt: skip
    limit = min(spec.memory or MAX_VM_MEMORY, initramfs.MAX_FILE)
    kind = image_kind(_head(spec.image))
    elf = elf_image(spec.image, limit) if kind == "elf" else None
    image = elf.data if elf is not None else _read(spec.image, limit, "--vm")
    if not image:
        raise VmError(f"--vm {spec.image}: empty; give a Linux arm64 Image, a static ELF "
                      "or a raw binary")  # fmt: skip
    memory = spec.memory or (DEFAULT_LINUX_MEMORY if kind == "linux" else DEFAULT_RAW_MEMORY)
    span = len(image)
    if kind == "linux":  # the Image's image_size: its bss must stay free too
        span = max(span, IMAGE_HEADER.unpack_from(image)[3])
    rd = _initrd(spec, kind, limit)
    # the initramfs at the top of the memory, the tree after the image
    rd_off = memory - -(-len(rd) // PAGE) * PAGE if rd else memory
    if rd_off <= 0:
        raise VmError(f"--vm-initrd {spec.initrd}: {len(rd or b'') >> 10} KiB, more than the "
                      f"VM's {memory >> 20} MiB; give more with --vm-memory")  # fmt: skip
    if spec.dtb is None:
        base, cpus = DEFAULT_BASE, spec.cpus
        where = None if not rd else (base + rd_off, base + rd_off + len(rd))
        try:
            tree = build_tree(VmTree(image_name=IMAGE_NAME, pl011=UART, cmdline=spec.cmdline,
                                     initrd=where, cpus=spec.cpus))  # fmt: skip
        except TreeError as e:
            raise VmError(f"--vm-cmdline: {e}") from None
    else:  # the initramfs's place depends on the base the user's tree names
        blob = _read(spec.dtb, vm_config.MAX_DT_SIZE, "--vm-dtb")
        if spec.cpus != 1:
            raise VmError("--vm-cpus: for our tree; yours names its vCPUs (/cpus/cpu@N)")
        tree, cfg = user_tree(blob, spec.dtb, spec.cmdline, None)
        base, cpus = cfg.base, len(cfg.cpus)
        if rd:
            where = (base + rd_off, base + rd_off + len(rd))
            tree = user_tree(blob, spec.dtb, spec.cmdline, where)[0]
    dt_off = max(-(-span // PAGE) * PAGE, PAGE)  # where our VMM puts it
    room = max(min(DT_ROOM, memory - dt_off), len(tree)) if rd else len(tree)
    if dt_off + room > rd_off:
        what = "" if not rd else f", its room to grow and the initramfs ({len(rd)} bytes)"
        need = -(-(dt_off + room + memory - rd_off) // 1024)
        raise VmError(f"--vm {spec.image}: the image ({span} bytes with what it must keep "
                      f"free), its device tree{what} need {need} KiB, more than the VM's "
                      f"{memory >> 20} MiB; give more with --vm-memory")  # fmt: skip
    if base + memory > IPA_LIMIT:
        raise VmError(f"--vm-dtb: memory at {base:#x} for {memory >> 20} MiB leaves the "
                      "48-bit address space")  # fmt: skip
    if elf is not None and elf.linked_at not in (None, base):
        raise VmError(f"--vm {spec.image}: linked at {elf.linked_at:#x}, but the VM's memory "
                      f"starts at {base:#x}; link it there, or as a static PIE")  # fmt: skip
    return VmPlan(kind, len(image), memory, base, tree, len(rd or b""), rd_off if rd else 0,
                  cpus)  # fmt: skip


def files(spec: VmSpec, p: VmPlan, vmm: bytes) -> tuple[tuple[str, bytes], ...]:
    """The initramfs's files for the VM (the image and initramfs read again:
    they were checked)."""
    if p.kind == "elf":
        image = elf_image(spec.image, p.memory).data
        if len(image) != p.image_bytes:
            raise VmError(f"--vm {spec.image}: it changed since it was checked")
    else:
        image = _read(spec.image, p.image_bytes, "--vm")
    out = [(VMM_PATH, vmm), (IMAGE_PATH, image), (DTB_PATH, p.tree)]
    rd = _initrd(spec, p.kind, p.initrd_bytes)
    if rd is not None:
        if len(rd) != p.initrd_bytes:
            raise VmError(f"--vm-initrd {spec.initrd}: it changed since it was checked")
        out.append((INITRD_PATH, rd))
    return tuple(out)


# -- the user's tree -----------------------------------------------------------------
def user_tree(blob: bytes, path: Path, cmdline: str | None,
              initrd: tuple[int, int] | None) -> tuple[bytes, vm_config.VmConfig]:  # fmt: skip
    """The user's tree with what the RM and our VMM need, and the RM's
    reading of it (its memory base, its cpus): a `gunyah-vm-config` node
    (added when it has none: image name, memory base-address 0x80000000)
    whose vCPUs are proxy-scheduled (our VMM runs them with vcpu_run), and
    /chosen (bootargs from --vm-cmdline, the initramfs's place, [start, end),
    when there is one). Everything else as given. VmError when the RM would refuse it at VM_INIT
    or VM_START (quic/gunyah-resource-manager: src/vm_config/vm_config_parser.c,
    src/vm_creation/vm_creation.c), or our VMM could not map it."""
    what = f"--vm-dtb {path}"
    tree = vm_config.load(blob)
    if tree is None:
        raise VmError(f"{what}: not a device tree blob the RM reads (a DTB of version "
                      f"16 or 17, under {vm_config.MAX_DT_SIZE >> 20} MiB; "
                      "dtc -O dtb makes one)")  # fmt: skip
    root = tree.fdt.root
    config = root.get_subnode("gunyah-vm-config") or root.get_subnode("qcom,vm-config")
    if config is None:
        config = subnode(root, "gunyah-vm-config")
    if config.get_property("image-name") is None:
        set_property(config, fdt.PropStrings("image-name", IMAGE_NAME))
    memory = subnode(config, "memory")
    if memory.get_property("base-address") is None:
        cells = config.get_property("#address-cells")
        n = 2 if cells is None else vm_config.u32(config, "#address-cells")
        if n not in (1, 2):
            raise VmError(f"{what}: its {config.name} has #address-cells {n}; give 2")
        words = [DEFAULT_BASE >> 32, DEFAULT_BASE & 0xFFFF_FFFF][-n:]
        set_property(memory, fdt.PropWords("base-address", *words))
    set_property(subnode(config, "vcpus"), fdt.PropStrings("affinity", "proxy"))
    chosen = subnode(root, "chosen")
    if cmdline is not None:
        if "\0" in cmdline or not cmdline.isascii() or len(cmdline) >= 2048:
            raise VmError("--vm-cmdline: ASCII, no NUL, under 2048 characters")
        set_property(chosen, fdt.PropBytes("bootargs", data=cmdline.encode() + b"\0"))
    for prop in initrd_properties(*initrd) if initrd is not None else ():
        set_property(chosen, prop)
    out = vm_config.serialize(root)
    again = vm_config.load(out)
    cfg = "it no longer reads as a tree" if again is None else vm_config.parse_or_why(again)
    if isinstance(cfg, str) or again is None:
        raise VmError(f"{what}: the RM would refuse it at VM_INIT: {cfg}")
    if not 0 < len(cfg.cpus) <= vm_config.MAX_CORES:
        raise VmError(f"{what}: it names {len(cfg.cpus)} vCPUs (/cpus/cpu@N); the RM "
                      f"takes 1 to {vm_config.MAX_CORES}")  # fmt: skip
    if cfg.crash_fatal or cfg.is_direct:
        raise VmError(f"{what}: crash-fatal and is-direct are for trusted VMs; the RM "
                      "refuses them from an untrusted owner")  # fmt: skip
    if again.fdt.root.get_subnode("hypervisor") is not None:
        raise VmError(f"{what}: it has a /hypervisor node; the RM writes its own there")
    if cfg.gicd is None and cfg.vgic_phandle in (0, vm_config.INVALID):
        raise VmError(f"{what}: no GICv3 (compatible \"arm,gic-v3\") that the root's "
                      "interrupt-parent names; the RM places the VM's vGIC there")  # fmt: skip
    if cfg.base < VMMIO_END or cfg.base % (2 << 20):
        raise VmError(f"{what}: memory base-address {cfg.base:#x} lies in the VMMIO window "
                      f"[0, {VMMIO_END:#x}); give one at or above it")  # fmt: skip
    return out, cfg


# -- what the VMM reported -----------------------------------------------------------
_EXIT = re.compile(r"exit (powered-off|crashed) type (\d{1,10}) reason 0x([0-9a-f]{1,16})")
_RAN = re.compile(r"vcpu_run returned (\d{1,10}) times")
_AGAIN = re.compile(r"(?:cpu\d{1,2} )?the same again (\d{1,10}) times")  # exits not printed
_LIFE = re.compile(r"life cycle (\d{1,12}) us")  # GH_CREATE_VM to teardown
_ERROR = re.compile(r"error ([ -~]{1,64}) errno (\d{1,10})")


def _name(names: dict[int, str], n: int) -> str:
    return names.get(n, f"unknown ({n})")


def report(lines: Iterable[str], p: VmPlan, spec: VmSpec, vmid: int | None,
           ended: tuple[int, int] | None = None) -> dict[str, Any]:  # fmt: skip
    """The VM's part of the boot's report from the primary's console, in one
    pass over lines already bounded (boot.console): the secondary's console
    (the last MAX_LINES), the exits, the end, the VMM's end. `vmid` and
    `ended` (exit type, reason) are the model's own record of the VM, shown
    beside the VMM's word (`hypervisor_end`)."""
    console: list[str] = []
    console_lines = exits = 0  # the exits the VMM printed, where it gave no count
    ran: int | None = None  # vcpu_run's returns, as the VMM counted them
    life_us: int | None = None  # the VMM's clock from GH_CREATE_VM to the VM's teardown
    started = False
    end: dict[str, Any] | None = None
    vmm_end: str | None = None
    vmm_status: int | None = None
    init_up: float | None = None  # our /init's uptime, as it reported it
    init_cpus: int | None = None  # and the CPUs it had
    test: int | None = None  # a kvm-unit-tests test's code, as it printed it
    for line in lines:
        if line.startswith(initramfs.RAN):
            digits = line[len(initramfs.RAN) :].strip()
            if digits.isdigit() and len(digits) <= 3 and vmm_status is None:
                vmm_status = int(digits)
            continue
        if not line.startswith(VMM_LINE):
            continue
        text = line[len(VMM_LINE) :]
        if text.startswith("console "):
            console_lines += 1
            console.append(text[len("console ") :])
            if init_up is None and (m := _INIT_UP.fullmatch(console[-1])) is not None:
                init_up, init_cpus = float(m[1]), int(m[2])
            elif (m := _TEST_EXIT.fullmatch(console[-1])) is not None and int(m[1]) & 1:
                test = int(m[1]) >> 1
            if len(console) > MAX_LINES:
                del console[: len(console) - MAX_LINES]
        elif text.startswith("mmio "):
            exits += 1
        elif (m := _AGAIN.fullmatch(text)) is not None:
            exits += int(m[1])
        elif text.startswith("started VM"):
            started = True
        elif ran is None and (m := _RAN.fullmatch(text)) is not None:
            ran = int(m[1])
        elif life_us is None and (m := _LIFE.fullmatch(text)) is not None:
            life_us = int(m[1])
        elif end is None and (m := _EXIT.fullmatch(text)) is not None:
            exits += 1
            t, reason = int(m[2]), int(m[3], 16)
            end = {"status": m[1], "exit_type": t, "exit_type_name": _name(rm.EXIT_TYPES, t),
                   "reason": reason, "reason_name": _name(rm.EXIT_CODES, reason)}  # fmt: skip
        elif end is None and text in ("exit load-failed", "exit unknown"):
            exits += 1
            end = {"status": text[len("exit ") :], "exit_type": None, "exit_type_name": None,
                   "reason": None, "reason_name": None}  # fmt: skip
        elif vmm_end is None and (text == "done" or _ERROR.fullmatch(text)
                                  or text.startswith("stopped after ")):  # fmt: skip
            vmm_end = text[:120]
    powered_off = end is not None and end["status"] == "powered-off" and \
        end["exit_type"] == POWER_OFF  # fmt: skip
    ok = powered_off and vmm_end == "done" and vmm_status == 0
    why = None
    if not ok:
        why = problem(started, end, vmm_end, vmm_status) + (
            LINUX_NOT_YET if p.kind == "linux" and end is None else "")
    elif test is not None and test not in (TEST_PASS, TEST_SKIP):
        why = (f"the VM's test failed: it exited {test} (EXIT: STATUS={test << 1 | 1} on its "
               "console; kvm-unit-tests' code 0 is a pass, 38 a skip)")  # fmt: skip
    return {
        "image": str(spec.image),
        "kind": p.kind,
        "memory": p.memory,
        "base": p.base,
        "own_dtb": spec.dtb is not None,
        "cpus": p.cpus,
        "initrd": None if not p.initrd_bytes else {
            "bytes": p.initrd_bytes, "address": p.base + p.initrd_offset,
            "ours": spec.initrd is None},  # fmt: skip
        "init_seconds": init_up,
        "init_cpus": init_cpus,
        "own_manager": spec.own_manager,
        "vmid": vmid,
        "started": started,
        "console": console,
        "console_dropped": console_lines - len(console),
        "exits": exits if ran is None else ran,
        "life_cycle_us": life_us,
        "end": end,
        "hypervisor_end": None if ended is None else {
            "exit_type": ended[0], "exit_type_name": _name(rm.EXIT_TYPES, ended[0]),
            "reason": ended[1], "reason_name": _name(rm.EXIT_CODES, ended[1])},  # fmt: skip
        "vmm": vmm_end,
        "vmm_status": vmm_status,
        "test_status": test,
        "ok": why is None,
        "problem": why,
    }


# a Linux secondary that never ends: one whose initramfs has no init that
# powers it off (docs/boot.md section 14) panics or waits there for good
LINUX_NOT_YET = (" (a Linux secondary whose initramfs has no /init, or one that does not "
                 "power off, stays there: leave out --vm-initrd for ours, or give it "
                 "--vm-cmdline with panic=-1 to have a panic reset it)")  # fmt: skip

# what to do next, for the failures a user can do something about
HINTS = {
    # E2BIG: the VM manager shares a region as a parcel of at most 512 runs of
    # contiguous pages (src/gunyah/boot/module/gunyah_vm.c MAX_SGL); the
    # VMM asks for huge pages, and where the kernel gives small ones its
    # memory is seldom contiguous past 2 MiB (docs/boot.md section 10)
    "error GH_VM_SET_USER_MEM_REGION errno 7": " (the VM's memory is in too many pieces for one "
    "memory parcel: give less with --vm-memory, such as 2M)",
    "error IMAGE errno 27": " (the image does not fit: give more with --vm-memory)",
    # ENOMEM: the RM's VM_START refused with NOMEM, the hypervisor having no
    # room to power the VM on (the RM's rm_error_from_hyp; in a boot, the
    # shim's pool for a VM's stage 2 tables, its vCPU slots or VMIDs), as
    # when a VM manager of the user's shares memory in small pages
    "error GH_VM_START errno 12": " (the model's shim has no room for this VM: give less "
    "with --vm-memory, or let the primary's kernel use huge pages)",
}


def problem(started: bool, end: dict[str, Any] | None, vmm_end: str | None,
            vmm_status: int | None) -> str:  # fmt: skip
    """Why the VM did not power off cleanly, in one line."""
    if vmm_end is not None and vmm_end.startswith("error"):
        return f"our VMM failed: {vmm_end}{HINTS.get(vmm_end, '')}"
    if not started:
        return "our VMM never started the VM (it did not run, or stopped before VM_START)"
    if end is None:
        return "the VM never ended: our VMM reported no exit status"
    if end["exit_type"] is None:
        return f"the VM ended with {end['status']}"
    if end["exit_type"] != POWER_OFF or end["status"] != "powered-off":
        return (f"the VM ended {end['status']}: {end['exit_type_name']}, reason "
                f"{end['reason_name']}")  # fmt: skip
    if vmm_end != "done":
        return f"our VMM did not finish: {vmm_end or 'it said nothing after the VM ended'}"
    return f"our VMM exited {vmm_status}"


def _program(path: Path) -> Path:
    if not os.path.isfile(path):
        raise VmError(f"{path} is missing; build it with 'python -m gunyah.toolchain'")
    return path


def vmm_elf() -> Path:
    from ..toolchain import VMM_ELF

    return _program(VMM_ELF)


def vm_init_elf() -> Path:
    from ..toolchain import VM_INIT_ELF

    return _program(VM_INIT_ELF)
