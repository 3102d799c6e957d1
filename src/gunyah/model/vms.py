"""The hypervisor's objects, each owned by a VM: partitions (VMs) with their
capability spaces and stage-2 address spaces, vCPUs (threads), message
queues, doorbells and memory extents, and the physical RAM under them.

`Vms` is what the resource manager asks of the hypervisor (the `Hyp`
interface of gunyah.rm.hyp, met here by duck typing: the model does not
import the RM). Its calls trust their caller, the RM, to have checked what
a client asked; what the hypervisor itself refuses raises `HypError` with
the hypervisor's error code, never changing anything first.

Sources: quic/gunyah-hypervisor 36ca3a2 (hyp/core/cspace_twolevel for
capability states and lookups, hyp/mem/addrspace for stage 2 and VMMIO
ranges, hyp/vm/vcpu_run for the owner's view of a vCPU, hyp/ipc/msgqueue
for when a queue raises its interrupts, hyp/ipc/doorbell for a doorbell's);
quic/gunyah-resource-manager bf31a9a (include/rm_types.h for the VMIDs,
src/vm_config/vm_config.c vm_config_add_vcpu for the owner's vCPU rights,
src/vm_mgnt/vm_mgnt.c for the exit type of a halted VM).
"""

from __future__ import annotations

import bisect
import gc
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Protocol

from ..abi import cspace as cs
from ..abi.devicetree import PRIMARY_VM_ID, RM_LINK, RmRpc
from ..abi.errors import Error

if TYPE_CHECKING:
    from collections.abc import Mapping as AnyMapping
    from collections.abc import Sequence

    from .secondary_log import SecondaryLog
    from .vcpu_run import SecondaryVcpu, SecondaryVm, VcpuBackend
    from .vgic import VGic

VMID_HYP = 0x00  # include/rm_types.h
VMID_HLOS = PRIMARY_VM_ID  # 0x03
VMID_RM = 0xFF
VMID_MAX = 0xFFFF  # vmid_t is 16 bits

PAGE_SIZE = 4096  # the granule stage 2 maps in
ADDRESS_LIMIT = 1 << 64

# ACL rights as the RM passes them (bit 2 R, bit 1 W, bit 0 X)
RIGHT_X, RIGHT_W, RIGHT_R = 1, 2, 4
RIGHTS_RWX = RIGHT_R | RIGHT_W | RIGHT_X

# What an owner VM may do with its guest's vCPUs: run them
# (vm_config.c vm_config_add_vcpu copies the cap with these rights;
# vcpu_run.c looks the thread up with them)
_THREAD = cs.RIGHTS["thread"]
VCPU_RUN_RIGHTS = 1 << _THREAD["affinity"] | 1 << _THREAD["yield_to"]

# vm_mgnt.c: a VM whose vCPUs all powered off exits as PLATFORM_OFF; one that
# called SYSTEM_RESET as PLATFORM_RESET; SYSTEM_RESET2 with its reset type
EXIT_PLATFORM_OFF = 1
EXIT_PLATFORM_RESET = 2
EXIT_PSCI_SYSTEM_RESET2 = 3

VcpuState = Literal["off", "on", "halted"]


class HypError(ValueError):
    """The hypervisor refused: `error` is its code (abi.errors.Error)."""

    def __init__(self, error: Error, why: str) -> None:
        super().__init__(f"{error.name}: {why}")
        self.error = error


# -- objects ---------------------------------------------------------------------
@dataclass(eq=False)
class Vic:
    """A VM's virtual interrupt controller, as far as the model goes: the
    virqs (interrupt IDs) asserted for the VM and not yet handed to whatever
    runs it, each once (an edge-triggered virq asserted twice before it is
    taken is one interrupt), oldest first."""

    pending: list[int] = field(default_factory=list)

    def assert_virq(self, virq: int) -> None:
        if virq not in self.pending:
            self.pending.append(virq)

    def clear(self, virq: int) -> None:
        if virq in self.pending:
            self.pending.remove(virq)

    def take(self, limit: int | None = None) -> list[int]:
        """The pending virqs, oldest first, at most `limit` of them; those
        are no longer pending (the list stays the same object: a compiled
        serving loop looks at its length)."""
        end = len(self.pending) if limit is None else limit
        taken = self.pending[:end]
        del self.pending[:end]
        return taken


