"""A small hypervisor for resource-manager tests: stage 2 as ranges per VM,
a little physical memory, and a log of what the RM asked (gunyah.rm.hyp.Hyp)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

HLOS = 3
RAM_BASE, RAM_SIZE = 0x40000000, 8 << 20  # the primary VM's, mapped IPA == PA


class RecordingHyp:
    def __init__(self, ram_base: int = RAM_BASE, ram_size: int = RAM_SIZE) -> None:
        self.ram_base, self.ram_size = ram_base, ram_size
        # vmid -> [ipa, size, phys, rights], disjoint
        self.maps: dict[int, list[tuple[int, int, int, int]]] = {
            HLOS: [(ram_base, ram_size, ram_base, 7)]}  # fmt: skip
        self.calls: list[tuple[Any, ...]] = []
        self._mem: bytearray | None = None
        self.on_vm_exit: Callable[[int, int, int], None] | None = None

    # -- stage 2 ------------------------------------------------------------------
    def translate(self, vmid: int, ipa: int, size: int) -> int | None:
        at, phys = ipa, None
        for base, n, p, _ in sorted(self.maps.get(vmid, [])):
            if base <= at < base + n:
                here = p + (at - base)
                if phys is not None and here != phys + (at - ipa):
                    return None
                phys = here if phys is None else phys
                at = base + n
                if at >= ipa + size:
                    return phys
        return None

    def rights(self, vmid: int, ipa: int) -> int | None:
        for base, n, _, r in self.maps.get(vmid, []):
            if base <= ipa < base + n:
                return r
        return None

    def map(self, vmid: int, ipa: int, phys: int, size: int, rights: int) -> None:
        self.calls.append(("map", vmid, ipa, phys, size, rights))
        self._cut(vmid, ipa, size)
        self.maps.setdefault(vmid, []).append((ipa, size, phys, rights))

    def unmap(self, vmid: int, ipa: int, size: int) -> None:
        self.calls.append(("unmap", vmid, ipa, size))
        self._cut(vmid, ipa, size)

    def _cut(self, vmid: int, ipa: int, size: int) -> None:
        out = []
        for base, n, p, r in self.maps.get(vmid, []):
            end = base + n
            if end <= ipa or base >= ipa + size:
                out.append((base, n, p, r))
                continue
            if base < ipa:
                out.append((base, ipa - base, p, r))
            if end > ipa + size:
                cut = ipa + size - base
                out.append((ipa + size, end - ipa - size, p + cut, r))
        self.maps[vmid] = out

    # -- physical memory ------------------------------------------------------------
    @property
    def mem(self) -> bytearray:
        if self._mem is None:
            self._mem = bytearray(b"\xa5" * self.ram_size)
        return self._mem

    def read_phys(self, phys: int, size: int) -> bytes | None:
        at = phys - self.ram_base
        if at < 0 or at + size > self.ram_size:
            return None
        return bytes(self.mem[at : at + size])

    def write_phys(self, phys: int, data: bytes) -> bool:
        self.calls.append(("write_phys", phys, len(data)))
        at = phys - self.ram_base
        if at < 0 or at + len(data) > self.ram_size:
            return False
        self.mem[at : at + len(data)] = data
        return True

    # -- the rest, recorded ------------------------------------------------------------
    def vm_create(self, vmid: int, owner: int) -> None:
        self.calls.append(("vm_create", vmid, owner))
        self.maps.setdefault(vmid, [])

    def vm_destroy(self, vmid: int) -> None:
        self.calls.append(("vm_destroy", vmid))
        self.maps.pop(vmid, None)

    def add_vmmio(self, vmid: int, ipa: int, size: int) -> None:
        self.calls.append(("add_vmmio", vmid, ipa, size))

    def add_vgic(self, vmid: int, gicd: int, gicr: int, stride: int, count: int) -> None:
        self.calls.append(("add_vgic", vmid, gicd, gicr, stride, count))

    def vcpu_create(self, vmid: int, index: int, owner: int) -> tuple[int, int]:
        self.calls.append(("vcpu_create", vmid, index, owner))
        return 3, 0x3C2

    def vcpu_poweron(self, vmid: int, index: int, entry: int, context: int) -> None:
        self.calls.append(("vcpu_poweron", vmid, index, entry, context))

    def vm_stop(self, vmid: int) -> None:
        self.calls.append(("vm_stop", vmid))

    def random_bytes(self, n: int) -> bytes:
        return bytes(n)
