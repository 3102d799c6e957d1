"""The primary's stage 2 in a boot (gunyah.boot.stage2): the tables the host
writes for the shim, read back as the shim walks them, against the model's
Addrspace they mirror; the pool's bound; split and rejoin."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gunyah.abi import memparcel as mp
from gunyah.abi import rm
from gunyah.abi.errors import Error
from gunyah.boot import layout
from gunyah.boot import stage2 as s2
from gunyah.model.vms import RIGHT_R, RIGHTS_RWX, Addrspace, HypError, Mapping, Vms
from gunyah.rm.memparcel import Parcels

RAM = layout.RAM_BASE
MEMORY = 64 << 20  # a small guest: 32 blocks
PRIMARY = 3


def region() -> bytearray:
    return bytearray(layout.STAGE2_SIZE)


def boot_vms(pool: int = s2.POOL_PAGES) -> tuple[Vms, s2.Stage2, bytearray]:
    vms = Vms()
    vms.vm_create(PRIMARY, 0xFF)
    vms.map(PRIMARY, RAM, RAM, MEMORY, RIGHTS_RWX)
    mem = region()
    stage = s2.Stage2(mem, vms[PRIMARY].addrspace.mappings, pool_pages=pool)
    vms.stage2[PRIMARY] = stage.check
    return vms, stage, mem


def shim_applies(mem: bytearray) -> None:
    """What the shim does once it has swapped: applied = gen."""
    words = memoryview(mem).cast("Q")
    words[s2.APPLIED] = words[s2.GEN]


def model_descriptor(space: Addrspace, ipa: int) -> int:
    """The page descriptor the model's address space implies for `ipa`."""
    for m in space.mappings:
        if m.ipa <= ipa < m.end:
            return s2.page_descriptor(m.phys + (ipa - m.ipa), m.rights)
    return 0


def test_the_constants_are_the_architectures() -> None:
    # Arm ARM D8.3 (VMSAv8-64 stage-2 descriptors, 4 KiB granule) and the shim's S2_RAM
    assert s2.block_descriptor(0x4000_0000, RIGHTS_RWX) == 0x4000_0000 | 0x7FD
    assert s2.page_descriptor(0x4000_1000, RIGHTS_RWX) == 0x4000_1000 | 0x7FF
    assert s2.page_descriptor(0x4000_1000, RIGHT_R) == 0x4000_1000 | (1 << 54) | 0x77F
    assert s2.descriptor_address(0x1000, 0x4020_1000, 1) == 0x1008
    assert s2.descriptor_address(0x1000, 0x4020_1000, 2) == 0x1008
    assert s2.descriptor_address(0x1000, 0x4020_1000, 3) == 0x1008
    assert s2.descriptor_address(0x1000, 0x7FFF_F000, 3) == 0x1000 + 511 * 8
    # the region sits in the shim's 2 MiB, after the mailboxes, and holds the pool
    assert layout.STAGE2_BASE >= layout.SHIM_MAILBOXES + layout.MAX_CPUS * layout.MAILBOX_SIZE
    assert layout.STAGE2_BASE + layout.STAGE2_SIZE <= layout.SHIM_BASE + layout.SHIM_SIZE
    assert layout.STAGE2_POOL % 4096 == 0 and layout.STAGE2_WINDOW % (1 << 30) == 0


def test_the_boot_map_is_blocks_over_the_ram_and_nothing_else() -> None:
    _, stage, mem = boot_vms()
    words = memoryview(mem).cast("Q")
    for b in range(512):
        want = s2.block_descriptor(RAM + b * s2.BLOCK, RIGHTS_RWX) if b < MEMORY // s2.BLOCK else 0
        assert words[layout.STAGE2_DESIRED_WORD + b] == want
    assert words[s2.GEN] == words[s2.APPLIED] == 0
    assert stage.image() == bytes(mem[: layout.STAGE2_POOL - layout.STAGE2_BASE])