@dataclass(frozen=True)
class VirqSource:
    """A virq bound to a VM's VIC (virq_source_t once vic_bind_shared has
    bound it): what a queue asserts and clears."""

    vic: Vic
    virq: int

    def assert_virq(self) -> None:
        self.vic.assert_virq(self.virq)

    def clear(self) -> None:
        self.vic.clear(self.virq)


@dataclass(eq=False)
class Msgqueue:
    """A message queue (hyp/ipc/msgqueue): depth, message size, thresholds,
    and the messages waiting, oldest first. `notify`, when set, is told after
    each message a guest sends to it or takes from it: the other end's
    program runs then (the resource manager, for the primary VM's queues).

    Its two interrupts are raised as msgqueue_common.c and msgqueue.c raise
    them: the receiver's (`rcv_source`) when a send brings the count up to
    the not-empty threshold or asks for a push, the sender's (`send_source`)
    when a receive brings it down to the not-full threshold; a flush of a
    queue that held messages asserts the sender's and clears the
    receiver's; a new threshold asserts its side's interrupt where the count
    already meets it and clears it where not. An unbound source is skipped."""

    depth: int = RM_LINK.queue_depth
    max_msg_size: int = RM_LINK.message_size
    notfull_thd: int = RM_LINK.queue_depth - 1
    notempty_thd: int = 1
    messages: deque[bytes] = field(default_factory=deque)
    notify: Callable[[], None] | None = None
    send_source: VirqSource | None = None
    rcv_source: VirqSource | None = None

    @property
    def full(self) -> bool:
        return len(self.messages) == self.depth

    def send(self, message: bytes, push: bool = False) -> bool:
        """msgqueue_send_msg once the message is copied in (the caller has
        checked there is room): queued; whether the queue is still not full."""
        self.messages.append(message)
        if (push or len(self.messages) == self.notempty_thd) and self.rcv_source is not None:
            self.rcv_source.assert_virq()
        return not self.full

    def receive(self) -> bytes:
        """msgqueue_receive_msg once the oldest message is copied out (the
        caller has checked there is one): that message, taken off."""
        message = self.messages.popleft()
        if len(self.messages) == self.notfull_thd and self.send_source is not None:
            self.send_source.assert_virq()
        return message

    def flush(self) -> None:
        """msgqueue_flush_queue: every message dropped."""
        if self.messages:
            if self.send_source is not None:
                self.send_source.assert_virq()
            if self.rcv_source is not None:
                self.rcv_source.clear()
        self.messages.clear()

    def configure_send(self, notfull_thd: int) -> None:
        """msgqueue_configure_send with a new, checked threshold."""
        self.notfull_thd = notfull_thd
        if self.send_source is not None:
            if len(self.messages) <= notfull_thd:
                self.send_source.assert_virq()
            else:
                self.send_source.clear()

    def configure_receive(self, notempty_thd: int | None) -> None:
        """msgqueue_configure_receive with a new, checked threshold; None is
        MSGQUEUE_THRESHOLD_MAXIMUM, the depth, which raises and clears nothing."""
        if notempty_thd is None:
            self.notempty_thd = self.depth
            return
        self.notempty_thd = notempty_thd
        if self.rcv_source is not None:
            if len(self.messages) >= notempty_thd:
                self.rcv_source.assert_virq()
            else:
                self.rcv_source.clear()


@dataclass(eq=False)
class Thread:
    """A vCPU: `index` of VM `vmid`, its power state and where it starts."""

    vmid: int = VMID_RM
    index: int = 0
    affinity: int = 0
    state: VcpuState = "off"
    entry: int = 0
    context: int = 0
    wake_virq: int | None = None  # raised in the owner when it can run again
    runner: SecondaryVcpu | None = None  # a secondary's vCPU once its VM started (model.proxy)


FLAGS_ALL = (1 << 64) - 1  # doorbell_flags_t is 64 bits


