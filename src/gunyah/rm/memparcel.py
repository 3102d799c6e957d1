"""Memory parcels in the resource manager: a VM shares, lends or donates ranges
of its memory to other VMs, they accept and release them, the owner reclaims
them, as quic/gunyah-resource-manager bf31a9a src/memparcel/memparcel.c does,
check for check and in its order (docs/abi.md section 9 for the RPC around it;
the wire layouts are gunyah.abi.memparcel).

What the RM asks of the hypervisor goes through `gunyah.rm.hyp.Hyp`: a lend
or donation takes the range out of the lender's stage 2 (`Hyp.unmap`) until
it is reclaimed (`Hyp.map` puts it back); an accept maps it into the acceptor.
The lender's ranges are checked with `Hyp.translate`: a range it has not
mapped, or not contiguously, is MEM_INVALID.

Bounded as the RM is: at most 512 entries a list, 64 parcels a VM
(MAX_MEMPARCEL_PER_VM), 2**20 regions a parcel (mem_region.c's region list),
and a physical range belongs to at most one parcel
(the RM moves it into the parcel's memory extent, and a second donation of
it fails), so the store never holds more regions than the VMs have memory.

Where this differs from the source: handles start at 1, as measured (the QEMU
build's first MEM_SHARE of a boot answered 1; memparcel.c's counter starts at
0 and the public source makes no parcel before the first request); an accept
that began contiguous and goes on region by region is refused, where the
source writes past its IPA list; and the model has no device memory to give,
so an I/O parcel's ranges are never found (MEM_INVALID).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field

from ..abi import memparcel as mp
from ..abi import rm
from ..abi.devicetree import PRIMARY_VM_ID
from .hyp import Hyp

Notification = tuple[int, int, bytes]  # (target VMID, notification message ID, payload)
Answer = tuple[int, bytes, list[Notification]]
Handler = Callable[[int, bytes], Answer]

OK = rm.OK
NORESOURCE = rm.ERROR_CODES["NORESOURCE"]
DENIED = rm.ERROR_CODES["DENIED"]
ARGUMENT_INVALID = rm.ERROR_CODES["ARGUMENT_INVALID"]
HANDLE_INVALID = rm.ERROR_CODES["HANDLE_INVALID"]
VALIDATE_FAILED = rm.ERROR_CODES["VALIDATE_FAILED"]
MEM_INVALID = rm.ERROR_CODES["MEM_INVALID"]
MEM_INUSE = rm.ERROR_CODES["MEM_INUSE"]
MEM_RELEASED = rm.ERROR_CODES["MEM_RELEASED"]
VMID_INVALID = rm.ERROR_CODES["VMID_INVALID"]

MAX_PARCELS_PER_VM = 64  # memparcel.c MAX_MEMPARCEL_PER_VM
# mem_region.c: a region list of at most 2**MAX_L1_BITS tables of 2**L2_TABLE_BITS
# regions (14 and 6); the region past them is DENIED
MAX_REGIONS_PER_PARCEL = 1 << (14 + 6)
FIRST_HANDLE = 1  # measured (the module docstring says how the source differs)
VMID_RM = 0xFF
VMID_DYNAMIC_BASE, VMID_DYNAMIC_END = 0x80, 0xBF  # include/rm_types.h
SIZE_2M = 2 << 20
# a VM's IPA allocator (platform/qemu/src/vm_memory.c vm_address_range_init):
# 36 bits of address space, less the device range (QEMU virt's devices, below
# its RAM); the primary VM's memory is mapped IPA == PA instead (is_mapped_direct)
SVM_ADDRESS_SPACE = 1 << 36
DEVICE_RANGE = (0, 0x40000000)
DIRECT_VMIDS = frozenset({PRIMARY_VM_ID})
SANITIZE_CHUNK = 1 << 16

STATE_INIT, STATE_SHARING, STATE_SHARED = "init", "sharing", "shared"  # memparcel_state_t


@dataclass
class _VmInfo:
    """vm_meminfo_t: one ACL entry's VM and what it has of the parcel."""

    vmid: int
    rights: int
    attr: int
    ipas: list[int] | None = None  # one per mapping, once accepting began
    alloc_count: int = 0
    contiguous: bool = False
    shared: bool = False
    mapped: bool = False