def test_a_lent_page_splits_its_block_and_the_reclaim_rejoins_it() -> None:
    vms, stage, mem = boot_vms()
    page = RAM + 5 * s2.BLOCK + 7 * 4096
    vms.unmap(PRIMARY, page, 4096)
    assert stage.commit()
    entry = stage.words[layout.STAGE2_DESIRED_WORD + 5]
    assert entry & 3 == s2.TABLE and entry & s2.OA_MASK == stage.page_address(0)
    assert stage.live(page) == 0 and stage.live(page + 4096) & 3 == 3
    assert stage.gen == 1 and stage.applied == 0
    shim_applies(mem)
    vms.map(PRIMARY, page, page, 4096, RIGHTS_RWX)
    assert stage.commit()
    assert stage.words[layout.STAGE2_DESIRED_WORD + 5] == s2.block_descriptor(
        RAM + 5 * s2.BLOCK, RIGHTS_RWX)  # fmt: skip
    assert stage.pages == {}


def test_a_change_that_needs_more_tables_than_the_pool_is_nomem_and_changes_nothing() -> None:
    vms, stage, mem = boot_vms(pool=2)
    vms.unmap(PRIMARY, RAM, 4096)
    vms.unmap(PRIMARY, RAM + s2.BLOCK, 4096)
    before = list(vms[PRIMARY].addrspace.mappings)
    with pytest.raises(HypError) as e:
        vms.unmap(PRIMARY, RAM + 2 * s2.BLOCK, 4096)
    assert e.value.error == Error.NOMEM
    assert vms[PRIMARY].addrspace.mappings == before
    assert stage.commit() and len(stage.pages) == 2


def test_a_wait_for_the_shim_that_never_ends_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    vms, stage, _ = boot_vms()
    vms.unmap(PRIMARY, RAM, 4096)
    stage.commit()
    monkeypatch.setattr(s2, "APPLY_SECONDS", 0.0)
    with pytest.raises(RuntimeError):
        vms.unmap(PRIMARY, RAM + 4096, 4096)


