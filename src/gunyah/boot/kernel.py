"""Where `gunyah boot` finds its parts: the cache `gunyah boot-setup` fills
(kernel Image, kbuild headers, static busybox), QEMU and the cross compiler,
or the user's own kernel and headers."""

from __future__ import annotations

import os
import shutil
import struct
from dataclasses import dataclass
from pathlib import Path

SETUP_COMMAND = "gunyah boot-setup"
SETUP_SCRIPT = Path(__file__).resolve().parent / "setup.sh"
QEMU = "qemu-system-aarch64"
CROSS_COMPILE = "aarch64-linux-gnu-"

# The arm64 Image header (Documentation/arch/arm64/booting.rst): magic
# "ARM\x64" at byte 56; text_offset, image_size and flags at 8, 16, 24.
IMAGE_HEADER = struct.Struct("<II QQQ QQQ I I")
IMAGE_MAGIC = 0x644D5241
MAX_IMAGE = 256 << 20


class MissingPart(Exception):
    """A part is missing; the message says the command that sets it up."""


class BadKernel(Exception):
    """The file is not an arm64 Linux Image."""


def cache_dir() -> Path:
    """$GUNYAH_CACHE, else $XDG_CACHE_HOME/gunyah/boot, else ~/.cache/gunyah/boot."""
    if os.environ.get("GUNYAH_CACHE"):
        return Path(os.environ["GUNYAH_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gunyah" / "boot"


@dataclass(frozen=True)
class Parts:
    qemu: str
    image: Path
    busybox: Path
    headers: Path | None  # kbuild headers of the kernel; None: no module can be built


def file_head(path: Path) -> bytes:
    """A kernel's or image's first IMAGE_HEADER.size bytes, enough to tell
    its kind; OSError (its strerror says why) for what is not a regular
    file, checked before the open: a FIFO would block it."""
    if not path.is_file():
        raise OSError(0, "not a regular file (give the path of a file)")
    with path.open("rb") as f:
        return f.read(IMAGE_HEADER.size)


def image_size(path: Path) -> int:
    """The Image's size from its header; BadKernel if it is not an arm64 Image."""
    if not path.is_file():  # before opening: a FIFO would block the open
        raise BadKernel(f"{path} is not a regular file")
    try:
        with path.open("rb") as f:
            head = f.read(IMAGE_HEADER.size)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise BadKernel(f"cannot read the kernel {path}: {e.strerror}") from None
    if len(head) < IMAGE_HEADER.size or IMAGE_HEADER.unpack(head)[-2] != IMAGE_MAGIC:
        raise BadKernel(f"{path} is not an arm64 Linux Image (no ARM\\x64 magic at byte 56)")
    if size > MAX_IMAGE:
        raise BadKernel(
            f"{path} is {size >> 20} MiB; an arm64 Image this tool boots is under 256 MiB"
        )
    declared: int = IMAGE_HEADER.unpack(head)[3]
    return max(declared, size)


def find_parts(kernel: Path | None = None, headers: Path | None = None) -> Parts:
    """The parts of a boot, from the cache unless given; MissingPart names the
    command that provides what is missing."""
    qemu = shutil.which(QEMU)
    if qemu is None:
        raise MissingPart(f"QEMU ({QEMU}) is not installed: run `{SETUP_COMMAND}`")
    cached = cache_dir() / "default"
    image = kernel if kernel is not None else cached / "Image"
    if not image.exists():
        raise MissingPart(f"no kernel at {image}: run `{SETUP_COMMAND}` or give --kernel IMAGE")
    busybox = cached / "busybox"
    if not busybox.exists():
        raise MissingPart(f"no static busybox at {busybox}: run `{SETUP_COMMAND}`")
    if headers is None and kernel is None and (cached / "headers").is_dir():
        headers = cached / "headers"
    return Parts(qemu, image, busybox, headers)
