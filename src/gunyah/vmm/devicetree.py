"""The device tree a VMM gives its VM, written with the `fdt` library: what
the RM needs to accept it at VM_INIT (docs/real-gunyah.md section 12;
quic/gunyah-resource-manager: src/vm_config/vm_config_parser.c,
platform/qemu/src/vm_dt.c) and, if asked, a PL011 console in the VM's VMMIO
window that our VMM emulates from the vCPU's exits.

That is: a `gunyah-vm-config` node with `image-name`, `memory
{ base-address }` and `vcpus { affinity = "proxy"; }` (the owner runs the
vCPU with vcpu_run); `/cpus/cpu@0`; a PSCI node (SYSTEM_OFF needs it); a
GICv3 named by the root's `interrupt-parent`, without `reg` (the RM places
the vGIC and writes its registers); `/chosen`. No `/memory`: the real RM
refuses a tree with one (docs/real-gunyah.md section 16), and writes its own.

The PL011 is described as QEMU's virt machine describes its own, so that
Linux's amba-pl011 driver binds to it and /dev/console works (docs/boot.md
section 14): an interrupt (SPI 1, never raised: the driver transmits by
polling when nothing fills its FIFO) and a 24 MHz fixed clock for both its
`uartclk` and the AMBA bus's `apb_pclk`. An initramfs's place goes in
/chosen as `linux,initrd-start` and `-end` (the end exclusive: Linux's
drivers/of/fdt.c takes their difference as the size).
"""

from __future__ import annotations

from dataclasses import dataclass

import fdt

from ..guest.vm_tree import vm_device_tree

DEFAULT_BASE = 0x8000_0000  # where the measured VM's memory was (docs/real-gunyah.md section 11)
VMMIO_END = 0x4000_0000  # the RM registers [0, 1 GiB) as the VM's VMMIO window
PAGE = 0x1000
MAX_NAME = 79  # include/rm_types.h VM_MAX_NAME_LEN, without its NUL
MAX_CMDLINE = 2048  # Linux's arm64 COMMAND_LINE_SIZE, with its NUL
GIC_PHANDLE = 1  # gunyah.guest.vm_tree's GICv3
MAX_CPUS = 8  # the RM's cores (rm/vm_config.py MAX_CORES), our VMM's MAX_VCPUS
CLOCK_PHANDLE = 2
UART_CLOCK_HZ = 24_000_000  # QEMU virt's apb-pclk (hw/arm/virt.c)
UART_SPI = 1  # QEMU virt's UART0 (hw/arm/virt.c VIRT_UART)


class TreeError(ValueError):
    """A VM tree that could not work: the message says which part and why."""


@dataclass(frozen=True)
class VmTree:
    """What goes into the tree; every part checked by `build`."""

    image_name: str = "vm"
    base: int = DEFAULT_BASE
    pl011: int | None = None  # the console's guest address, in the VMMIO window
    cmdline: str | None = None  # /chosen/bootargs, for a Linux guest
    initrd: tuple[int, int] | None = None  # its guest addresses [start, end)
    cpus: int = 1  # /cpus/cpu@0.. : the VM's vCPUs


def _words(name: str, *values: int) -> fdt.PropWords:
    return fdt.PropWords(name, *values)


def _pair(value: int) -> tuple[int, int]:
    return value >> 32, value & 0xFFFF_FFFF


def initrd_properties(start: int, end: int) -> list[fdt.Property]:
    """/chosen's `linux,initrd-start` and `-end` (64-bit, the end exclusive)."""
    return [_words("linux,initrd-start", *_pair(start)), _words("linux,initrd-end", *_pair(end))]


