"""A hypervisor that records what the resource manager asks of it
(gunyah.rm.hyp.Hyp) over a little physical memory, for the RM's VM tests:
they check what the RM asked, call by call."""

from __future__ import annotations

from collections.abc import Callable

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
        self.next_receiver_cap: dict[int, int] = {}  # a secondary's cspace: slot 0 first

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

    def add_vgic(self, vmid: int, gicd: int, gicr: int, stride: int, count: int) -> None:
        self.calls.append(("add_vgic", vmid, gicd, gicr, stride, count))

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

    def doorbell_create(self, receiver: int, virq: int, sender: int | None,
                        sender_rights: int) -> tuple[int, int | None]:  # fmt: skip
        self.calls.append(("doorbell_create", receiver, virq, sender, sender_rights))
        mine = self.next_receiver_cap.get(receiver, 0)
        self.next_receiver_cap[receiver] = mine + 1
        theirs = None
        if sender is not None:
            theirs, self.next_cap = self.next_cap, self.next_cap + 1
        return mine, theirs

    def vcpu_poweron(self, vmid: int, index: int, entry: int, context: int) -> None:
        self.calls.append(("vcpu_poweron", vmid, index, entry, context))

    def vm_stop(self, vmid: int) -> None:
        self.calls.append(("vm_stop", vmid))

    def random_bytes(self, n: int) -> bytes:
        return bytes(range(0xA0, 0xA0 + n))

    def named(self, name: str) -> list[tuple[object, ...]]:
        return [c for c in self.calls if c[0] == name]