@dataclass(frozen=True)
class SpiSource:
    """A doorbell's virq once doorbell_bind_virq has bound it: SPI `virq` in
    VM `vmid`'s vGIC (vic_bind_shared takes SPIs only). It reaches the vGIC
    of the VM's runner once the VM runs; before that a level assertion waits
    in the VM's `vic` and is made pending when the vGIC is made
    (model.proxy.start), an edge-only one is lost (an SPI resets as level)."""

    vms: Vms
    vmid: int
    virq: int

    def assert_virq(self, edge_only: bool) -> None:
        self.vms.assert_spi(self.vmid, self.virq, edge_only)

    def clear(self) -> None:
        self.vms.clear_spi(self.vmid, self.virq)


@dataclass(eq=False)
class Doorbell:
    """A doorbell (hyp/ipc/doorbell/src/doorbell.c): flags a sender sets for
    a receiver, and the receiver's virq, asserted as a level while a flag
    set is enabled, else as an edge. Made with every flag enabled and none
    auto-acknowledged (doorbell_handle_object_create_doorbell)."""

    flags: int = 0
    enable_mask: int = FLAGS_ALL
    ack_mask: int = 0
    source: SpiSource | None = None

    def send(self, new_flags: int) -> int:
        """doorbell_send: the flags before; the virq asserted (as a level
        where an enabled flag is set, then the ack mask's flags cleared;
        else as an edge only)."""
        old = self.flags
        self.flags |= new_flags & FLAGS_ALL
        edge_only = self.flags & self.enable_mask == 0
        if self.source is not None:
            self.source.assert_virq(edge_only)
        if not edge_only:
            self.flags &= ~self.ack_mask
        return old

    def asserted(self) -> bool:
        """doorbell_handle_virq_check_pending: whether its level holds when
        the receiver ends the interrupt (an enabled flag is set)."""
        return self.flags & self.enable_mask != 0

    def receive(self, clear_flags: int) -> int:
        """doorbell_receive once clear_flags is checked non-zero: the flags
        before, those named cleared."""
        old = self.flags
        self.flags &= ~clear_flags
        return old

    def reset(self) -> None:
        """doorbell_reset: a pending level deasserted, flags and masks as made."""
        if self.source is not None:
            self.source.clear()
        self.flags, self.ack_mask, self.enable_mask = 0, 0, FLAGS_ALL

    def mask(self, enable_mask: int, ack_mask: int) -> None:
        """doorbell_mask: new masks; the level follows the enabled flags."""
        was = self.flags & self.enable_mask != 0
        now = self.flags & enable_mask != 0
        self.enable_mask, self.ack_mask = enable_mask & FLAGS_ALL, ack_mask & FLAGS_ALL
        if was and not now:
            if self.source is not None:
                self.source.clear()
        elif now:
            if not was and self.source is not None:
                self.source.assert_virq(False)
            self.flags &= ~self.ack_mask


@dataclass(eq=False)
class Memextent:
    """A memory extent: a physical range, whole (hyp/mem/memextent)."""

    phys: int
    size: int


@dataclass(frozen=True)
class Mapping:
    """One stage-2 mapping: [ipa, ipa+size) -> [phys, phys+size), RWX rights."""

    ipa: int
    phys: int
    size: int
    rights: int

    @property
    def end(self) -> int:
        return self.ipa + self.size


def _ipa_of(m: Mapping) -> int:
    return m.ipa


