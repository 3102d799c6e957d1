"""What `gunyah boot --kernel` boots: a Linux arm64 Image (QEMU loads the
file at RAM + 2 MiB and the kernel finds its own way), a static AArch64 ELF
(its PT_LOAD segments at their addresses, entered at e_entry), or a raw
binary at the address the user gives. The file is untrusted: the vCPU's
bounded reader reads the last two, and everything must lie in the guest's
RAM, below the shim.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..vcpu.loader import GuestError, Segment, load_elf, load_raw
from .kernel import IMAGE_HEADER, IMAGE_MAGIC, BadKernel, file_head, image_size

ELF_MAGIC = b"\x7fELF"


@dataclass(frozen=True)
class GuestKernel:
    kind: str  # "linux", "elf" or "raw"
    path: Path
    segments: tuple[Segment, ...]  # what to load where; none for an Image (QEMU loads it)
    entry: int
    end: int  # the first address past it, where the device tree may go

    @property
    def linux(self) -> bool:
        return self.kind == "linux"


def _head(path: Path) -> bytes:
    try:
        return file_head(path)
    except OSError as e:
        raise BadKernel(f"cannot read the kernel {path}: {e.strerror}") from None


def guest_kernel(path: Path, addr: int | None, image_addr: int, ram: tuple[int, int]
                 ) -> GuestKernel:  # fmt: skip
    """The kernel in `path`; BadKernel, in one line, for what cannot be loaded
    in [ram[0], ram[1]): the guest's RAM but its first MiB, where QEMU, not
    given -kernel, keeps its own device tree (so not QEMU's -kernel address
    for a raw binary, RAM + 512 KiB; RAM + 2 MiB, where an Image goes, is free)."""
    head = _head(path)
    is_image = len(head) == IMAGE_HEADER.size and IMAGE_HEADER.unpack(head)[-2] == IMAGE_MAGIC
    if (is_image or head[:4] == ELF_MAGIC) and addr is not None:
        what = "an arm64 Image" if is_image else "an ELF"
        raise BadKernel(f"{path} is {what}, which says where it loads: "
                        "--kernel-addr is for raw binaries")  # fmt: skip
    if is_image:
        return GuestKernel("linux", path, (), image_addr, image_addr + image_size(path))
    try:
        if head[:4] == ELF_MAGIC:
            image, kind = load_elf(path), "elf"
        elif addr is None:
            raise BadKernel(f"{path} is neither an arm64 Linux Image nor an ELF: to boot it as "
                            "a raw binary, give its load address with --kernel-addr ADDR")
        else:
            image, kind = load_raw(path, addr), "raw"
    except GuestError as e:
        raise BadKernel(str(e)) from None
    low, high = ram
    for s in image.segments:
        if not low <= s.address <= s.address + s.size <= high:
            raise BadKernel(f"{path}: {s.size:#x} bytes at {s.address:#x} are outside the "
                            f"guest's RAM ({low:#x}-{high:#x})")  # fmt: skip
    if not any(s.address <= image.entry < s.address + s.size for s in image.segments):
        raise BadKernel(f"{path}: its entry point {image.entry:#x} is in none of its segments")
    return GuestKernel(kind, path, image.segments, image.entry, image.end)
