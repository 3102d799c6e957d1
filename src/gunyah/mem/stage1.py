"""A guest virtual address to a physical one, the way the guest's EL1&0
stage-1 translation regime takes it (Arm ARM D8, VMSAv8-64), for the
hypervisor's copies to and from guest buffers: Gunyah makes them with AT
S12E1R/W (hyp/mem/useraccess), so what the guest may not read or write at
EL1 is refused here too.

Followed: the MMU off (flat), TTBR0/TTBR1 by VA bit 55 with their T0SZ/T1SZ,
EPD, TBI and granule (4, 16 or 64 KiB), tables, blocks and pages with up to
48-bit output addresses, the access flag (unless TCR.HA), AP[2] and the
tables' APTable[1] for writes (unless TCR.HPD), and DBM with TCR.HD.
Refused as a fault would be: 52-bit addresses (TCR.DS, LPA), an address
outside both ranges, and any descriptor the caller's reader will not give
(page tables outside guest RAM). The guest's stage 2 (the shim's identity
map of its RAM) is the caller's to apply to the result.

Each translation reads at most four descriptors: linear in the bytes copied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..bitfield import Bitfield, Field, flag

SCTLR_M = 1
TCR = Bitfield(
    "tcr_el1", 64,
    Field("t0sz", 0, 6), flag("epd0", 7), Field("tg0", 14, 2),
    Field("t1sz", 16, 6), flag("epd1", 23), Field("tg1", 30, 2),
    flag("tbi0", 37), flag("tbi1", 38), flag("ha", 39), flag("hd", 40),
    flag("hpd0", 41), flag("hpd1", 42), flag("ds", 59),
)  # fmt: skip
# granule size in address bits, by TG0 and TG1 (they differ)
TG0_GRANULE = {0b00: 12, 0b01: 16, 0b10: 14}
TG1_GRANULE = {0b10: 12, 0b11: 16, 0b01: 14}
MIN_TSZ = 16  # 48-bit ranges; smaller sizes are 52-bit (not followed)
MAX_TSZ = 39  # without FEAT_TTST
OA_BITS = 48
TTBR_BADDR = ((1 << OA_BITS) - 1) & ~1  # bit 0 is CnP
# descriptor bits
VALID, TABLE_OR_PAGE = 1 << 0, 1 << 1
AP2 = 1 << 7  # read-only
AF = 1 << 10
DBM = 1 << 51
APTABLE1 = 1 << 62  # no writes below this table

ReadDescriptor = Callable[[int], "int | None"]  # physical address -> 64-bit word


@dataclass(frozen=True)
class Translation:
    """A vCPU's EL1 translation registers at the trap."""

    sctlr: int
    tcr: int
    ttbr0: int
    ttbr1: int


def translate(t: Translation, va: int, write: bool, read: ReadDescriptor) -> tuple[int, int] | None:
    """(physical address, bytes from it to the end of its page or block) for
    an EL1 access to `va`, or None where the translation refuses it."""
    if not t.sctlr & SCTLR_M:
        return va, 4096 - (va & 4095)  # flat; chunked by 4 KiB, as no granule applies
    tcr = TCR.decode(t.tcr)
    upper = va >> 55 & 1
    if upper:
        tsz, off, granule = tcr["t1sz"], tcr["epd1"], TG1_GRANULE.get(int(tcr["tg1"]))
        tbi, hpd, table = tcr["tbi1"], tcr["hpd1"], t.ttbr1 & TTBR_BADDR
    else:
        tsz, off, granule = tcr["t0sz"], tcr["epd0"], TG0_GRANULE.get(int(tcr["tg0"]))
        tbi, hpd, table = tcr["tbi0"], tcr["hpd0"], t.ttbr0 & TTBR_BADDR
    if off or granule is None or tcr["ds"] or not MIN_TSZ <= tsz <= MAX_TSZ:
        return None
    size_bits = 64 - int(tsz)
    top = 56 if tbi else 64
    high = va >> size_bits & ((1 << (top - size_bits)) - 1)  # must be all 0s or all 1s
    if high != (upper and (1 << (top - size_bits)) - 1):
        return None
    stride = granule - 3
    level = 4 - -(-(size_bits - granule) // stride)  # the start level
    read_only = False
    while True:
        shift = granule + stride * (3 - level)
        index = va >> shift & ((1 << min(stride, size_bits - shift)) - 1)
        desc = read(table + 8 * index)
        if desc is None or not desc & VALID:
            return None
        oa = desc & ((1 << OA_BITS) - 1) & ~((1 << granule) - 1)
        if level < 3 and desc & TABLE_OR_PAGE:
            if not hpd and desc & APTABLE1:
                read_only = True
            table, level = oa, level + 1
            continue
        if level == 3 and not desc & TABLE_OR_PAGE:
            return None  # reserved
        if level == 0 or (level == 1 and granule != 12):
            return None  # no block at this level for this granule
        if not desc & AF and not tcr["ha"]:
            return None
        if write and (read_only or (desc & AP2 and not (desc & DBM and tcr["hd"]))):
            return None
        size = 1 << shift
        return (oa & ~(size - 1)) | (va & (size - 1)), size - (va & (size - 1))