class Addrspace:
    """A VM's stage 2 (hyp/mem/addrspace): mappings sorted by IPA, never
    overlapping, and the ranges whose accesses go to the VM's owner."""

    def __init__(self) -> None:
        self.mappings: list[Mapping] = []
        self.vmmio: list[tuple[int, int]] = []  # (ipa, size)

    def _first_at_or_after(self, ipa: int) -> int:
        """Index of the first mapping that ends after `ipa` (a binary search:
        a VM may hold hundreds of mappings, one per page a parcel names)."""
        i = bisect.bisect_right(self.mappings, ipa, key=_ipa_of)
        return i - 1 if i and self.mappings[i - 1].end > ipa else i

    def translate(self, ipa: int, size: int) -> int | None:
        i = self._first_at_or_after(ipa)
        if size <= 0 or i == len(self.mappings) or self.mappings[i].ipa > ipa:
            return None
        first = self.mappings[i]
        phys = first.phys + (ipa - first.ipa)
        end, at = ipa + size, first
        while at.end < end:  # the rest must follow on in both spaces
            i += 1
            if i == len(self.mappings):
                return None
            nxt = self.mappings[i]
            if nxt.ipa != at.end or nxt.phys != at.phys + at.size:
                return None
            at = nxt
        return phys

    def map(self, ipa: int, phys: int, size: int, rights: int) -> None:
        i = self._first_at_or_after(ipa)
        if i < len(self.mappings) and self.mappings[i].ipa < ipa + size:
            raise HypError(Error.EXISTING_MAPPING, f"IPA {ipa:#x} is mapped already")
        self.mappings.insert(i, Mapping(ipa, phys, size, rights))

    def unmap(self, ipa: int, size: int) -> None:
        end = ipa + size
        first = last = self._first_at_or_after(ipa)
        while last < len(self.mappings) and self.mappings[last].ipa < end:
            last += 1  # the mappings [first, last) meet the hole
        kept: list[Mapping] = []
        for m in self.mappings[first:last]:
            if m.ipa < ipa:  # the part before the hole stays
                kept.append(Mapping(m.ipa, m.phys, ipa - m.ipa, m.rights))
            if m.end > end:  # and the part after it
                kept.append(Mapping(end, m.phys + (end - m.ipa), m.end - end, m.rights))
        self.mappings[first:last] = kept


# -- capability spaces -----------------------------------------------------------
class Cspace:
    """A VM's capability space: lookups with their errors in the hypervisor's
    order (cspace_twolevel.c: cspace_check_cap_data, cspace_lookup_object,
    cspace_lookup_object_any): a malformed ID, an empty slot, a revoked cap,
    then the type, then the rights (rights first for "any" object)."""

    def __init__(self, caps: dict[int, cs.Cap] | None = None) -> None:
        self.caps: dict[int, cs.Cap] = dict(caps or {})
        self.revoked: set[int] = set()  # slots whose cap was revoked, not yet deleted

    def _slot(self, cap_id: int) -> tuple[int, cs.Cap | None]:
        if cs.decode_cap_id(cap_id) is None:
            return cs.ERROR_ARGUMENT_INVALID, None
        cap = self.caps.get(cap_id)
        if cap is not None:
            return Error.OK, cap
        return (cs.ERROR_CAP_REVOKED if cap_id in self.revoked else cs.ERROR_CAP_NULL), None

    def lookup(self, cap_id: int, object_type: str, rights: int) -> tuple[int, cs.Cap | None]:
        err, cap = self._slot(cap_id)
        if cap is None:
            return err, None
        if cap.object_type != object_type:
            return cs.ERROR_WRONG_OBJECT_TYPE, None
        if cap.rights & rights != rights:
            return cs.ERROR_INSUFFICIENT_RIGHTS, None
        return Error.OK, cap

    def lookup_any(
        self, cap_id: int, rights: int, object_type: str | None
    ) -> tuple[int, cs.Cap | None]:
        err, cap = self._slot(cap_id)
        if cap is None:
            return err, None
        if cap.rights & rights != rights:
            return cs.ERROR_INSUFFICIENT_RIGHTS, None
        if object_type is not None and cap.object_type != object_type:
            return cs.ERROR_WRONG_OBJECT_TYPE, None
        return Error.OK, cap

    def _free_ids(self) -> Iterator[int]:
        for table in range(cs.TABLES):
            for slot in range(cs.SLOTS_PER_TABLE):
                cap_id = table << 8 | slot
                if cap_id not in self.caps and cap_id not in self.revoked:
                    yield cap_id

    def insert(self, cap: cs.Cap, cap_id: int | None = None) -> int:
        """Put `cap` in the first free slot (debug builds' IDs are the slot
        numbers), or in slot `cap_id`; its ID."""
        if cap_id is None:
            cap_id = next(self._free_ids(), None)
            if cap_id is None:
                raise HypError(Error.CSPACE_FULL, "no free slot")
        elif cs.decode_cap_id(cap_id) is None:
            raise HypError(Error.ARGUMENT_INVALID, f"{cap_id:#x} names no slot")
        elif cap_id in self.caps or cap_id in self.revoked:
            raise HypError(Error.CSPACE_FULL, f"slot {cap_id:#x} is taken")
        self.caps[cap_id] = cap
        return cap_id

    def revoke(self, objects: set[int]) -> None:
        """Every cap to one of these objects (by id()) becomes revoked."""
        for cap_id, cap in list(self.caps.items()):
            if id(cap.obj) in objects:
                del self.caps[cap_id]
                self.revoked.add(cap_id)