@dataclass
class Parcel:
    """A parcel as the RM holds it. `sgl` is the owner's ranges as the RM split
    them (IPA, size), `phys` the physical address of each; `accepted` maps each
    VM that has it mapped to the IPA it is mapped at (its first region)."""

    handle: int
    owner: int
    trans_type: str  # "share" | "lend" | "donate"
    label: int
    acl: list[tuple[int, int]]
    sgl: list[tuple[int, int]]
    accepted: dict[int, int]
    mem_type: int = mp.MEM_TYPE_NORMAL
    attrs: list[tuple[int, int]] = field(default_factory=list)  # (attr, vmid)
    phys: list[int] = field(default_factory=list)
    state: str = STATE_INIT
    sanitize_create: bool = False
    sanitize_reclaim: bool = False
    mem_info_tag: int = 0
    mem_info_tag_set: bool = False
    vms: dict[int, _VmInfo] = field(default_factory=dict, repr=False)

    @property
    def trans(self) -> int:
        return {v: k for k, v in mp.TRANS_NAMES.items()}[self.trans_type]

    @property
    def total_size(self) -> int:
        return sum(size for _, size in self.sgl)

    @property
    def share_count(self) -> int:
        return sum(1 for v in self.vms.values() if v.shared)


def addr_valid(addr: int) -> bool:
    """memparcel.c addr_valid: page aligned and below ADDR_LIMIT."""
    return 0 <= addr < mp.ADDR_LIMIT and addr % mp.PAGE_SIZE == 0


class _Reject(Exception):
    def __init__(self, error: int) -> None:
        self.error = error