# a change: (unmap or map back, first page, pages), in the guest's 64 MiB
changes = st.lists(st.tuples(st.booleans(), st.integers(0, MEMORY // 4096 - 1),
                             st.integers(1, 1200)), max_size=12)  # fmt: skip


@settings(max_examples=25, deadline=None)
@given(changes, st.integers(1, 8), st.integers(1, 4))
def test_the_tables_always_match_the_model_within_the_pools_bound(
    steps: list[tuple[bool, int, int]], pool: int, batch: int
) -> None:
    """Any run of lends and reclaims, in batches: what the tables map is what
    the model's address space maps, page for page; a refused change leaves
    both as they were; no live table is rewritten but in place; at most
    `pool` tables are in use; a reclaim of everything lent rejoins every block."""
    vms, stage, mem = boot_vms(pool=pool)
    space = vms[PRIMARY].addrspace
    for n, (out, first, count) in enumerate(steps):
        ipa = RAM + first * 4096
        size = min(count * 4096, RAM + MEMORY - ipa)
        try:
            if out:
                vms.unmap(PRIMARY, ipa, size)
            else:
                vms.unmap(PRIMARY, ipa, size)
                vms.map(PRIMARY, ipa, ipa, size, RIGHTS_RWX)
        except HypError as e:
            assert e.error == Error.NOMEM
        if n % batch == batch - 1:
            live = dict(stage.pages)
            stage.commit()
            for b, page in stage.pages.items():  # a fresh table never takes a live one
                assert page not in live.values() or live.get(b) == page
            assert len(stage.pages) <= pool
            shim_applies(mem)
    stage.commit()
    shim_applies(mem)
    for ipa in range(RAM, RAM + MEMORY, 4096 * 61):
        assert stage.live(ipa) == model_descriptor(space, ipa)
    at, gaps = RAM, []  # what is lent now, reclaimed: never refused
    for m in space.mappings:
        gaps += [(at, m.ipa - at)] if m.ipa > at else []
        at = m.end
    gaps += [(at, RAM + MEMORY - at)] if at < RAM + MEMORY else []
    for ipa, size in gaps:
        vms.map(PRIMARY, ipa, ipa, size, RIGHTS_RWX)
    stage.commit()
    assert stage.pages == {}
    fresh = s2.Stage2(region(), space.mappings).image()
    assert stage.image()[16:] == fresh[16:]  # but the control words


@settings(max_examples=40)
@given(st.integers(0, 511), st.integers(0, 511), st.integers(0, 511), st.sampled_from([7, 4, 6]))
def test_collapse_rejoins_only_a_whole_aligned_run(i: int, j: int, block: int, rights: int) -> None:
    base = RAM + block % 64 * s2.BLOCK
    run = [s2.page_descriptor(base + k * 4096, rights) for k in range(512)]
    assert s2.collapse(run) == s2.block_descriptor(base, rights)
    assert s2.pages_of(s2.collapse(run)) == run
    swapped = list(run)
    swapped[i], swapped[j] = run[j], run[i]  # two pages out of place: no block
    assert (s2.collapse(swapped) == s2.collapse(run)) == (i == j)
    holed = list(run)
    holed[i] = 0
    assert s2.collapse(holed) == tuple(holed)
    shifted = [d + 4096 for d in run]  # not 2 MiB aligned
    assert s2.collapse(shifted) == tuple(shifted)
    assert s2.collapse([0] * 512) == 0


# -- the RM's lends through the boot's stage 2 ------------------------------------------
def lend_request(*ranges: tuple[int, int]) -> bytes:
    return mp.CreateRequest(0, 0, 0, (mp.AclEntry(0x80, 7),),
                            tuple(mp.SglEntry(*r) for r in ranges), ()).encode()  # fmt: skip


def test_a_lend_the_pool_cannot_carry_is_mem_invalid_and_the_lenders_map_is_as_it_was() -> None:
    vms, stage, mem = boot_vms(pool=2)
    handlers = Parcels(vms).handlers()
    before = list(vms[PRIMARY].addrspace.mappings)
    pages = [(RAM + b * s2.BLOCK + 4096, 4096) for b in range(3)]  # three blocks split
    error, _, _ = handlers[rm.MESSAGE_IDS["MEM_LEND"]](PRIMARY, lend_request(*pages))
    assert error == rm.ERROR_CODES["MEM_INVALID"]
    assert [stage.live(ipa) for ipa, _ in pages] == [model_descriptor(
        vms[PRIMARY].addrspace, ipa) for ipa, _ in pages]  # fmt: skip
    assert not stage.commit()  # nothing to post: the map is the boot's
    assert all(stage.live(ipa) & 3 == 3 for ipa, _ in pages)
    assert before == [Mapping(RAM, RAM, MEMORY, RIGHTS_RWX)]
    assert vms.translate(PRIMARY, RAM, MEMORY) == RAM  # every page mapped again, in order


def test_a_lend_leaves_the_tables_and_its_reclaim_restores_them() -> None:
    vms, stage, mem = boot_vms(pool=2)
    handlers = Parcels(vms).handlers()
    pages = [(RAM + b * s2.BLOCK + 4096, 4096) for b in range(2)]
    error, data, _ = handlers[rm.MESSAGE_IDS["MEM_LEND"]](PRIMARY, lend_request(*pages))
    assert error == rm.OK
    assert stage.commit()
    assert [stage.live(ipa) for ipa, _ in pages] == [0, 0]
    shim_applies(mem)
    reclaim = struct.pack("<IB3x", mp.decode_handle(data), 0)
    assert handlers[rm.MESSAGE_IDS["MEM_RECLAIM"]](PRIMARY, reclaim)[0] == rm.OK
    assert stage.commit()
    assert stage.pages == {} and all(stage.live(ipa) & 3 == 3 for ipa, _ in pages)
