"""The primary VM's stage 2 in a boot: the host decides it, the shim carries it out.

Why: the real hypervisor takes a lent or donated range out of the lender's
stage 2 and puts it back on reclaim (docs/real-gunyah.md section 18), so
the primary VM touching a page it lent takes an abort. Under `gunyah boot`
the primary runs on QEMU behind our EL2 shim, so the model's Addrspace of
the primary (model/vms.py) must become the shim's tables.

How (docs/boot.md section 9): the shim keeps its own level-2 table for the
GiB the guest's RAM lies in. The host writes, in the shim's 2 MiB
(layout.py's "stage 2" region), the level-2 table it wants (`desired`) and
the level-3 tables it points at, taken from a bounded pool, then bumps
`gen`. Before it returns to the guest, a vCPU whose
call changed the map (or any vCPU that sees `gen` move) swaps each level-2
entry that differs, break-before-make, and sets `applied`. A level-3 table
already live is edited in place only where that needs no break (an entry
made or removed, or its rights changed: the Arm ARM's break-before-make rule
covers a change of output address, size or memory type); anything else gets
a fresh table.

The pool's bound: a block (2 MiB) whose map differs from the boot's is
"touched" and holds at most one table. A change is refused (the hypervisor's
NOMEM, which the RM turns into its own error) when more than POOL_PAGES
blocks would be touched, or when it needs more fresh tables than the pool has
free. A reclaim only returns blocks toward the boot's map, so it never needs
more than that bound allows: every block it splits again was touched and held
no table.

Changes within one hypercall form one batch, checked change by change
(`check`) and written at its end (`commit`); the first change of a batch
waits until the shim has applied the last one, so the live tables are the
committed ones and no live table is ever rewritten but in place.
"""

from __future__ import annotations

import array
import bisect
import time
from collections.abc import Callable, Sequence

from ..abi.errors import Error
from ..model.vms import RIGHT_R, RIGHT_W, RIGHT_X, HypError, Mapping
from . import layout

PAGE = 4096
BLOCK = 2 << 20
ENTRIES = 512  # descriptors in a 4 KiB table
POOL_PAGES = layout.STAGE2_POOL_PAGES

# Stage-2 descriptors, 4 KiB granule (Arm ARM D8.3, VMSAv8-64; the shim's
# S2_* in shim.c are the same bits)
VALID = 1 << 0
TABLE = 3  # at level 1 or 2: a table; at level 3: a page
BLOCK_DESC = 1  # at level 1 or 2: a block
AF = 1 << 10
S2AP_R = 1 << 6  # S2AP[0]: reads allowed
S2AP_W = 1 << 7  # S2AP[1]: writes allowed
INNER = 3 << 8  # SH: inner shareable
NORMAL_WB = 0xF << 2  # MemAttr: Normal, write-back
XN = 1 << 54
OA_MASK = ((1 << 48) - 1) & ~(PAGE - 1)  # output address, bits 47:12
ATTRS = AF | INNER | NORMAL_WB

Content = int | tuple[int, ...]  # a level-2 entry: a block descriptor or 0, or 512 pages

# Control words, by index in layout.STAGE2_CONTROL_RECORD
GEN = layout.STAGE2_CONTROL_RECORD.offset("gen")
APPLIED = layout.STAGE2_CONTROL_RECORD.offset("applied")
APPLY_SECONDS = 10.0  # the longest the host waits for the shim to apply a batch


def access(rights: int) -> int:
    """The descriptor's access bits for R/W/X rights (vms.RIGHT_*)."""
    bits = ATTRS
    bits |= S2AP_R if rights & RIGHT_R else 0
    bits |= S2AP_W if rights & RIGHT_W else 0
    return bits if rights & RIGHT_X else bits | XN


def block_descriptor(phys: int, rights: int) -> int:
    return phys | access(rights) | BLOCK_DESC


def page_descriptor(phys: int, rights: int) -> int:
    return phys | access(rights) | TABLE


def descriptor_address(table: int, ipa: int, level: int) -> int:
    """Where the descriptor for `ipa` lies in the level-`level` table at
    physical `table` (levels 1 to 3, 4 KiB granule)."""
    shift = {1: 30, 2: 21, 3: 12}[level]
    return table + (ipa >> shift) % ENTRIES * 8