def _check(t: VmTree) -> None:
    if not (t.image_name and len(t.image_name) <= MAX_NAME and t.image_name.isascii()
            and t.image_name.isprintable()):  # fmt: skip
        raise TreeError(f"image name {t.image_name!r}: 1 to {MAX_NAME} printable ASCII characters")
    if not (0 < t.base < 1 << 48) or t.base % (2 << 20):
        raise TreeError(f"memory base {t.base:#x}: the RM rounds it to 2 MiB; give one so aligned")
    if t.base < VMMIO_END:
        raise TreeError(f"memory base {t.base:#x} lies in the VMMIO window [0, {VMMIO_END:#x})")
    if t.pl011 is not None and not (0 <= t.pl011 <= VMMIO_END - PAGE and t.pl011 % PAGE == 0):
        raise TreeError(f"PL011 at {t.pl011:#x}: a page in the VMMIO window [0, {VMMIO_END:#x})")
    if t.cmdline is not None and (len(t.cmdline) >= MAX_CMDLINE or not t.cmdline.isascii()
                                  or "\0" in t.cmdline):  # fmt: skip
        raise TreeError(f"command line: ASCII, no NUL, under {MAX_CMDLINE} characters")
    if not 1 <= t.cpus <= MAX_CPUS:
        raise TreeError(f"{t.cpus} vCPUs: the RM gives a VM 1 to {MAX_CPUS}")
    if t.initrd is not None and not (t.base <= t.initrd[0] < t.initrd[1] < 1 << 48
                                     and t.initrd[0] % PAGE == 0):  # fmt: skip
        raise TreeError(f"initramfs at {t.initrd[0]:#x}..{t.initrd[1]:#x}: a page-aligned "
                        "range in the VM's memory")  # fmt: skip


def build(t: VmTree) -> bytes:
    """The tree as a DT blob (version 17); TreeError for parts that cannot work.
    The RM's part is gunyah.guest.vm_tree's; the console and /chosen are ours."""
    _check(t)
    extra = []
    if t.pl011 is not None:
        clock = fdt.Node("apb-pclk")
        clock.append(fdt.PropStrings("compatible", "fixed-clock"))
        clock.append(_words("#clock-cells", 0))
        clock.append(_words("clock-frequency", UART_CLOCK_HZ))
        clock.append(_words("phandle", CLOCK_PHANDLE))
        extra.append(clock)
        uart = fdt.Node(f"pl011@{t.pl011:x}")
        uart.append(fdt.PropStrings("compatible", "arm,pl011", "arm,primecell"))
        uart.append(_words("reg", *_pair(t.pl011), 0, PAGE))
        uart.append(_words("interrupts", 0, UART_SPI, 4))  # GIC_SPI, level high
        uart.append(_words("clocks", CLOCK_PHANDLE, CLOCK_PHANDLE))
        uart.append(fdt.PropStrings("clock-names", "uartclk", "apb_pclk"))
        extra.append(uart)
    # the architected timer (Linux's arm,armv8-timer binding): its PPIs on
    # the vGIC, as QEMU's virt machine names them (secure and non-secure
    # physical 13 and 14, virtual 11, hypervisor 10; level), GIC_PPI 1
    timer = fdt.Node("timer")
    timer.append(fdt.PropStrings("compatible", "arm,armv8-timer"))
    timer.append(_words("interrupts", 1, 13, 4, 1, 14, 4, 1, 11, 4, 1, 10, 4))
    timer.append(fdt.Property("always-on"))
    extra.append(timer)
    chosen = fdt.Node("chosen")
    if t.cmdline is not None:
        # as bytes: the library's string class refuses an empty string
        chosen.append(fdt.PropBytes("bootargs", data=t.cmdline.encode() + b"\0"))
    if t.pl011 is not None:
        chosen.append(fdt.PropStrings("stdout-path", f"/pl011@{t.pl011:x}"))
    for prop in initrd_properties(*t.initrd) if t.initrd is not None else ():
        chosen.append(prop)
    extra.append(chosen)
    return vm_device_tree(image_name=t.image_name, chosen=False, extra=extra, cpus=t.cpus,
                          memory_props=[_words("base-address", *_pair(t.base))])  # fmt: skip