class Parcels:
    """The RM's parcel store and its message handlers."""

    def __init__(self, hyp: Hyp) -> None:
        self.hyp = hyp
        self._parcels: dict[int, Parcel] = {}
        self._next_handle = FIRST_HANDLE
        self._accepted: dict[int, list[int]] = {}  # vmid -> handles, in the order accepted
        self._ranges: dict[int, _Ranges] = {}  # vmid -> IPA ranges allocated
        # Which VMs exist (vm_lookup) and which may be named in an ACL
        # (memparcel.c vmid_valid): the RM's VM table decides; the VM life
        # cycle sets this. Until then: the primary VM, the RM, dynamic VMIDs.
        self.vm_exists: Callable[[int], bool] = _default_vm_exists
        # Which VMs are READY (VM_INIT done, not started): MEM_NOTIFY SHARED
        # offers them the parcel instead of telling them. The life cycle sets it.
        self.vm_ready: Callable[[int], bool] = lambda vmid: False
        self._phys = _Ranges()  # every parcel's physical ranges

    # -- the interface the VM life cycle uses ----------------------------------------
    def handlers(self) -> dict[int, Handler]:
        return {
            mp.MEM_SHARE: self._creator(mp.TRANS_SHARE),
            mp.MEM_LEND: self._creator(mp.TRANS_LEND),
            mp.MEM_DONATE: self._creator(mp.TRANS_DONATE),
            mp.MEM_APPEND: self._append,
            mp.MEM_ACCEPT: self._accept,
            mp.MEM_RELEASE: self._release,
            mp.MEM_RECLAIM: self._reclaim,
            mp.MEM_NOTIFY: self._notify,
        }

    def get(self, handle: int) -> Parcel | None:
        return self._parcels.get(handle)

    def accept_for(self, handle: int, vmid: int, ipa: int) -> int:
        """The RM accepting a parcel on a VM's behalf, mapped contiguously at
        ipa, as vm_creation.c process_image_memparcel does for a VM's image
        (the debug build's form: the parcel's own transaction type, no ACL
        validation; sanitized at reclaim, the VM having been given it)."""
        p = self._parcels.get(handle)
        trans = p.trans if p is not None else mp.TRANS_LEND
        flags = mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_MAP_CONTIGUOUS | mp.ACCEPT_FLAG_SANITIZE
        size = p.total_size if p is not None else 0
        req = mp.AcceptRequest(handle, mp.MEM_TYPE_NORMAL, trans, flags, 0,
                               sgl=(mp.SglEntry(ipa, size),))  # fmt: skip
        try:
            self._do_accept(vmid, req)
        except _Reject as e:
            return e.error
        return OK

    def release_all(self, vmid: int) -> list[int]:
        """A VM's reset: every parcel it accepted released, the last accepted
        first (vm_reset_handle_release_memparcels); the handles, in that order."""
        return [handle for handle, _ in self._release_all(vmid)]

    def release_all_notifications(self, vmid: int) -> list[Notification]:
        """release_all, with the MEM_RELEASED the RM sends each parcel's owner."""
        return [note for _, note in self._release_all(vmid)]

    def _release_all(self, vmid: int) -> list[tuple[int, Notification]]:
        out = []
        while self._accepted.get(vmid):
            handle = self._accepted[vmid][-1]
            p = self._parcels[handle]
            try:
                self._do_release(vmid, handle, 0)
            except _Reject:  # not reached: what a VM accepted it can release
                self._accepted[vmid].pop()
                continue
            out.append((handle, self._owner_note(p, vmid, accepted=False)))
        return out

    # -- MEM_SHARE, MEM_LEND, MEM_DONATE: memparcel_create, memparcel_construct --------
    def _creator(self, trans: int) -> Handler:
        def create(caller: int, payload: bytes) -> Answer:
            try:
                req = mp.CreateRequest.decode(payload)
                handle = self._construct(caller, trans, req)
            except mp.RequestError as e:
                return e.error, b"", []
            except _Reject as e:
                return e.error, b"", []
            return OK, mp.encode_handle(handle), []

        return create

    def _construct(self, owner: int, trans: int, req: mp.CreateRequest) -> int:
        if not req.acl or not req.sgl:
            raise _Reject(ARGUMENT_INVALID)
        if trans == mp.TRANS_DONATE and len(req.acl) > 1:
            raise _Reject(ARGUMENT_INVALID)  # memory is donated to one VM
        if self._owned(owner) >= MAX_PARCELS_PER_VM:
            raise _Reject(DENIED)
        io = req.mem_type == mp.MEM_TYPE_IO
        if req.flags & mp.CREATE_FLAG_SANITIZE and io:
            raise _Reject(ARGUMENT_INVALID)
        # the RM numbers the parcel here: a request refused from now on has
        # used a handle all the same
        handle = self._allocate_handle()
        max_rights = mp.RIGHTS_RW if io else mp.RIGHTS_RWX
        default_attr = mp.ATTR_DEVICE if io else mp.ATTR_NORMAL
        vms: dict[int, _VmInfo] = {}
        for vmid, rights in req.acl:
            if vmid in vms:
                raise _Reject(ARGUMENT_INVALID)
            if not self._vmid_valid(vmid) or rights not in mp.VALID_RIGHTS:
                raise _Reject(ARGUMENT_INVALID)
            if io and rights & mp.RIGHTS_X:
                raise _Reject(ARGUMENT_INVALID)
            if trans == mp.TRANS_DONATE and rights != max_rights:
                raise _Reject(DENIED)  # a donation gives the other VM everything
            vms[vmid] = _VmInfo(vmid, rights, default_attr)
        # the owner is in the ACL of a share, and of nothing else
        if (trans == mp.TRANS_SHARE) != (owner in vms):
            raise _Reject(ARGUMENT_INVALID)
        seen: set[int] = set()
        for attr, vmid in req.attrs:
            if vmid in seen:
                raise _Reject(ARGUMENT_INVALID)
            seen.add(vmid)
            if attr not in mp.VALID_ATTRS or io != (attr == mp.ATTR_DEVICE):
                raise _Reject(ARGUMENT_INVALID)
            if trans == mp.TRANS_DONATE and attr != default_attr:
                raise _Reject(ARGUMENT_INVALID)
            if vmid not in vms:
                raise _Reject(VMID_INVALID)
            vms[vmid].attr = attr
        p = Parcel(handle, owner, mp.TRANS_NAMES[trans], req.label,
                   [(a.vmid, a.rights) for a in req.acl], [], {}, req.mem_type,
                   [(a.attr, a.vmid) for a in req.attrs],
                   sanitize_create=bool(req.flags & mp.CREATE_FLAG_SANITIZE), vms=vms)  # fmt: skip
        self._add_sgl(p, req.sgl, done=not req.flags & mp.CREATE_FLAG_APPEND)
        self._parcels[handle] = p
        return handle

    def _add_sgl(self, p: Parcel, sgl: tuple[mp.SglEntry, ...], done: bool) -> None:
        """add_sgl_to_mp: every range checked, then all taken or none. A share
        keeps the lender's mapping (with the rights its ACL entry gives it); a
        lend or donation takes the range out of the lender's stage 2."""
        found: list[tuple[int, int, int]] = []
        taken = _Ranges()
        for ipa, size in sgl:
            if not addr_valid(ipa) or not addr_valid(size):
                raise _Reject(ARGUMENT_INVALID)
            phys = self._lookup(p.owner, p.mem_type, ipa, size)
            if phys is None or self._phys.overlaps(phys, size) or taken.overlaps(phys, size):
                raise _Reject(MEM_INVALID)
            if len(p.sgl) + len(found) >= MAX_REGIONS_PER_PARCEL:
                raise _Reject(DENIED)
            taken.add(phys, size)
            found.append((ipa, size, phys))
        owner = p.vms.get(p.owner)
        self._take_from_owner(p, owner, found)
        for ipa, size, phys in found:
            if p.sanitize_create:
                self._zero(phys, size)
            p.sgl.append((ipa, size))
            p.phys.append(phys)
            self._phys.add(phys, size)
        if done:
            p.state = STATE_SHARING

    def _take_from_owner(self, p: Parcel, owner: _VmInfo | None,
                         found: list[tuple[int, int, int]]) -> None:  # fmt: skip
        """The lender's stage 2 without the ranges (a lend or donation), or
        with the rights its ACL entry gives it (a share). Where the
        hypervisor cannot carry that out (its page tables are full), every
        range goes back as it was and the request is MEM_INVALID, as
        add_sgl_to_mp answers a failed vm_memory_donate_extent."""
        keeps = mp.RIGHTS_RWX if owner is None else owner.rights  # a share's lender keeps
        done: list[tuple[int, int, int]] = []  # ranges out of the lender's map as it was
        try:
            for ipa, size, phys in found:
                if p.trans_type == "share" and keeps == mp.RIGHTS_RWX:
                    continue
                self.hyp.unmap(p.owner, ipa, size)
                done.append((ipa, size, phys))
                if p.trans_type == "share":
                    self.hyp.map(p.owner, ipa, phys, size, keeps)
        except ValueError:  # the hypervisor refused (Hyp.map, Hyp.unmap)
            for ipa, size, phys in reversed(done):
                self.hyp.unmap(p.owner, ipa, size)
                self.hyp.map(p.owner, ipa, phys, size, mp.RIGHTS_RWX)
            raise _Reject(MEM_INVALID) from None

    def _lookup(self, vmid: int, mem_type: int, ipa: int, size: int) -> int | None:
        """vm_memory_lookup: where the VM's own memory at [ipa, ipa+size) is.
        The model gives VMs no device memory, so an I/O range is never found."""
        if size == 0 or mem_type == mp.MEM_TYPE_IO:
            return None
        return self.hyp.translate(vmid, ipa, size)

    # -- MEM_APPEND: memparcel_append ------------------------------------------------
    def _append(self, caller: int, payload: bytes) -> Answer:
        try:
            req = mp.AppendRequest.decode(payload)
            if not req.sgl:
                raise _Reject(ARGUMENT_INVALID)
            p = self._parcels.get(req.handle)
            if p is None:
                raise _Reject(HANDLE_INVALID)
            if caller != p.owner or p.state != STATE_INIT:
                raise _Reject(DENIED)
            self._add_sgl(p, req.sgl, done=bool(req.flags & mp.APPEND_FLAG_DONE))
        except (mp.RequestError, _Reject) as e:
            return e.error, b"", []
        return OK, b"", []

    # -- MEM_ACCEPT: memparcel_handle_accept, memparcel_do_accept ---------------------
    def _accept(self, caller: int, payload: bytes) -> Answer:
        try:
            req = mp.AcceptRequest.decode(payload)
            reply = self._do_accept(caller, req)
        except (mp.RequestError, _Reject) as e:
            return e.error, b"", []
        # where the RM mapped it, when the request left that to the RM
        return OK, (reply.encode() if not req.sgl else b""), []

    def _do_accept(self, vmid: int, req: mp.AcceptRequest) -> mp.AcceptReply:
        p = self._parcels.get(req.handle)
        if p is None:
            raise _Reject(HANDLE_INVALID)
        if req.mem_type != p.mem_type or req.trans_type != p.trans:
            raise _Reject(ARGUMENT_INVALID)
        flags = req.flags
        if flags & mp.ACCEPT_FLAG_VALIDATE_SANITIZED and not p.sanitize_create:
            raise _Reject(VALIDATE_FAILED)
        if flags & mp.ACCEPT_FLAG_VALIDATE_LABEL and req.label != p.label:
            raise _Reject(VALIDATE_FAILED)
        if flags & mp.ACCEPT_FLAG_VALIDATE_ACL_ATTR and (
            [(a.vmid, a.rights) for a in req.acl] != p.acl
            or [(a.attr, a.vmid) for a in req.attrs] != p.attrs
        ):
            raise _Reject(VALIDATE_FAILED)
        if flags & mp.ACCEPT_FLAG_MAP_OTHER:
            raise _Reject(DENIED)  # only mapping into the caller is supported
        if req.map_vmid != 0:
            raise _Reject(ARGUMENT_INVALID)
        if not self.vm_exists(vmid):
            raise _Reject(VMID_INVALID)
        info = p.vms.get(vmid)
        if info is None:
            raise _Reject(VMID_INVALID)
        if vmid == p.owner or info.mapped:
            raise _Reject(DENIED)
        contiguous = False
        if flags & mp.ACCEPT_FLAG_MAP_CONTIGUOUS:
            if req.mem_type != mp.MEM_TYPE_NORMAL:
                raise _Reject(ARGUMENT_INVALID)
            if info.ipas is not None and not info.contiguous:
                raise _Reject(ARGUMENT_INVALID)
            contiguous = True
        elif info.ipas is not None and len(info.ipas) != len(p.sgl):
            # placed contiguously before, and now not: the RM's source goes on to
            # write past its one-entry IPA list here; refused instead
            raise _Reject(ARGUMENT_INVALID)
        if flags & mp.ACCEPT_FLAG_SANITIZE:
            if p.mem_type == mp.MEM_TYPE_IO or not info.rights & mp.RIGHTS_W:
                raise _Reject(ARGUMENT_INVALID)
            p.sanitize_reclaim = True  # as the RM: set even if the accept fails later
        mappings = 1 if contiguous else len(p.sgl)
        to_alloc = min(max(mappings - info.alloc_count, 0), mp.MAX_LIST_ENTRIES)
        resp_flags = 0
        if not req.sgl:
            if info.alloc_count + to_alloc < mappings:
                resp_flags |= mp.ACCEPT_RESP_FLAG_INCOMPLETE
        elif len(req.sgl) <= to_alloc:
            to_alloc = len(req.sgl)
        else:
            raise _Reject(ARGUMENT_INVALID)
        fresh = info.ipas is None
        if info.ipas is None:
            info.ipas, info.contiguous = [0] * mappings, contiguous
        allocated: list[tuple[int, int]] = []
        try:
            resp = self._alloc_ipas(vmid, p, info, req, to_alloc, contiguous, allocated)
            if flags & mp.ACCEPT_FLAG_DONE:
                if info.alloc_count + len(allocated) != mappings:
                    raise _Reject(ARGUMENT_INVALID)  # every IPA first, then the mapping
                for ipa, phys, size in self._placements(p, info):
                    self.hyp.map(vmid, ipa, phys, size, info.rights)
                info.mapped = True
                p.accepted[vmid] = info.ipas[0]
        except _Reject:
            for base, size in allocated:
                self._free_ipa(vmid, base, size)
            if fresh:
                info.ipas = None
            raise
        reply = mp.AcceptReply(tuple(resp), resp_flags)
        if info.mapped and p.trans_type == "donate":
            # the acceptor owns it now: the parcel is gone (the lender's mapping
            # went when it was donated)
            self._delete(p)
            return reply
        info.alloc_count += len(allocated)
        if not info.shared:
            info.shared = True
            p.state = STATE_SHARED
            self._accepted.setdefault(vmid, []).append(p.handle)
        return reply

    def _alloc_ipas(self, vmid: int, p: Parcel, info: _VmInfo, req: mp.AcceptRequest,
                    count: int, contiguous: bool,
                    allocated: list[tuple[int, int]]) -> list[mp.SglEntry]:  # fmt: skip
        """The IPAs the acceptor gets, the ones it asked for or the RM's choice."""
        resp: list[mp.SglEntry] = []
        if count == 0:
            return resp
        assert info.ipas is not None
        if contiguous:
            want = None
            if len(req.sgl) == 1:
                ipa, size = req.sgl[0]
                if not addr_valid(ipa) or size != p.total_size:
                    raise _Reject(ARGUMENT_INVALID)
                want = ipa
            base = self._alloc_ipa(vmid, want, None, p.total_size)
            if base is None:
                raise _Reject(NORESOURCE)
            allocated.append((base, p.total_size))
            info.ipas[0] = base
            resp.append(mp.SglEntry(base, p.total_size))
            return resp
        for j in range(count):
            i = info.alloc_count + j
            size, phys = p.sgl[i][1], p.phys[i]
            want = None
            if req.sgl:
                ipa, asked = req.sgl[j]
                if not addr_valid(ipa) or asked != size:
                    raise _Reject(ARGUMENT_INVALID)
                want = ipa
            base = self._alloc_ipa(vmid, want, phys, size)
            if base is None:
                raise _Reject(NORESOURCE)
            allocated.append((base, size))
            info.ipas[i] = base
            resp.append(mp.SglEntry(base, size))
        return resp

    @staticmethod
    def _placements(p: Parcel, info: _VmInfo) -> list[tuple[int, int, int]]:
        """(IPA, phys, size) of each region in the acceptor (vm_info_get_ipa)."""
        assert info.ipas is not None
        out, offset = [], 0
        for i, ((_, size), phys) in enumerate(zip(p.sgl, p.phys, strict=True)):
            ipa = info.ipas[0] + offset if info.contiguous else info.ipas[i]
            out.append((ipa, phys, size))
            offset += size
        return out

    # -- MEM_RELEASE: memparcel_release, memparcel_do_release -------------------------
    def _release(self, caller: int, payload: bytes) -> Answer:
        try:
            req = mp.HandleRequest.decode(payload)
            self._do_release(caller, req.handle, req.flags)
        except (mp.RequestError, _Reject) as e:
            return e.error, b"", []
        return OK, b"", []

    def _do_release(self, vmid: int, handle: int, flags: int) -> None:
        p = self._parcels.get(handle)
        if p is None:
            raise _Reject(HANDLE_INVALID)
        if not self.vm_exists(vmid):
            raise _Reject(VMID_INVALID)
        info = p.vms.get(vmid)
        if info is None:
            raise _Reject(HANDLE_INVALID)
        if vmid == p.owner:
            raise _Reject(DENIED)
        if not info.shared:
            raise _Reject(MEM_RELEASED)
        if flags & mp.RELEASE_FLAG_SANITIZE:
            if p.mem_type == mp.MEM_TYPE_IO or not info.rights & mp.RIGHTS_W:
                raise _Reject(ARGUMENT_INVALID)
            p.sanitize_reclaim = True
        if info.mapped:
            for ipa, _, size in self._placements(p, info):
                self.hyp.unmap(vmid, ipa, size)
        if info.ipas is not None:
            if info.contiguous:
                if info.alloc_count:
                    self._free_ipa(vmid, info.ipas[0], p.total_size)
            else:
                for i in range(info.alloc_count):
                    self._free_ipa(vmid, info.ipas[i], p.sgl[i][1])
        info.ipas, info.alloc_count = None, 0
        info.contiguous = info.shared = info.mapped = False
        p.accepted.pop(vmid, None)
        if p.share_count == 0:
            p.state = STATE_SHARING
        self._forget_accepted(vmid, handle)

    # -- MEM_RECLAIM: memparcel_reclaim, memparcel_do_reclaim ---------------------------
    def _reclaim(self, caller: int, payload: bytes) -> Answer:
        try:
            req = mp.HandleRequest.decode(payload)
            p = self._parcels.get(req.handle)
            if p is None:
                raise _Reject(HANDLE_INVALID)
            if caller != p.owner:
                raise _Reject(DENIED)
            if p.state == STATE_SHARED:
                raise _Reject(MEM_INUSE)  # some VM still has it accepted
            if req.flags & mp.RECLAIM_FLAG_SANITIZE:
                if p.mem_type == mp.MEM_TYPE_IO:
                    raise _Reject(ARGUMENT_INVALID)
                p.sanitize_reclaim = True
        except (mp.RequestError, _Reject) as e:
            return e.error, b"", []
        owner = p.vms.get(p.owner)
        for (ipa, size), phys in zip(p.sgl, p.phys, strict=True):
            if p.sanitize_reclaim:
                self._zero(phys, size)
            if p.trans_type != "share":
                self.hyp.map(p.owner, ipa, phys, size, mp.RIGHTS_RWX)
            elif owner is not None and owner.rights != mp.RIGHTS_RWX:
                self.hyp.unmap(p.owner, ipa, size)
                self.hyp.map(p.owner, ipa, phys, size, mp.RIGHTS_RWX)
        self._delete(p)
        return OK, b"", []

    # -- MEM_NOTIFY: memparcel_notify -------------------------------------------------
    def _notify(self, caller: int, payload: bytes) -> Answer:
        notes: list[Notification] = []
        try:
            req = mp.NotifyRequest.decode(payload)
            p = self._parcels.get(req.handle)
            if p is None:
                raise _Reject(HANDLE_INVALID)
            if p.mem_info_tag_set and p.mem_info_tag != req.mem_info_tag:
                raise _Reject(ARGUMENT_INVALID)
            if req.flags == mp.NOTIFY_FLAG_SHARED:
                error = self._notify_shared(p, caller, req, notes)
                return error, b"", notes
            if req.flags in (mp.NOTIFY_FLAG_RELEASED, mp.NOTIFY_FLAG_ACCEPTED):
                notes.append(self._owner_note(p, caller, req.flags == mp.NOTIFY_FLAG_ACCEPTED))
            elif req.flags == mp.NOTIFY_FLAG_RECALL:
                if caller != p.owner:
                    raise _Reject(DENIED)
                recall = mp.RecallNotification(p.handle, p.mem_info_tag).encode()
                notes += [(v, mp.NOTIFY_MEM_RECALL, recall) for v in self._vmid_list(p, req)]
            else:
                raise _Reject(ARGUMENT_INVALID)
        except (mp.RequestError, _Reject) as e:
            return e.error, b"", []
        return OK, b"", notes

    def _notify_shared(self, p: Parcel, caller: int, req: mp.NotifyRequest,
                       notes: list[Notification]) -> int:  # fmt: skip
        """memparcel_notify_shared: MEM_SHARED to each VM named, but a VM that
        is READY is offered the parcel by the RM (vm_creation_process_memparcel,
        which takes only parcels its configuration names by label: none here),
        and its owner told; the last such answer is the reply's error."""
        if caller != p.owner:
            raise _Reject(DENIED)
        targets = self._vmid_list(p, req)
        if not p.mem_info_tag_set:
            p.mem_info_tag, p.mem_info_tag_set = req.mem_info_tag, True
        note = mp.SharedNotification(
            p.handle, p.mem_type, p.trans, 1 if p.sanitize_create else 0, p.owner, p.label,
            p.mem_info_tag, tuple(mp.AclEntry(*a) for a in p.acl),
            tuple(size for _, size in p.sgl[: mp.MAX_LIST_ENTRIES]),
            tuple(mp.AttrEntry(*a) for a in p.attrs)).encode()  # fmt: skip
        error = OK
        for vmid in targets:
            if self.vm_ready(vmid):
                try:
                    notes.append(self._owner_note(p, vmid, accepted=True))
                    error = OK
                except _Reject as e:
                    error = e.error
            else:
                notes.append((vmid, mp.NOTIFY_MEM_SHARED, note))
        return error

    def _vmid_list(self, p: Parcel, req: mp.NotifyRequest) -> list[int]:
        """get_vmid_list: the VMs a MEM_NOTIFY names, each a VM in the ACL."""
        vmids = req.vmids()
        if len(vmids) > len(p.acl):
            raise _Reject(ARGUMENT_INVALID)
        for vmid in vmids:
            if not self.vm_exists(vmid):
                raise _Reject(VMID_INVALID)
            if vmid not in p.vms:
                raise _Reject(ARGUMENT_INVALID)
        return vmids

    def _owner_note(self, p: Parcel, vmid: int, accepted: bool) -> Notification:
        """memparcel_notify_owner: MEM_ACCEPTED or MEM_RELEASED to the owner,
        when it says what is so of vmid."""
        info = p.vms.get(vmid)
        if info is None:
            raise _Reject(HANDLE_INVALID)
        if accepted != info.shared:
            raise _Reject(MEM_INUSE if info.shared else MEM_RELEASED)
        msg = mp.NOTIFY_MEM_ACCEPTED if accepted else mp.NOTIFY_MEM_RELEASED
        return p.owner, msg, mp.OwnerNotification(p.handle, vmid, p.mem_info_tag).encode()

    # -- bookkeeping ---------------------------------------------------------------
    def _owned(self, vmid: int) -> int:
        return sum(1 for p in self._parcels.values() if p.owner == vmid)

    def _allocate_handle(self) -> int:
        """allocate_handle: the next number no parcel holds, never 0xFFFFFFFF."""
        while True:
            handle = self._next_handle
            self._next_handle = (self._next_handle + 1) & 0xFFFFFFFF
            if handle not in self._parcels and handle != mp.INVALID_HANDLE:
                return handle

    def _vmid_valid(self, vmid: int) -> bool:
        return vmid in (PRIMARY_VM_ID, VMID_RM) or self.vm_exists(vmid)

    def _forget_accepted(self, vmid: int, handle: int) -> None:
        handles = self._accepted.get(vmid, [])
        if handle in handles:
            handles.remove(handle)

    def _delete(self, p: Parcel) -> None:
        """delete_memparcel: the parcel and its hold on its ranges gone."""
        del self._parcels[p.handle]
        for (_, size), phys in zip(p.sgl, p.phys, strict=True):
            self._phys.remove(phys, size)
        for vmid in p.vms:
            self._forget_accepted(vmid, p.handle)

    def _zero(self, phys: int, size: int) -> None:
        """sanitise_region: the range zeroed, a bounded chunk at a time."""
        chunk = bytes(min(size, SANITIZE_CHUNK))
        for at in range(phys, phys + size, SANITIZE_CHUNK):
            self.hyp.write_phys(at, chunk[: phys + size - at])

    def _alloc_ipa(self, vmid: int, ipa: int | None, phys: int | None, size: int) -> int | None:
        """alloc_as_range: the IPA range [ipa, ipa+size) in the VM's allocator,
        or the first free one (2 MiB aligned for 2 MiB or more) when ipa is None;
        None where it is not free. The primary VM's memory is mapped IPA == PA."""
        if vmid in DIRECT_VMIDS:
            return phys if phys is not None and ipa in (None, phys) else None
        ranges = self._ranges.setdefault(vmid, _Ranges([DEVICE_RANGE]))
        if size < mp.PAGE_SIZE or size % mp.PAGE_SIZE:
            return None
        if ipa is None:
            align = SIZE_2M if size >= SIZE_2M else mp.PAGE_SIZE
            ipa = ranges.first_fit(size, align, SVM_ADDRESS_SPACE)
            if ipa is None:
                return None
        elif ipa % mp.PAGE_SIZE or ipa + size > SVM_ADDRESS_SPACE or ranges.overlaps(ipa, size):
            return None
        ranges.add(ipa, size)
        return ipa

    def _free_ipa(self, vmid: int, ipa: int, size: int) -> None:
        if vmid not in DIRECT_VMIDS and vmid in self._ranges:
            self._ranges[vmid].remove(ipa, size)


class _Ranges:
    """Disjoint [start, end) ranges, sorted: overlap checks in log time."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self._starts: list[int] = []
        self._ends: list[int] = []
        for start, end in ranges or []:
            self.add(start, end - start)

    def overlaps(self, start: int, size: int) -> bool:
        i = bisect.bisect_left(self._starts, start + size)
        return i > 0 and self._ends[i - 1] > start

    def add(self, start: int, size: int) -> None:
        i = bisect.bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._ends.insert(i, start + size)

    def remove(self, start: int, size: int) -> None:
        i = bisect.bisect_left(self._starts, start)
        if i < len(self._starts) and self._starts[i] == start and self._ends[i] == start + size:
            del self._starts[i], self._ends[i]

    def first_fit(self, size: int, align: int, limit: int) -> int | None:
        at = 0
        for start, end in zip([*self._starts, limit], [*self._ends, limit], strict=True):
            at = -(-at // align) * align
            if at + size <= start:
                return at if at + size <= limit else None
            at = max(at, end)
        return None


def _default_vm_exists(vmid: int) -> bool:
    return vmid in (PRIMARY_VM_ID, VMID_RM) or VMID_DYNAMIC_BASE <= vmid < VMID_DYNAMIC_END