def collapse(entries: Sequence[int]) -> Content:
    """One level-2 entry for a block's 512 page descriptors: 0 when none is
    valid, a block descriptor when all map one aligned run with one set of
    rights (a block rejoined), else the table."""
    first = entries[0]
    if not any(e & VALID for e in entries):
        return 0
    base = first & OA_MASK
    if first & VALID and base % BLOCK == 0:
        attrs = first & ~OA_MASK
        if all(e == (base + k * PAGE) | attrs for k, e in enumerate(entries)):
            return base | (attrs & ~TABLE) | BLOCK_DESC
    return tuple(entries)


def pages_of(content: Content) -> list[int]:
    """The 512 page descriptors a level-2 entry stands for."""
    if isinstance(content, tuple):
        return list(content)
    if not content & VALID:
        return [0] * ENTRIES
    base, attrs = content & OA_MASK, (content & ~OA_MASK & ~TABLE) | TABLE
    return [(base + k * PAGE) | attrs for k in range(ENTRIES)]


def _words(entries: Sequence[int]) -> memoryview:
    return memoryview(array.array("Q", entries))


def needs_break(old: Content, new: Content) -> bool:
    """Whether a live table `old` cannot become `new` by edits in place: some
    page keeps a valid mapping with another output address."""
    if not isinstance(old, tuple):
        return True
    return any(o & VALID and n & VALID and o & OA_MASK != n & OA_MASK
               for o, n in zip(old, pages_of(new), strict=True))  # fmt: skip