# -- partitions ------------------------------------------------------------------
@dataclass(eq=False)
class Vm:
    """A VM (a partition): its owner, cspace, stage 2, vCPUs, and every other
    object made for it (revoked with it)."""

    vmid: int
    owner: int
    cspace: Cspace = field(default_factory=Cspace)
    addrspace: Addrspace = field(default_factory=Addrspace)
    vcpus: dict[int, Thread] = field(default_factory=dict)
    objects: list[object] = field(default_factory=list)
    runner: SecondaryVm | None = None  # its vCPUs as vcpu_run runs them (model.proxy)
    vic: Vic = field(default_factory=Vic)  # the virqs raised in it, not yet delivered
    vgic: tuple[int, int, int, int] | None = None  # its vGIC: distributor, redistributors,
    # their stride and count (add_vgic); the runner's model.vgic.VGic is made from it

    def grant(self, obj: object, object_type: str, rights: int, cap_id: int | None = None) -> int:
        """A cap to `obj` with `rights` in this VM's cspace; its ID."""
        return self.cspace.insert(cs.Cap(object_type, rights, obj), cap_id)


class Backends(Protocol):
    """What runs secondary VMs' vCPUs instead of the unicorn engine: a
    backend for each vCPU of a starting VM, and a VM's resources back when
    it goes (boot/world.py's World)."""

    def start(self, vmid: int, mappings: Sequence[Mapping], vcpus: Sequence[int],
              vgic: VGic | None) -> AnyMapping[int, VcpuBackend]: ...  # fmt: skip

    def release(self, vmid: int) -> None: ...


@dataclass(frozen=True)
class RamRegion:
    base: int
    data: bytearray | memoryview

    @property
    def end(self) -> int:
        return self.base + len(self.data)


