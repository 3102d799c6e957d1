"""Stand-ins the resource manager's VM tests drive it with: a hypervisor that
records what the RM asks of it (gunyah.rm.hyp.Hyp) over a little physical
memory, and a parcel service with just what the measured life cycle uses
(MEM_SHARE, MEM_LEND, MEM_RECLAIM; the interface gunyah.rm.vm_mgnt.Parcels)."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field

from gunyah.abi import rm

HLOS_RAM = 0x9000_0000  # the primary VM's RAM: IPA == PA
HLOS_RAM_SIZE = 0x40_0000


class RecordingHyp:
    """Records each call; the primary VM's RAM is its physical memory."""

    def __init__(self) -> None:
        self.ram = bytearray(HLOS_RAM_SIZE)
        self.calls: list[tuple[object, ...]] = []
        self.maps: dict[
            int, list[tuple[int, int, int, int]]
        ] = {}  # vmid -> (ipa, phys, size, rights)
        self.on_vm_exit: Callable[[int, int, int], None] | None = None
        self.next_cap, self.next_virq = 3, 0x3C2  # as the real one picked its first

    def vm_create(self, vmid: int, owner: int) -> None:
        self.calls.append(("vm_create", vmid, owner))
        self.maps[vmid] = []

    def vm_destroy(self, vmid: int) -> None:
        self.calls.append(("vm_destroy", vmid))
        self.maps.pop(vmid, None)

    def translate(self, vmid: int, ipa: int, size: int) -> int | None:
        if vmid == 3 and ipa >= HLOS_RAM and ipa + size <= HLOS_RAM + HLOS_RAM_SIZE:
            return ipa
        for base, phys, length, _ in self.maps.get(vmid, []):
            if base <= ipa and ipa + size <= base + length:
                return phys + ipa - base
        return None

    def map(self, vmid: int, ipa: int, phys: int, size: int, rights: int) -> None:
        self.calls.append(("map", vmid, ipa, phys, size, rights))
        self.maps.setdefault(vmid, []).append((ipa, phys, size, rights))

    def unmap(self, vmid: int, ipa: int, size: int) -> None:
        self.calls.append(("unmap", vmid, ipa, size))
        self.maps[vmid] = [m for m in self.maps.get(vmid, []) if m[0] != ipa]

    def add_vmmio(self, vmid: int, ipa: int, size: int) -> None:
        self.calls.append(("add_vmmio", vmid, ipa, size))

    def read_phys(self, phys: int, size: int) -> bytes | None:
        at = phys - HLOS_RAM
        return bytes(self.ram[at : at + size]) if at >= 0 and at + size <= len(self.ram) else None

    def write_phys(self, phys: int, data: bytes) -> bool:
        at = phys - HLOS_RAM
        if not (at >= 0 and at + len(data) <= len(self.ram)):
            return False
        self.ram[at : at + len(data)] = data
        return True

    def vcpu_create(self, vmid: int, index: int, owner: int) -> tuple[int, int]:
        self.calls.append(("vcpu_create", vmid, index, owner))
        cap, virq = self.next_cap, self.next_virq
        self.next_cap, self.next_virq = cap + 1, virq + 1
        return cap, virq

    def vcpu_poweron(self, vmid: int, index: int, entry: int, context: int) -> None:
        self.calls.append(("vcpu_poweron", vmid, index, entry, context))

    def vm_stop(self, vmid: int) -> None:
        self.calls.append(("vm_stop", vmid))

    def random_bytes(self, n: int) -> bytes:
        return bytes(range(0xA0, 0xA0 + n))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [c for c in self.calls if c[0] == name]


@dataclass
class Parcel:
    handle: int
    owner: int
    trans_type: str
    label: int
    acl: list[tuple[int, int]]
    sgl: list[tuple[int, int]]
    accepted: dict[int, int] = field(default_factory=dict)


class MiniParcels:
    """Parcels made by MEM_SHARE or MEM_LEND, numbered 1, 2, 3 ...; accepted
    by the RM for a VM it starts; released on reset; reclaimed unless in use."""

    def __init__(self, hyp: RecordingHyp) -> None:
        self.hyp = hyp
        self.parcels: dict[int, Parcel] = {}
        self.next = 1

    def get(self, handle: int) -> Parcel | None:
        return self.parcels.get(handle)

    def accept_for(self, handle: int, vmid: int, ipa: int) -> int:
        p = self.parcels.get(handle)
        if p is None:
            return rm.ERROR_CODES["HANDLE_INVALID"]
        rights = dict(p.acl).get(vmid)
        if rights is None:
            return rm.ERROR_CODES["DENIED"]
        at = ipa
        for owner_ipa, size in p.sgl:
            phys = self.hyp.translate(p.owner, owner_ipa, size)
            if phys is None:
                return rm.ERROR_CODES["MEM_INVALID"]
            self.hyp.map(vmid, at, phys, size, rights)
            at += size
        p.accepted[vmid] = ipa
        return rm.OK

    def release_all(self, vmid: int) -> list[int]:
        released = []
        for p in self.parcels.values():
            if vmid in p.accepted:
                ipa = p.accepted.pop(vmid)
                for _, size in p.sgl:
                    self.hyp.unmap(vmid, ipa, size)
                    ipa += size
                released.append(p.handle)
        return released

    def handlers(self, caller: int) -> dict[int, Callable[[bytes], tuple[int, bytes]]]:
        def make(kind: str) -> Callable[[bytes], tuple[int, bytes]]:
            def handle(payload: bytes) -> tuple[int, bytes]:
                try:
                    _, _, _, _, label, n_acl = struct.unpack_from("<BBBBIH", payload)
                    acl = [struct.unpack_from("<HB", payload, 12 + 4 * i) for i in range(n_acl)]
                    at = 12 + 4 * n_acl
                    (n_sgl,) = struct.unpack_from("<H", payload, at)
                    sgl = [
                        struct.unpack_from("<QQ", payload, at + 4 + 16 * i) for i in range(n_sgl)
                    ]
                except struct.error:
                    return rm.ERROR_MSG_INVALID, b""
                h, self.next = self.next, self.next + 1
                self.parcels[h] = Parcel(h, caller, kind, label, [(v, r) for v, r in acl],
                                         [(a, s) for a, s in sgl])  # fmt: skip
                return rm.OK, struct.pack("<I", h)

            return handle

        def reclaim(payload: bytes) -> tuple[int, bytes]:
            if len(payload) != 8:
                return rm.ERROR_MSG_INVALID, b""
            p = self.parcels.get(int.from_bytes(payload[:4], "little"))
            if p is None:
                return rm.ERROR_CODES["HANDLE_INVALID"], b""
            if p.accepted:
                return rm.ERROR_CODES["MEM_INUSE"], b""
            del self.parcels[p.handle]
            return rm.OK, b""

        ids = rm.MESSAGE_IDS
        return {ids["MEM_SHARE"]: make("share"), ids["MEM_LEND"]: make("lend"),
                ids["MEM_RECLAIM"]: reclaim}  # fmt: skip
