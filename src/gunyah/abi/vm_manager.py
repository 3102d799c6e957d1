"""/dev/gunyah, the VM manager's user interface in the Linux series' v14
form, declared once: its ioctl numbers and the layouts of their argument
structs, from which the C header our module and our VMM include is written.

The source is the header Android's 6.1 common kernel carries
(android14-6.1: include/uapi/linux/gunyah.h, the series' v14 with two
Android additions under type 'A'); mainline Linux 6.1 has no Gunyah UAPI.
A number is asm-generic/ioctl.h's `_IOC(dir, type, nr, size)`: nr in bits
7:0, type in 15:8, the argument's size in 29:16, the direction in 31:30
(1 write: the kernel reads the struct; 2 read). Layouts follow the arm64
LP64 C ABI: every member at its natural alignment, a struct padded to its
largest member's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

# asm-generic/ioctl.h
IOC_NRSHIFT, IOC_TYPESHIFT, IOC_SIZESHIFT, IOC_DIRSHIFT = 0, 8, 16, 30
IOC_SIZEBITS = 14
IOC_NONE, IOC_WRITE, IOC_READ = 0, 1, 2

IOCTL_TYPE = ord("G")  # GH_IOCTL_TYPE
ANDROID_IOCTL_TYPE = ord("A")  # GH_ANDROID_IOCTL_TYPE

# GH_MEM_ALLOW_*: a region's rights for the VM
MEM_ALLOW_READ, MEM_ALLOW_WRITE, MEM_ALLOW_EXEC = 1 << 0, 1 << 1, 1 << 2
MEM_ALLOW_ALL = MEM_ALLOW_READ | MEM_ALLOW_WRITE | MEM_ALLOW_EXEC

# GH_FN_*: the functions GH_VM_ADD_FUNCTION adds
FN_VCPU, FN_IRQFD, FN_IOEVENTFD = 1, 2, 3
FN_MAX_ARG_SIZE = 256
IRQFD_LEVEL = 1 << 0  # GH_IRQFD_LEVEL: the doorbell behaves as a level-triggered interrupt
# GH_IOEVENTFD_FLAGS_DATAMATCH: the eventfd is signalled only for writes of
# the value `datamatch` and the handler's length (docs/boot.md section 18)
IOEVENTFD_FLAGS_DATAMATCH = 1 << 0
# The flag the series' irqfd rings its doorbell with, and the only one a
# level irqfd enables (include/linux/gunyah.h GH_BELL_NONBLOCK; not UAPI)
BELL_NONBLOCK = 1 << 32

# enum gh_vm_status: why a vCPU's VM cannot run any more
VM_STATUS_LOAD_FAILED, VM_STATUS_EXITED, VM_STATUS_CRASHED = 1, 2, 3
VM_MAX_EXIT_REASON_SIZE = 8

# gh_vcpu_run.exit_reason
VCPU_EXIT_UNKNOWN, VCPU_EXIT_MMIO, VCPU_EXIT_STATUS = 0, 1, 2


@dataclass(frozen=True)
class Scalar:
    """A C integer type: its name in the header and its size (its alignment)."""

    c: str
    size: int

    @property
    def align(self) -> int:
        return self.size


U8, U16, U32, U64 = Scalar("__u8", 1), Scalar("__u16", 2), Scalar("__u32", 4), Scalar("__u64", 8)
S32 = Scalar("__s32", 4)
ENUM = Scalar("__u32", 4)  # an enum of small values: 4 bytes, as a u32


@dataclass(frozen=True)
class Member:
    name: str
    type: Scalar | Record
    count: int = 0  # an array's length; 0 for a single value


@dataclass(frozen=True)
class Record:
    """A C struct (or union): its members in order, and where the C ABI puts them."""

    name: str  # "" for an anonymous one inside another
    members: tuple[Member, ...]
    union: bool = False

    @property
    def align(self) -> int:
        return max(m.type.align for m in self.members)

    def _sizes(self) -> list[int]:
        return [m.type.size * (m.count or 1) for m in self.members]

    @property
    def offsets(self) -> dict[str, int]:
        """Each member's offset, as a C compiler for arm64 lays it out."""
        out: dict[str, int] = {}
        at = 0
        for m, size in zip(self.members, self._sizes(), strict=True):
            if self.union:
                out[m.name] = 0
                continue
            at = -(-at // m.type.align) * m.type.align
            out[m.name] = at
            at += size
        return out

    @property
    def size(self) -> int:
        sizes = self._sizes()
        end = max(sizes) if self.union else (
            max(o + s for o, s in zip(self.offsets.values(), sizes, strict=True)))  # fmt: skip
        return -(-end // self.align) * self.align

    def paths(self, prefix: str = "", base: int = 0) -> dict[str, int]:
        """Every scalar member's dotted path and its offset from the outer struct."""
        out: dict[str, int] = {}
        for m in self.members:
            at = base + self.offsets[m.name]
            path = f"{prefix}{m.name}" if m.name else prefix.rstrip(".")
            if isinstance(m.type, Record):
                out.update(m.type.paths(f"{path}." if path else "", at))
            else:
                out[path] = at
        return out


def _struct(name: str, *members: tuple[str, Scalar | Record] | tuple[str, Scalar, int]) -> Record:
    return Record(name, tuple(Member(*m) for m in members))


USERSPACE_MEMORY_REGION = _struct(
    "gh_userspace_memory_region",
    ("label", U32), ("flags", U32), ("guest_phys_addr", U64), ("memory_size", U64),
    ("userspace_addr", U64),
)  # fmt: skip
VM_DTB_CONFIG = _struct("gh_vm_dtb_config", ("guest_phys_addr", U64), ("size", U64))
FN_VCPU_ARG = _struct("gh_fn_vcpu_arg", ("id", U32))
FN_IRQFD_ARG = _struct(
    "gh_fn_irqfd_arg", ("fd", U32), ("label", U32), ("flags", U32), ("padding", U32))  # fmt: skip
FN_IOEVENTFD_ARG = _struct(
    "gh_fn_ioeventfd_arg",
    ("datamatch", U64), ("addr", U64), ("len", U32), ("fd", S32), ("flags", U32), ("padding", U32),
)  # fmt: skip
FN_DESC = _struct("gh_fn_desc", ("type", U32), ("arg_size", U32), ("arg", U64))
VM_EXIT_INFO = _struct(
    "gh_vm_exit_info",
    ("type", U16), ("padding", U16), ("reason_size", U32), ("reason", U8, VM_MAX_EXIT_REASON_SIZE),
)  # fmt: skip
VM_FIRMWARE_CONFIG = _struct("gh_vm_firmware_config", ("guest_phys_addr", U64), ("size", U64))
_MMIO = _struct("", ("phys_addr", U64), ("data", U8, 8), ("len", U32), ("is_write", U8))
_STATUS = _struct("", ("status", ENUM), ("exit_info", VM_EXIT_INFO))
VCPU_RUN = _struct(
    "gh_vcpu_run",
    ("immediate_exit", U8), ("padding", U8, 7), ("exit_reason", U32),
    ("", Record("", (Member("mmio", _MMIO), Member("status", _STATUS)), union=True)),
)  # fmt: skip
STRUCTS: tuple[Record, ...] = (
    USERSPACE_MEMORY_REGION, VM_DTB_CONFIG, FN_VCPU_ARG, FN_IRQFD_ARG, FN_IOEVENTFD_ARG, FN_DESC,
    VM_EXIT_INFO, VCPU_RUN, VM_FIRMWARE_CONFIG,
)  # fmt: skip


def ioc(direction: int, type_: int, nr: int, size: int) -> int:
    """asm-generic/ioctl.h's _IOC."""
    if not (0 <= size < 1 << IOC_SIZEBITS and 0 <= type_ < 256 and 0 <= nr < 256):
        raise ValueError("an ioctl's type and nr are bytes, its size 14 bits")
    return (direction << IOC_DIRSHIFT | size << IOC_SIZESHIFT | type_ << IOC_TYPESHIFT
            | nr << IOC_NRSHIFT)  # fmt: skip


@dataclass(frozen=True)
class Ioctl:
    name: str
    on: str  # the file it is issued on: "dev" (/dev/gunyah), "vm" or "vcpu"
    type: int
    nr: int
    arg: Record | None = None  # _IOW's struct; None for _IO

    @property
    def number(self) -> int:
        if self.arg is None:
            return ioc(IOC_NONE, self.type, self.nr, 0)
        return ioc(IOC_WRITE, self.type, self.nr, self.arg.size)


IOCTLS: tuple[Ioctl, ...] = (
    Ioctl("GH_CREATE_VM", "dev", IOCTL_TYPE, 0x0),
    Ioctl("GH_VM_SET_USER_MEM_REGION", "vm", IOCTL_TYPE, 0x1, USERSPACE_MEMORY_REGION),
    Ioctl("GH_VM_SET_DTB_CONFIG", "vm", IOCTL_TYPE, 0x2, VM_DTB_CONFIG),
    Ioctl("GH_VM_START", "vm", IOCTL_TYPE, 0x3),
    Ioctl("GH_VM_ADD_FUNCTION", "vm", IOCTL_TYPE, 0x4, FN_DESC),
    Ioctl("GH_VCPU_RUN", "vcpu", IOCTL_TYPE, 0x5),
    Ioctl("GH_VCPU_MMAP_SIZE", "vcpu", IOCTL_TYPE, 0x6),
    Ioctl("GH_VM_REMOVE_FUNCTION", "vm", IOCTL_TYPE, 0x7, FN_DESC),
    Ioctl("GH_ANDROID_TENTATIVE_UAPI", "dev", ANDROID_IOCTL_TYPE, 0x10),
    Ioctl("GH_VM_ANDROID_LEND_USER_MEM", "vm", ANDROID_IOCTL_TYPE, 0x11, USERSPACE_MEMORY_REGION),
    Ioctl("GH_VM_ANDROID_SET_FW_CONFIG", "vm", ANDROID_IOCTL_TYPE, 0x12, VM_FIRMWARE_CONFIG),
)
BY_NAME = {i.name: i for i in IOCTLS}
CONSTANTS: dict[str, int] = {
    "GH_MEM_ALLOW_READ": MEM_ALLOW_READ, "GH_MEM_ALLOW_WRITE": MEM_ALLOW_WRITE,
    "GH_MEM_ALLOW_EXEC": MEM_ALLOW_EXEC,
    "GH_FN_VCPU": FN_VCPU, "GH_FN_IRQFD": FN_IRQFD, "GH_FN_IOEVENTFD": FN_IOEVENTFD,
    "GH_FN_MAX_ARG_SIZE": FN_MAX_ARG_SIZE, "GH_IRQFD_LEVEL": IRQFD_LEVEL,
    "GH_IOEVENTFD_FLAGS_DATAMATCH": IOEVENTFD_FLAGS_DATAMATCH,
    "GH_VM_STATUS_LOAD_FAILED": VM_STATUS_LOAD_FAILED, "GH_VM_STATUS_EXITED": VM_STATUS_EXITED,
    "GH_VM_STATUS_CRASHED": VM_STATUS_CRASHED,
    "GH_VM_MAX_EXIT_REASON_SIZE": VM_MAX_EXIT_REASON_SIZE,
    "GH_VCPU_EXIT_UNKNOWN": VCPU_EXIT_UNKNOWN, "GH_VCPU_EXIT_MMIO": VCPU_EXIT_MMIO,
    "GH_VCPU_EXIT_STATUS": VCPU_EXIT_STATUS,
}  # fmt: skip


def _c_members(members: Sequence[Member], indent: str) -> list[str]:
    lines = []
    for m in members:
        if isinstance(m.type, Record):
            kind = "union" if m.type.union else "struct"
            inner = f"{kind} {m.type.name} " if m.type.name else f"{kind} "
            if m.type.name:
                lines.append(f"{indent}{inner.strip()} {m.name};")
                continue
            lines.append(f"{indent}{inner}{{")
            lines += _c_members(m.type.members, indent + "\t")
            lines.append(f"{indent}}}{' ' + m.name if m.name else ''};")
        else:
            lines.append(f"{indent}{m.type.c} {m.name}{f'[{m.count}]' if m.count else ''};")
    return lines


def c_header() -> str:
    """gunyah_uapi.h: the structs, numbers and constants above in C, each
    struct's size and each member's offset checked by the compiler."""
    lines = [
        "/* SPDX-License-Identifier: GPL-2.0-only WITH Linux-syscall-note */",
        "/* Written from gunyah.abi.vm_manager (python -m gunyah.toolchain); do not edit. */",
        "#ifndef GUNYAH_UAPI_H",
        "#define GUNYAH_UAPI_H",
        "#ifndef __KERNEL__",
        "typedef unsigned char __u8;",
        "typedef unsigned short __u16;",
        "typedef unsigned int __u32;",
        "typedef int __s32;",
        "typedef unsigned long long __u64;",
        "#endif",
        "",
    ]
    for name, value in CONSTANTS.items():
        lines.append(f"#define {name} {value}")
    lines.append("")
    for s in STRUCTS:
        lines.append(f"struct {s.name} {{")
        lines += _c_members(s.members, "\t")
        lines.append("};")
        lines.append(f'_Static_assert(sizeof(struct {s.name}) == {s.size}, "{s.name}");')
        for path, at in s.paths().items():
            lines.append(f"_Static_assert(__builtin_offsetof(struct {s.name}, {path}) == {at}, "
                         f"\"{s.name}.{path}\");")  # fmt: skip
        lines.append("")
    for i in IOCTLS:
        lines.append(f"#define {i.name} {i.number:#x}U")
    lines += ["", "#endif", ""]
    return "\n".join(lines)