class Vms:
    """Every VM the hypervisor holds and the physical RAM they map: the
    hypervisor's side of the resource manager's requests."""

    def __init__(self, loses_exits: bool = False, link: RmRpc = RM_LINK) -> None:
        self.loses_exits = loses_exits  # a persona's quirk: no VM's end reaches the RM
        self.link = link  # the RM link's interrupts in the machine's GIC, and its free virqs
        self.vms: dict[int, Vm] = {}
        self.ram: list[RamRegion] = []
        self.on_vm_exit: Callable[[int, int, int], None] | None = None
        self.log: SecondaryLog | None = None  # the secondaries' starts and calls, if kept
        self._next_virq: dict[int, int] = {}
        # a stage 2 kept outside the model, by VMID (the boot's primary:
        # boot/stage2.py): told of each change with the VM's new mappings and
        # the range changed; it refuses one it cannot carry with a HypError,
        # and then the change is undone
        self.stage2: dict[int, Callable[[list[Mapping], int, int], None]] = {}
        # what runs a secondary's vCPUs where not the unicorn engine (a
        # boot's: the shim, boot/world.py); told when a VM goes
        self.backends: Backends | None = None

    def __getitem__(self, vmid: int) -> Vm:
        vm = self.vms.get(vmid)
        if vm is None:
            raise HypError(Error.ARGUMENT_INVALID, f"no VM {vmid:#x}")
        return vm

    # -- physical memory -------------------------------------------------------
    def add_ram(self, base: int, data: bytearray | memoryview) -> None:
        """RAM at physical `base` (the unicorn vCPU's or the boot's), its bytes `data`."""
        end = base + len(data)
        if base < 0 or end > ADDRESS_LIMIT or any(base < r.end and r.base < end for r in self.ram):
            raise ValueError(f"RAM at {base:#x}+{len(data):#x} overlaps RAM or leaves 64 bits")
        self.ram.append(RamRegion(base, data))

    def _region(self, phys: int, size: int) -> RamRegion | None:
        if phys < 0 or size < 0:
            return None
        for r in self.ram:
            if r.base <= phys and phys + size <= r.end:
                return r
        return None

    def read_phys(self, phys: int, size: int) -> bytes | None:
        r = self._region(phys, size)
        return None if r is None else bytes(r.data[phys - r.base : phys - r.base + size])

    def write_phys(self, phys: int, data: bytes) -> bool:
        r = self._region(phys, len(data))
        if r is None:
            return False
        r.data[phys - r.base : phys - r.base + len(data)] = data
        return True

    # -- VMs and their stage 2 -------------------------------------------------
    def vm_create(self, vmid: int, owner: int) -> None:
        if not 0 <= vmid <= VMID_MAX or vmid in self.vms:
            raise HypError(Error.ARGUMENT_INVALID, f"VMID {vmid:#x} is taken or out of range")
        self.vms[vmid] = Vm(vmid, owner)

    def vm_destroy(self, vmid: int) -> None:
        """The VM and every object of it go; every cap to one, in any VM's
        cspace, reads as revoked from now on."""
        vm = self[vmid]
        del self.vms[vmid]
        if self.backends is not None:
            self.backends.release(vmid)
        gone = {id(o) for o in (*vm.vcpus.values(), *vm.objects)}
        for other in self.vms.values():
            other.cspace.revoke(gone)

    @staticmethod
    def _range(ipa: int, size: int, what: str) -> None:
        if size <= 0 or ipa < 0 or ipa + size > ADDRESS_LIMIT:
            raise HypError(Error.ADDR_OVERFLOW, f"{what} {ipa:#x}+{size:#x} is not a range")
        if (ipa | size) % PAGE_SIZE:
            raise HypError(Error.ARGUMENT_ALIGNMENT, f"{what} {ipa:#x}+{size:#x} is not in pages")

    def translate(self, vmid: int, ipa: int, size: int) -> int | None:
        vm = self.vms.get(vmid)
        if vm is None or ipa < 0 or size <= 0 or ipa + size > ADDRESS_LIMIT:
            return None
        return vm.addrspace.translate(ipa, size)

    def map(self, vmid: int, ipa: int, phys: int, size: int, rights: int) -> None:
        vm = self[vmid]
        self._range(ipa, size, "IPA")
        self._range(phys, size, "physical")
        if not 0 < rights <= RIGHTS_RWX:
            raise HypError(Error.ARGUMENT_INVALID, f"rights {rights:#x} are not R, W, X bits")
        before = list(vm.addrspace.mappings)
        vm.addrspace.map(ipa, phys, size, rights)
        self._carry_out(vm, before, ipa, size)

    def unmap(self, vmid: int, ipa: int, size: int) -> None:
        vm = self[vmid]
        self._range(ipa, size, "IPA")
        before = list(vm.addrspace.mappings)
        vm.addrspace.unmap(ipa, size)
        self._carry_out(vm, before, ipa, size)

    def _carry_out(self, vm: Vm, before: list[Mapping], ipa: int, size: int) -> None:
        """Tell the VM's outside stage 2, if it has one; undo what it refuses."""
        told = self.stage2.get(vm.vmid)
        if told is None:
            return
        try:
            told(vm.addrspace.mappings, ipa, size)
        except HypError:
            vm.addrspace.mappings = before
            raise

    def add_vmmio(self, vmid: int, ipa: int, size: int) -> None:
        vm = self[vmid]
        self._range(ipa, size, "VMMIO")
        vm.addrspace.vmmio.append((ipa, size))

    def add_vgic(self, vmid: int, gicd: int, gicr: int, stride: int, count: int) -> None:
        vm = self[vmid]
        if not 0 < count <= 64 or stride < 0x2_0000 or stride % 0x1_0000:
            why = f"a vGIC of {count} redistributors {stride:#x} apart"
            raise HypError(Error.ARGUMENT_INVALID, why)
        self._range(gicd, 0x1_0000, "GICD")
        self._range(gicr, stride * count, "GICR")
        vm.vgic = (gicd, gicr, stride, count)

    # -- vCPUs -------------------------------------------------------------------
    def vcpu_create(self, vmid: int, index: int, owner: int) -> tuple[int, int]:
        """vCPU `index` of VM `vmid`, with a cap to run it in VM `owner`'s
        cspace: (that cap's ID, the owner's wake-up virq for it)."""
        vm, holder = self[vmid], self[owner]
        if not 0 <= index < 64 or index in vm.vcpus:
            raise HypError(Error.ARGUMENT_INVALID, f"VM {vmid:#x} has vCPU {index} or no room")
        virq = self._free_virq(owner)
        thread = Thread(vmid, index, wake_virq=virq)
        cap_id = holder.grant(thread, "thread", VCPU_RUN_RIGHTS)
        vm.vcpus[index] = thread
        self._next_virq[owner] = virq + 1
        return cap_id, virq

    def _free_virq(self, owner: int) -> int:
        """The next virq to hand out in VM `owner`: from the link's
        free_irq_start up, past the link's own two, which the RM took from
        the same range first (measured: free-irq-start 0x3c0, the queues
        0x3c0 and 0x3c1, the first vCPU's wake-up virq 0x3c2;
        docs/real-gunyah.md sections 9 and 11)."""
        virq = self._next_virq.get(owner, self.link.free_irq_start)
        while virq in (self.link.tx_intid, self.link.rx_intid):
            virq += 1
        return virq

    # -- doorbells ---------------------------------------------------------------
    def doorbell_create(self, receiver: int, virq: int, sender: int | None,
                        sender_rights: int) -> tuple[int, int | None]:  # fmt: skip
        """A doorbell whose virq is SPI `virq` of VM `receiver`, as the RM
        makes one (quic/gunyah-resource-manager src/vm_config/vm_config.c
        configure_doorbell_with_peer): a cap with the receive right in the
        receiver's cspace first, then, where there is a sender, a cap with
        `sender_rights` in the sender's; the virq bound. (the receiver's cap
        ID, the sender's or None). The doorbell is the receiver's: it goes,
        and every cap to it is revoked, with that VM."""
        vm = self[receiver]
        holder = None if sender is None else self[sender]
        if not 32 <= virq <= 1019:  # vic_bind_shared: an SPI only
            raise HypError(Error.ARGUMENT_INVALID, f"virq {virq} is not an SPI")
        if any(isinstance(o, Doorbell) and o.source is not None and o.source.virq == virq
               for o in vm.objects):  # fmt: skip
            raise HypError(Error.VIRQ_BOUND, f"VM {receiver:#x} has virq {virq} bound")
        bell = Doorbell()
        rights = cs.RIGHTS["doorbell"]
        mine = vm.grant(bell, "doorbell", 1 << rights["receive"])
        theirs = None
        if holder is not None:
            try:
                theirs = holder.grant(bell, "doorbell", sender_rights)
            except HypError:
                del vm.cspace.caps[mine]
                raise
        bell.source = SpiSource(self, receiver, virq)
        vm.objects.append(bell)
        return mine, theirs

    def assert_spi(self, vmid: int, virq: int, edge_only: bool) -> None:
        """virq_assert of SPI `virq` in VM `vmid` (hyp/interfaces/virq/include/
        virq.h): made pending in its vGIC (an edge-only assertion only where
        the guest configured the SPI as edge-triggered); a vCPU of it
        waiting in WFI for what is now deliverable to it is woken, which
        raises its wake-up virq in its owner, here, in the sender's call,
        and one running on another CPU is kicked, so that its next run, at
        once, takes it (docs/boot.md section 15)."""
        vm = self.vms.get(vmid)
        if vm is None:
            return
        runner = vm.runner
        if runner is None or runner.vgic is None:
            if not edge_only:
                vm.vic.assert_virq(virq)
            return
        if runner.vgic.assert_spi(virq, edge_only):
            for vcpu in runner.vcpus:
                if runner.vgic.deliverable(vcpu.index):
                    vcpu.interrupt_pending()

    def clear_spi(self, vmid: int, virq: int) -> None:
        """virq_clear: a level assertion of SPI `virq` in VM `vmid` withdrawn."""
        vm = self.vms.get(vmid)
        if vm is None:
            return
        vm.vic.clear(virq)
        if vm.runner is not None and vm.runner.vgic is not None:
            vm.runner.vgic.clear_spi(virq)

    def raise_virq(self, vmid: int, virq: int | None) -> None:
        """Assert `virq` in VM `vmid`'s VIC; nothing for a VM that is gone
        or no virq."""
        vm = self.vms.get(vmid)
        if vm is not None and virq is not None:
            vm.vic.assert_virq(virq)

    def _vcpu(self, vmid: int, index: int) -> Thread:
        thread = self[vmid].vcpus.get(index)
        if thread is None:
            raise HypError(Error.ARGUMENT_INVALID, f"VM {vmid:#x} has no vCPU {index}")
        return thread

    def vcpu_poweron(self, vmid: int, index: int, entry: int, context: int) -> None:
        thread = self._vcpu(vmid, index)
        if thread.state == "on":
            raise HypError(Error.BUSY, f"vCPU {index} of VM {vmid:#x} is on already")
        thread.state, thread.entry, thread.context = "on", entry, context
        if vmid not in (PRIMARY_VM_ID, VMID_RM):  # proxy scheduled: its owner runs it
            from . import proxy

            if self[vmid].runner is None:
                proxy.start(self, vmid)
            assert thread.runner is not None
            thread.runner.poweron(entry, context)

    def drop_runners(self) -> None:
        """Let go of every secondary VM's engines and the views of RAM they
        hold, at a boot's end, VMs still running or not: the RAM is unmapped
        next, and a view still exported would stop that."""
        dropped = False
        for vm in self.vms.values():
            dropped |= vm.runner is not None
            vm.runner = None
            if self.backends is not None:
                self.backends.release(vm.vmid)
            for thread in vm.vcpus.values():
                thread.runner = None
        if dropped:  # (a boot that ran no VM has nothing to collect)
            gc.collect()  # an engine's hooks refer back to its vCPU: a cycle

    def vm_stop(self, vmid: int) -> None:
        vm = self[vmid]
        for thread in vm.vcpus.values():
            thread.state = "halted"
        if vm.runner is not None:
            vm.runner.stop()

    def vcpu_poweroff(self, vmid: int, index: int) -> None:
        """A vCPU powers itself off (PSCI CPU_OFF); the VM's last one exits it."""
        self._vcpu(vmid, index).state = "off"
        if not any(t.state == "on" for t in self[vmid].vcpus.values()):
            self.exited(vmid, EXIT_PLATFORM_OFF, 0)

    def system_off(self, vmid: int) -> None:
        """PSCI SYSTEM_OFF: every vCPU off, the VM exits."""
        for thread in self[vmid].vcpus.values():
            thread.state = "off"
        self.exited(vmid, EXIT_PLATFORM_OFF, 0)

    def system_reset(self, vmid: int, reset_type: int | None = None) -> None:
        """PSCI SYSTEM_RESET (reset_type None) or SYSTEM_RESET2 (its type)."""
        for thread in self[vmid].vcpus.values():
            thread.state = "off"
        if reset_type is None:
            self.exited(vmid, EXIT_PLATFORM_RESET, 0)
        else:
            self.exited(vmid, EXIT_PSCI_SYSTEM_RESET2, reset_type)

    def exited(self, vmid: int, exit_type: int, reason: int) -> bool:
        """VM `vmid` has ended: the RM is told (`on_vm_exit`); False when the
        news is lost (the `loses_exits` quirk)."""
        if self.log is not None:
            self.log.vm_ended(vmid, exit_type, reason)
        if self.loses_exits:
            return False
        if self.on_vm_exit is not None:
            self.on_vm_exit(vmid, exit_type, reason)
        return True

    # -- the rest --------------------------------------------------------------
    def random_bytes(self, n: int) -> bytes:
        """Host entropy (the RM's /chosen/kaslr-seed)."""
        if not 0 <= n <= 4096:
            raise HypError(Error.ARGUMENT_SIZE, f"{n} random bytes")
        return secrets.token_bytes(n)
