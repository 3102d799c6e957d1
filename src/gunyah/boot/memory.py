"""A booted VM's memory as the model's hypervisor calls reach it: its RAM,
mapped from the shared memory file QEMU runs it in, through the calling
vCPU's own stage-1 translation (the registers its mailbox carries), then the
shim's stage 2, which maps the guest's RAM and nothing else of memory.

Why the host walks the guest's page tables rather than having the shim ask
the CPU (AT S1E1R/W at EL2): the tables are in RAM the host maps already,
the shim stays free of any knowledge of which calls take buffers (the
declarations hold that), and the one walker serves any runner. Every read
it makes, descriptors included, stays inside the guest's RAM.
"""

from __future__ import annotations

import contextlib
import mmap
from collections.abc import Callable

from ..mem import Translation, translate

_MASK64 = (1 << 64) - 1


class BootMemory:
    def __init__(self, ram_fd: int, ram_base: int, ram_end: int,
                 translation: Callable[[], Translation],
                 stage2: Callable[[int, int], bool] | None = None) -> None:  # fmt: skip
        self.ram_base, self.ram_end = ram_base, ram_end
        self.translation = translation  # the calling vCPU's, at its trap
        # whether the VM's stage 2 maps [ipa, ipa + n) now (IPA == PA in its
        # RAM): a page it lent is out of its reach, for its calls' buffers
        # and its page tables alike (docs/real-gunyah.md section 18)
        self.stage2 = stage2 or (lambda ipa, n: True)
        self._map = mmap.mmap(ram_fd, ram_end - ram_base, offset=0)

    @property
    def ram(self) -> memoryview:
        """The whole RAM's bytes, for the model's physical memory."""
        return memoryview(self._map)

    def close(self) -> None:
        # the model may still hold views of it (a secondary vCPU maps its
        # pages): then the mapping goes with the last of them
        with contextlib.suppress(BufferError):
            self._map.close()

    def _descriptor(self, pa: int) -> int | None:
        if pa % 8 or not self.ram_base <= pa <= self.ram_end - 8 or not self.stage2(pa, 8):
            return None
        at = pa - self.ram_base
        return int.from_bytes(self._map[at : at + 8], "little")

    def _runs(self, va: int, size: int, write: bool) -> list[tuple[int, int]] | None:
        """(offset into RAM, length) of each piece of [va, va + size), or None
        where any byte of it is refused."""
        if size < 0 or va < 0 or va + size > _MASK64 + 1:
            return None
        t = self.translation()
        runs = []
        while size:
            found = translate(t, va, write, self._descriptor)
            if found is None:
                return None
            pa, room = found
            n = min(room, size)
            if not self.ram_base <= pa <= self.ram_end - n or not self.stage2(pa, n):
                return None
            runs.append((pa - self.ram_base, n))
            va, size = va + n, size - n
        return runs

    def read(self, va: int, size: int) -> bytes | None:
        runs = self._runs(va, size, write=False)
        if runs is None:
            return None
        return b"".join(self._map[at : at + n] for at, n in runs)

    def write(self, va: int, data: bytes) -> bool:
        runs = self._runs(va, len(data), write=True)
        if runs is None:
            return False
        done = 0
        for at, n in runs:
            self._map[at : at + n] = data[done : done + n]
            done += n
        return True