class Stage2:
    """The primary's stage 2 over the window [window, window + 1 GiB), whose
    level-2 table the shim keeps, mirrored into `region` (the bytes of
    layout.py's stage-2 region, at physical `base`). Only physical pages in
    [ram_lo, ram_hi) are ever mapped: nothing of the shim's."""

    def __init__(self, region: memoryview | bytearray, mappings: Sequence[Mapping],
                 *, base: int = layout.STAGE2_BASE, window: int = layout.STAGE2_WINDOW,
                 ram: tuple[int, int] = (layout.RAM_BASE, layout.SHIM_BASE),
                 pool_pages: int = POOL_PAGES,
                 wait: Callable[[], None] | None = None) -> None:  # fmt: skip
        self.words = memoryview(region).cast("B").cast("Q")
        self.base, self.window, self.ram = base, window, ram
        self.pool_pages = pool_pages
        self._wait = wait or (lambda: None)  # what a wait for the shim does between looks
        self.original = [self._content(mappings, i) for i in range(ENTRIES)]
        self.committed: list[Content] = list(self.original)
        self.pages: dict[int, int] = {}  # block -> pool page of its committed table
        self.pending: dict[int, Content] = {}  # the open batch's changed blocks
        self._open = False
        for i, c in enumerate(self.original):
            if isinstance(c, tuple):  # a boot map that is not in blocks: tables from the start
                self.pages[i] = len(self.pages)
        if len(self.pages) > pool_pages:
            raise ValueError("the boot's map needs more level-3 tables than the pool has")
        self._write_all()

    # -- where things are -------------------------------------------------------
    @staticmethod
    def desired_word(block: int) -> int:
        return layout.STAGE2_DESIRED_WORD + block

    def page_address(self, page: int) -> int:
        return self.base + (layout.STAGE2_POOL_WORD + page * ENTRIES) * 8

    def _page_word(self, page: int) -> int:
        return layout.STAGE2_POOL_WORD + page * ENTRIES

    @property
    def gen(self) -> int:
        return int(self.words[GEN])

    @property
    def applied(self) -> int:
        return int(self.words[APPLIED])

    # -- the map ------------------------------------------------------------------
    def _content(self, mappings: Sequence[Mapping], block: int) -> Content:
        lo = self.window + block * BLOCK
        hi = lo + BLOCK
        i = bisect.bisect_right([m.ipa for m in mappings], lo) - 1
        i = max(i, 0)
        ram_lo, ram_hi = self.ram
        entries: list[int] | None = None
        for m in mappings[i:]:
            if m.ipa >= hi:
                break
            if m.end <= lo:
                continue
            start, end = max(m.ipa, lo), min(m.end, hi)
            phys = m.phys + (start - m.ipa)
            if start == lo and end == hi and phys % BLOCK == 0 and ram_lo <= phys <= ram_hi - BLOCK:
                return block_descriptor(phys, m.rights)  # the whole block, one mapping
            if entries is None:
                entries = [0] * ENTRIES
            for ipa in range(start, end, PAGE):
                pa = phys + (ipa - start)
                if ram_lo <= pa <= ram_hi - PAGE:
                    entries[(ipa - lo) // PAGE] = page_descriptor(pa, m.rights)
        return 0 if entries is None else collapse(entries)

    def blocks(self, ipa: int, size: int) -> range:
        """The window's blocks that [ipa, ipa + size) overlaps."""
        lo = max(ipa, self.window)
        hi = min(ipa + size, self.window + ENTRIES * BLOCK)
        if hi <= lo:
            return range(0)
        return range((lo - self.window) // BLOCK, (hi - 1 - self.window) // BLOCK + 1)

    def check(self, mappings: Sequence[Mapping], ipa: int, size: int) -> None:
        """The primary's mappings are now `mappings` after a change to
        [ipa, ipa + size): take it into the open batch, or refuse it with
        the hypervisor's NOMEM and change nothing."""
        if not self._open:
            self._wait_applied()
            self._open = True
        pending = dict(self.pending)
        for b in self.blocks(ipa, size):
            pending[b] = self._content(mappings, b)
        touched = {b for b, c in enumerate(self.committed) if c != self.original[b]}
        for b, c in pending.items():
            if c != self.original[b]:
                touched.add(b)
            else:
                touched.discard(b)
        fresh = [b for b, c in pending.items() if isinstance(c, tuple)
                 and (b not in self.pages or needs_break(self.committed[b], c))]  # fmt: skip
        if len(touched) > self.pool_pages or len(fresh) > self.pool_pages - len(self.pages):
            raise HypError(Error.NOMEM, "the stage-2 pool cannot carry the change")
        self.pending = pending

    def commit(self) -> bool:
        """Write the batch's tables and post it to the shim; whether there
        was anything to post."""
        self._open = False
        if not self.pending:  # the common case: a call that changed no map
            return False
        pending, self.pending = self.pending, {}
        changed = {b: c for b, c in pending.items() if c != self.committed[b]}
        if not changed:
            return False
        pages = dict(self.pages)
        for b in changed:
            pages.pop(b, None)
        taken = set(self.pages.values())  # live until the shim has applied this batch
        free = (p for p in range(self.pool_pages) if p not in taken)
        for b, c in changed.items():
            old = self.committed[b]
            if isinstance(c, tuple):
                if b in self.pages and not needs_break(old, c):
                    page = self.pages[b]
                    at = self._page_word(page)
                    for k, (o, n) in enumerate(zip(pages_of(old), c, strict=True)):
                        if o != n:
                            self.words[at + k] = n
                else:
                    page = next(free)
                    at = self._page_word(page)
                    self.words[at : at + ENTRIES] = _words(c)
                pages[b] = page
                self.words[self.desired_word(b)] = self.page_address(page) | TABLE
            else:
                self.words[self.desired_word(b)] = c
            self.committed[b] = c
        self.pages = pages
        self.words[GEN] = self.gen + 1  # last: the shim reads the tables after it
        return True

    def _wait_applied(self) -> None:
        deadline = None
        while self.applied != self.gen:
            now = time.monotonic()
            deadline = deadline or now + APPLY_SECONDS
            if now > deadline:
                raise RuntimeError("the shim did not apply the last stage-2 change")
            self._wait()

    def _write_all(self) -> None:
        self.words[GEN] = 0
        self.words[APPLIED] = 0
        for b, c in enumerate(self.original):
            if isinstance(c, tuple):
                page = self.pages[b]
                at = self._page_word(page)
                self.words[at : at + ENTRIES] = _words(c)
                self.words[self.desired_word(b)] = self.page_address(page) | TABLE
            else:
                self.words[self.desired_word(b)] = c

    def image(self) -> bytes:
        """The control page and the level-2 table as the host wrote them: what
        the shim finds at STAGE2_BASE when it builds its map."""
        return self.words[: layout.STAGE2_POOL_WORD].tobytes()

    def release(self) -> None:
        """Let go of the region (before its mapping closes)."""
        self.words.release()

    def live(self, ipa: int) -> int:
        """The page descriptor the committed tables give `ipa` (0: unmapped),
        read back from the region as the shim would walk it."""
        if not self.window <= ipa < self.window + ENTRIES * BLOCK:
            return 0
        b = (ipa - self.window) // BLOCK
        entry = int(self.words[self.desired_word(b)])
        if entry & 3 == BLOCK_DESC:
            return pages_of(entry)[(ipa % BLOCK) // PAGE]
        if entry & 3 == TABLE:
            page = ((entry & OA_MASK) - self.page_address(0)) // PAGE
            return int(self.words[self._page_word(page) + (ipa % BLOCK) // PAGE])
        return 0
