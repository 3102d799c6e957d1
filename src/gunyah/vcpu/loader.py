"""Guest images: a static AArch64 ELF, or a raw binary, read into segments.

Untrusted input: the file is read only if it is a regular file of at most
MAX_FILE bytes, every segment must lie below the 48-bit address space, and
the pages they cover must fit MAX_MEMORY; whatever the ELF library raises on
headers that point anywhere becomes one GuestError naming the file. Nothing
here needs the CPU emulator.
"""

from __future__ import annotations

import io
import os
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

from ..limits import MAX_MEMORY

PAGE = 0x1000
MAX_FILE = 64 << 20  # a guest file, ELF or raw
ADDRESS_LIMIT = 1 << 48  # the vCPU's virtual address space


class GuestError(Exception):
    """A guest file that cannot be loaded; the message names file and reason."""


@dataclass(frozen=True)
class Segment:
    address: int
    data: bytes
    size: int  # in memory; the part past `data` is zero (.bss)


@dataclass(frozen=True)
class Image:
    """What to put in memory and where to start."""

    segments: tuple[Segment, ...]
    entry: int
    source: str
    relocatable: bool = False  # a static PIE (ET_DYN): its addresses are link-time ones

    @property
    def end(self) -> int:
        return max(s.address + s.size for s in self.segments)

    @property
    def memory(self) -> int:
        """Bytes of the pages the segments need."""
        return sum(count for _, count in page_runs(self.segments)) * PAGE


def load_elf(path: str | Path, position_independent: bool = False) -> Image:
    """Every PT_LOAD of a static little-endian AArch64 ELF64 executable (and,
    with `position_independent`, of a static PIE, ET_DYN, at its link-time
    addresses: the caller places it)."""
    p = Path(path)
    return parse_elf(read_guest(p), p, position_independent)


def parse_elf(blob: bytes, p: Path, position_independent: bool = False) -> Image:
    """load_elf's reading of a file already read (`p` names it in errors)."""
    from elftools.common.exceptions import ELFError
    from elftools.elf.elffile import ELFFile

    if blob[:4] != b"\x7fELF":
        raise GuestError(f"{p}: not an ELF file (use --raw ADDR for a raw binary)")
    if len(blob) < 64:
        raise GuestError(f"{p}: truncated ELF header ({len(blob)} bytes)")
    if blob[4] == 1:
        raise GuestError(f"{p}: a 32-bit ELF; only AArch64 (ELF64) guests run here")
    if blob[4] != 2:
        raise GuestError(f"{p}: corrupt ELF: class {blob[4]} is neither 32- nor 64-bit")
    if blob[5] != 1:
        raise GuestError(f"{p}: a big-endian ELF; only little-endian AArch64 guests run here")
    try:
        elf = ELFFile(io.BytesIO(blob))
        machine = elf.header.e_machine
        if machine != "EM_AARCH64":
            raise GuestError(f"{p}: built for {machine}, not AArch64 (EM_AARCH64)")
        if elf.header.e_type != "ET_EXEC" and not (
            position_independent and elf.header.e_type == "ET_DYN"
        ):
            raise GuestError(
                f"{p}: {elf.header.e_type} is not a static executable (link with -static)"
            )
        segments = []
        for seg in elf.iter_segments():
            h = seg.header
            if h.p_type != "PT_LOAD" or h.p_memsz == 0:
                continue
            if h.p_offset + h.p_filesz > len(blob):
                raise GuestError(
                    f"{p}: truncated: a segment at {h.p_vaddr:#x} needs bytes up to "
                    f"{h.p_offset + h.p_filesz:#x} but the file has {len(blob):#x}"
                )
            if h.p_filesz > h.p_memsz:
                raise GuestError(f"{p}: corrupt: a segment's file size exceeds its memory size")
            if h.p_vaddr + h.p_memsz > ADDRESS_LIMIT:
                raise GuestError(f"{p}: a segment at {h.p_vaddr:#x} of {h.p_memsz:#x} bytes "
                                 "runs past the 48-bit address space")  # fmt: skip
            data = blob[h.p_offset : h.p_offset + h.p_filesz]
            segments.append(Segment(h.p_vaddr, data, h.p_memsz))
        entry = elf.header.e_entry
        relocatable = elf.header.e_type == "ET_DYN"
    except ELFError as e:
        raise GuestError(f"{p}: corrupt ELF: {e}") from None
    except (struct.error, ValueError, OverflowError, KeyError, IndexError, TypeError) as e:
        # what the ELF library raises on headers that point anywhere
        raise GuestError(f"{p}: corrupt or truncated ELF: {e}") from None
    if not segments:
        raise GuestError(f"{p}: no loadable segment")
    image = Image(tuple(segments), entry, str(p), relocatable)
    if image.memory > MAX_MEMORY:
        raise GuestError(f"{p}: its segments need {image.memory >> 20} MiB; the vCPU gives a "
                         f"guest at most {MAX_MEMORY >> 20} MiB")  # fmt: skip
    return image


def read_guest(p: Path) -> bytes:
    """The whole file, if it is a regular file of at most MAX_FILE bytes."""
    try:
        # non-blocking, so that a FIFO is refused rather than waited on
        fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        with open(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise GuestError(f"{p}: not a regular file")
            blob = f.read(MAX_FILE + 1)
    except OSError as e:
        raise GuestError(f"{p}: cannot read: {e.strerror or e}") from None
    if len(blob) > MAX_FILE:
        raise GuestError(f"{p}: larger than {MAX_FILE >> 20} MiB: not a guest this vCPU runs")
    return blob


def load_raw(path: str | Path, address: int) -> Image:
    """A raw binary placed at `address` and entered there."""
    p = Path(path)
    blob = read_guest(p)
    if not blob:
        raise GuestError(f"{p}: empty file")
    if address % 4:
        raise GuestError(f"{p}: load address {address:#x} is not 4-byte aligned")
    if address + len(blob) > ADDRESS_LIMIT:
        raise GuestError(f"{p}: does not fit below 2**48 at {address:#x}")
    return Image((Segment(address, blob, len(blob)),), address, str(p))


def page_runs(segments: tuple[Segment, ...]) -> list[tuple[int, int]]:
    """The pages the segments cover, as (first page, count) runs: from the
    segments' ranges sorted and merged, so a huge segment costs no more than
    a small one."""
    spans = sorted((s.address // PAGE, (s.address + s.size - 1) // PAGE + 1) for s in segments)
    out: list[tuple[int, int]] = []
    for first, stop in spans:
        if out and first <= out[-1][0] + out[-1][1]:
            start = out[-1][0]
            out[-1] = (start, max(out[-1][1], stop - start))
        else:
            out.append((first, stop - first))
    return out
