"""The guest's stage-1 translation as the hypervisor's copies follow it
(VMSAv8-64, Arm ARM D8), and a booted VM's memory through it: page tables
built here descriptor by descriptor, then walked."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah.boot import channel
from gunyah.boot.memory import BootMemory
from gunyah.mem import Translation, translate
from gunyah.mem.stage1 import TCR

TABLE, PAGE, BLOCK = 0b11, 0b11, 0b01
AF, AP2, DBM, APTABLE1 = 1 << 10, 1 << 7, 1 << 51, 1 << 62
KERNEL_VA = 0xFFFF_0000_0000_0000  # TTBR1, 48-bit


class Tables:
    """Page tables in a sparse physical memory."""

    def __init__(self) -> None:
        self.words: dict[int, int] = {}
        self.reads: list[int] = []
        self.next = 0x4000_0000

    def new(self, granule: int = 12) -> int:
        base, self.next = self.next, self.next + (1 << granule)
        return base

    def set(self, pa: int, value: int) -> None:
        self.words[pa] = value

    def read(self, pa: int) -> int | None:
        self.reads.append(pa)
        return self.words.get(pa, 0)


def tcr(**fields: int) -> int:
    # 4 KiB granules, 48-bit ranges both sides by default (TG1 = 0b10 is 4 KiB)
    values = {"t0sz": 16, "t1sz": 16, "tg0": 0b00, "tg1": 0b10, **fields}
    return TCR.encode(values)


def kernel_map(tables: Tables, va: int, pa: int, leaf_bits: int = AF, level: int = 3,
               table_bits: int = 0) -> int:  # fmt: skip
    """A 4 KiB-granule walk from a fresh L0 table to a leaf at `level`."""
    root = table = tables.new()
    for lvl in range(level):
        nxt = tables.new()
        tables.set(table + 8 * (va >> (39 - 9 * lvl) & 511), nxt | TABLE | table_bits)
        table = nxt
    size_shift = 39 - 9 * level
    kind = PAGE if level == 3 else BLOCK
    tables.set(table + 8 * (va >> size_shift & 511), pa | kind | leaf_bits)
    return root


def walk(t: Tables, root: int, va: int, write: bool = False, **tcr_fields: int):
    return translate(Translation(1, tcr(**tcr_fields), 0, root), va, write, t.read)


def test_a_kernel_page_and_a_2mib_block() -> None:
    t = Tables()
    root = kernel_map(t, KERNEL_VA + 0x1234_5000, 0x4123_4000)
    assert walk(t, root, KERNEL_VA + 0x1234_5678) == (0x4123_4678, 0x1000 - 0x678)
    assert len(t.reads) == 4  # one descriptor a level
    root = kernel_map(t, KERNEL_VA + 0x4020_0000, 0x4060_0000, level=2)
    assert walk(t, root, KERNEL_VA + 0x4021_0010) == (0x4061_0010, 0x20_0000 - 0x1_0010)


def test_the_mmu_off_is_flat() -> None:
    assert translate(Translation(0, 0, 0, 0), 0x4000_1234, True, lambda pa: None) == (
        0x4000_1234, 0x1000 - 0x234)  # fmt: skip


@pytest.mark.parametrize(("va", "why"), [
    (0x0000_1234_5000, "TTBR0 range, its tables empty"),
    (0xFF00_0000_0000_0000 | 0x1234_5000, "bits 55..48 not all ones"),
    (KERNEL_VA + 0x5000, "no mapping there"),
])  # fmt: skip
def test_what_has_no_translation(va: int, why: str) -> None:
    t = Tables()
    root = kernel_map(t, KERNEL_VA + 0x1234_5000, 0x4123_4000)
    assert walk(t, root, va) is None, why


def test_permissions_as_an_el1_access_has_them() -> None:
    t = Tables()
    ro = kernel_map(t, KERNEL_VA, 0x4000_0000, AF | AP2)
    assert walk(t, ro, KERNEL_VA) is not None and walk(t, ro, KERNEL_VA, write=True) is None
    clean = kernel_map(t, KERNEL_VA, 0x4000_0000, AF | AP2 | DBM)  # dirty-bit managed
    assert walk(t, clean, KERNEL_VA, write=True) is None
    assert walk(t, clean, KERNEL_VA, write=True, hd=1) is not None
    no_af = kernel_map(t, KERNEL_VA, 0x4000_0000, 0)
    assert walk(t, no_af, KERNEL_VA) is None and walk(t, no_af, KERNEL_VA, ha=1) is not None
    aptable = kernel_map(t, KERNEL_VA, 0x4000_0000, AF, table_bits=APTABLE1)
    assert walk(t, aptable, KERNEL_VA) is not None
    assert walk(t, aptable, KERNEL_VA, write=True) is None
    assert walk(t, aptable, KERNEL_VA, write=True, hpd1=1) is not None


def test_tcr_settings_the_walk_obeys() -> None:
    t = Tables()
    root = kernel_map(t, KERNEL_VA + 0x5000, 0x4000_5000)
    assert walk(t, root, KERNEL_VA + 0x5000, epd1=1) is None  # walks disabled
    assert walk(t, root, KERNEL_VA + 0x5000, ds=1) is None  # 52-bit: not followed
    assert walk(t, root, KERNEL_VA + 0x5000, tg1=0b00) is None  # reserved granule
    tagged = (0xAB << 56) | (KERNEL_VA + 0x5000) & ((1 << 56) - 1)
    assert walk(t, root, tagged) is None  # a tag without TBI1
    assert walk(t, root, tagged, tbi1=1) == (0x4000_5000, 0x1000)


@pytest.mark.parametrize(("granule", "tg1"), [(14, 0b01), (16, 0b11)])
def test_16k_and_64k_granules(granule: int, tg1: int) -> None:
    t, stride = Tables(), granule - 3
    size_bits = 48 if granule == 14 else 42  # 4 levels of 16 KiB; 2 of 64 KiB
    va = (((1 << 64) - 1) & ~((1 << size_bits) - 1)) | 0x3_4567_8000 | 0x123
    levels = -(-(size_bits - granule) // stride)
    root = table = t.new(granule)
    for lvl in range(4 - levels, 3):
        nxt, shift = t.new(granule), granule + stride * (3 - lvl)
        bits = min(stride, size_bits - shift)  # the start level resolves what is left
        t.set(table + 8 * (va >> shift & ((1 << bits) - 1)), nxt | TABLE)
        table = nxt
    page = 0x4000_0000 + (7 << granule)
    t.set(table + 8 * (va >> granule & ((1 << stride) - 1)), page | PAGE | AF)
    offset = va & ((1 << granule) - 1)
    assert walk(t, root, va, tg1=tg1, t1sz=64 - size_bits) == (page | offset,
                                                                (1 << granule) - offset)


@given(st.integers(0, (1 << 64) - 1), st.integers(0, (1 << 64) - 1), st.booleans(),
       st.dictionaries(st.integers(0, 511), st.integers(0, (1 << 64) - 1), max_size=8))  # fmt: skip
def test_any_tables_and_addresses_translate_or_refuse_never_raise(
    tcr_value: int, va: int, write: bool, entries: dict[int, int]
) -> None:
    """Descriptors from the guest are anything at all; the walker asks for at
    most four of them and answers with an address or None."""
    asked: list[int] = []

    def read(pa: int) -> int | None:
        asked.append(pa)
        return entries.get(pa >> 3 & 511) if pa < 1 << 48 else None

    found = translate(Translation(1, tcr_value, 0x4000_0000, 0x4000_0000), va, write, read)
    assert len(asked) <= 4
    if found is not None:
        pa, room = found
        assert 0 <= pa < 1 << 48 and room >= 1


# -- a booted VM's memory ---------------------------------------------------------
RAM_BASE, RAM_SIZE = 0x4000_0000, 0x40_0000


@pytest.fixture
def ram():
    fd = os.memfd_create("gunyah-test-ram")
    os.ftruncate(fd, RAM_SIZE)
    yield fd
    os.close(fd)


def test_boot_memory_copies_through_the_guests_tables(ram: int) -> None:
    t = Tables()
    t.next = RAM_BASE + 0x10_0000
    # two virtually adjacent pages, physically apart; the second read-only
    root = kernel_map(t, KERNEL_VA + 0x1000, RAM_BASE + 0x3000)
    l3 = t.words[t.words[t.words[root + 8 * (KERNEL_VA >> 39 & 511)] & ~0xFFF] & ~0xFFF] & ~0xFFF
    t.set(l3 + 8 * 2, RAM_BASE + 0x8000 | PAGE | AF | AP2)
    mem = BootMemory(ram, RAM_BASE, RAM_BASE + RAM_SIZE,
                     lambda: Translation(1, tcr(), 0, root))  # fmt: skip
    try:
        for pa, word in t.words.items():  # the tables into the guest's RAM
            mem._map[pa - RAM_BASE : pa - RAM_BASE + 8] = word.to_bytes(8, "little")
        mem._map[0x8000:0x8004] = b"tail"
        assert mem.write(KERNEL_VA + 0x1FFC, b"head") is True
        assert bytes(mem._map[0x3FFC:0x4000]) == b"head"
        assert mem.read(KERNEL_VA + 0x1FFC, 8) == b"headtail"  # across the two pages
        assert mem.write(KERNEL_VA + 0x1FFC, b"12345678") is False  # the second is read-only
        assert bytes(mem._map[0x3FFC:0x4000]) == b"head"  # and nothing was written
        assert mem.read(KERNEL_VA + 0x3000, 1) is None  # unmapped
        assert mem.read((1 << 64) - 4, 8) is None  # wraps
    finally:
        mem.close()


def test_boot_memory_never_leaves_the_guests_ram(ram: int) -> None:
    outside = RAM_BASE + RAM_SIZE  # the shim, for one
    t = Tables()
    t.next = RAM_BASE
    root = kernel_map(t, KERNEL_VA, outside)  # a page mapped onto memory not the guest's
    mem = BootMemory(ram, RAM_BASE, RAM_BASE + RAM_SIZE, lambda: Translation(1, tcr(), 0, root))
    try:
        for pa, word in t.words.items():
            mem._map[pa - RAM_BASE : pa - RAM_BASE + 8] = word.to_bytes(8, "little")
        assert mem.read(KERNEL_VA, 8) is None
        assert mem.write(KERNEL_VA, b"x") is False
        # tables themselves outside RAM: not read
        mem.translation = lambda: Translation(1, tcr(), 0, outside)
        assert mem.read(KERNEL_VA, 8) is None
        # the MMU off: physical addresses, the guest's RAM only
        mem.translation = lambda: Translation(0, 0, 0, 0)
        assert mem.read(RAM_BASE + RAM_SIZE - 4, 4) is not None
        assert mem.read(RAM_BASE + RAM_SIZE - 4, 8) is None
        assert mem.read(RAM_BASE - 8, 8) is None
    finally:
        mem.close()


def test_the_mailbox_carries_the_translation_after_the_response() -> None:
    from gunyah.boot import layout

    assert [f.name for f in layout.TRANSLATION.fields] == ["sctlr", "tcr", "ttbr0", "ttbr1"]
    names = [f.name for f in layout.MAILBOX.fields]
    mmu = layout.MAILBOX.fields[names.index("mmu")]
    assert names[names.index("mmu") - 1] == "resp" and mmu.struct is layout.TRANSLATION
    assert channel.MMU_AT == layout.MAILBOX.offset("mmu") == channel.RESP_AT + 24
    assert 8 * (channel.MMU_AT + 4) <= channel.MAILBOX_SIZE
    assert list(Translation.__dataclass_fields__) == ["sctlr", "tcr", "ttbr0", "ttbr1"]


def test_boot_memory_reads_nothing_the_vm_has_lent(ram: int) -> None:
    """A buffer in a page the VM's stage 2 no longer maps (lent), or tables
    there, copy nothing; the rest of its RAM still does."""
    lent = {RAM_BASE + 0x5000}
    mapped = lambda ipa, n: not any(ipa < p + 0x1000 and p < ipa + n for p in lent)  # noqa: E731
    mem = BootMemory(ram, RAM_BASE, RAM_BASE + RAM_SIZE, lambda: Translation(0, 0, 0, 0), mapped)
    try:
        assert mem.read(RAM_BASE + 0x4000, 8) is not None
        assert mem.read(RAM_BASE + 0x4FFC, 8) is None  # into the lent page
        assert mem.write(RAM_BASE + 0x5000, b"x") is False
        assert bytes(mem._map[0x5000:0x5001]) == b"\0"
        t = Tables()
        t.next = RAM_BASE + 0x5000  # the tables in the lent page
        root = kernel_map(t, KERNEL_VA, RAM_BASE + 0x3000)
        for pa, word in t.words.items():
            mem._map[pa - RAM_BASE : pa - RAM_BASE + 8] = word.to_bytes(8, "little")
        mem.translation = lambda: Translation(1, tcr(), 0, root)
        assert mem.read(KERNEL_VA, 8) is None
        lent.clear()
        assert mem.read(KERNEL_VA, 8) is not None
    finally:
        mem.close()
