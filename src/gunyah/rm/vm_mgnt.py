"""Secondary VMs' life cycle as the resource manager runs it: allocate,
configure the image, init, start, stop, reset, deallocate, and the queries
about them (quic/gunyah-resource-manager bf31a9a: src/vm_mgnt/vm_mgnt.c,
src/vm_creation/vm_creation.c, src/vm_creation/second_vm.c,
src/vm_config/vm_config.c, src/vm_config/vm_get_resources.c). Each handler
makes the RM's checks in the RM's order and answers its error; the life
cycle as measured on the QEMU build is docs/real-gunyah.md, "hosting a
second VM".

Where the real RM would crash (an assert on a VMID it does not know, a NULL
VM config on reset) this one answers the error the neighbouring checks
answer, and says so where it does.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from ..abi import rm
from ..abi.devicetree import PRIMARY_VM_ID
from . import vm_config
from .hyp import Hyp, rm_error_from_hyp

Reply = tuple[int, bytes]

VMID_RM = 0xFF
VMID_DYNAMIC_BASE, VMID_DYNAMIC_END = 0x80, 0xBF  # include/rm_types.h
SECONDARY_VMIDS = 0xFFFFFFF0  # platform/qemu/src/platform_qemu.c: VMIDs 4..31 may be asked for
AUTH_NONE, AUTH_PLATFORM, AUTH_ANDROID = 0, 1, 2  # include/rm_types.h vm_auth_type_t
VM_STOP_FLAG_FORCE = 1
MAX_CRASH_MSG = 192  # include/vm_mgnt.h VM_MAX_CRASH_MSG_LEN
DTB_BUFFER = 16 << 10  # vm_creation.c MAX_DTB_ALLOC_SIZE: the RM's own scratch for the rewrite
RIGHTS_RWX = 7

# Virqs the RM gives a VM (src/irq_manager/irq_manager.c irq_manager_vm_init:
# a VM's own from 960 up; arch/gicv3/src/irq_gic.c: SPIs 32..1019 only)
VIRQ_ALLOC_BASE = 960
SPI_FIRST, SPI_LAST = 32, 1019
# include/guest_rights.h CAP_RIGHTS_DOORBELL_SEND, _RECEIVE
DOORBELL_SEND, DOORBELL_RECEIVE = 0x1, 0x2
RESOURCE_DOORBELL_SRC = 0  # include/vm_resource_msg.h RSC_DOORBELL_SRC: the Linux series' BELL_TX

S = rm.VM_STATE
E = rm.ERROR_CODES
CONFIG_IMAGE = struct.Struct("<HHIQQQQ")  # vm_config_image_req_t, 40 bytes
U64 = (1 << 64) - 1


class Parcel(Protocol):
    """A memory parcel as the parcel service keeps it."""

    handle: int
    owner: int
    trans_type: str  # "share", "lend" or "donate"
    label: int
    acl: list[tuple[int, int]]  # (vmid, rights)
    sgl: list[tuple[int, int]]  # (owner IPA, size)
    phys: list[int]  # each sgl range's physical address (one piece each)
    accepted: dict[int, int]  # vmid -> the IPA it is mapped at there


class Parcels(Protocol):
    """What VM management asks of the parcel service (src/gunyah/rm/memparcel.py)."""

    def get(self, handle: int) -> Parcel | None: ...

    def accept_for(self, handle: int, vmid: int, ipa: int) -> int:
        """Map the parcel into the VM at ipa (through Hyp); the RM error."""

    def release_all(self, vmid: int) -> list[int]:
        """Release every parcel the VM accepted; their handles."""


@dataclass
class GuestVm:
    """A VM this RM manages: vm_t, the parts the life cycle uses."""

    vmid: int
    owner: int
    state: int = S["LOAD"]
    os_state: int = 0
    app_status: int = 0
    name: bytes = b""
    uri: bytes = b""
    guid: bytes = bytes(16)
    sign_auth: bytes = b"N/A"
    peers: list[int] = field(default_factory=list)
    crash_msg: bytes = b""
    # VM_CONFIG_IMAGE
    configured: bool = False  # vm->vm_config allocated
    auth: int = AUTH_NONE
    handle: int = 0
    mem_size: int = 0
    image_offset: int = 0
    dt_offset: int = 0
    dt_size: int = 0
    # VM_INIT
    config: vm_config.VmConfig | None = None
    created: bool = False  # the hypervisor holds the VM
    vcpus: list[tuple[int, int]] = field(default_factory=list)  # (cap ID, virq) by index
    virqs: set[int] = field(default_factory=set)  # the VM's own virqs mapped (irq_manager)
    bells: list[Bell] = field(default_factory=list)

    @property
    def no_shutdown(self) -> bool:
        return self.config is not None and self.config.no_shutdown

    @property
    def no_reset(self) -> bool:
        return self.config is not None and self.config.no_reset


@dataclass(frozen=True)
class Bell:
    """A doorbell the RM made for a VM that receives it (struct
    vdevice_doorbell): the VM's cap to it, its owner's (None where its peer
    was named, not the default), the virq bound in the VM."""

    config: vm_config.DoorbellConfig
    cap_id: int
    owner_cap: int | None
    irq: vm_config.Interrupt


def vmid_of(payload: bytes) -> int:
    return payload[0] | payload[1] << 8


class VmManager:
    """The VM management handlers of one RM, for its one RPC client (the
    primary VM). `notify` sends a notification to the client; `after`
    says it goes out after the reply to the request being answered."""

    def __init__(self, client: int, vms: dict[int, Any], hyp: Hyp, parcels: Parcels,
                 notify: Callable[[int, bytes, bool], None]) -> None:  # fmt: skip
        self.client, self.vms, self.hyp, self.parcels = client, vms, hyp, parcels
        self.notify = notify
        self.free_dynamic = (1 << (VMID_DYNAMIC_END - VMID_DYNAMIC_BASE)) - 1
        self.free_secondary = SECONDARY_VMIDS
        self.stopping: set[int] = set()
        hyp.on_vm_exit = self.on_vm_exit

    def handlers(self) -> dict[int, Callable[[bytes], Reply]]:
        ids = rm.MESSAGE_IDS
        return {
            ids["VM_ALLOCATE"]: self.allocate,
            ids["VM_DEALLOCATE"]: self.deallocate,
            ids["VM_CONFIG_IMAGE"]: self.config_image,
            ids["VM_INIT"]: self.init,
            ids["VM_START"]: self.start,
            ids["VM_STOP"]: self.stop,
            ids["VM_RESET"]: self.reset,
            ids["VM_GET_HYP_RESOURCES"]: self.get_hyp_resources,
        }

    def guest(self, vmid: int) -> GuestVm | None:
        vm = self.vms.get(vmid)
        return vm if isinstance(vm, GuestVm) else None

    def peers_of(self, vmid: int) -> list[int]:
        """VM_GET_PEERS: the VMs registered as the client's peers, in order."""
        return [v.vmid for v in self.vms.values() if isinstance(v, GuestVm) and vmid in v.peers]

    # -- notifications (vm_mgnt_send_state, vm_mgnt_send_exited) -----------------
    def send_state(self, vm: GuestVm, after: bool = False) -> None:
        """VM_STATUS to the VM's peers that run and talk RPC: the client, while
        it is registered as one (from allocation until the reset completes)."""
        if self.client in vm.peers:
            payload = rm.encode_notification("NOTIFY_VM_STATUS", {
                "vmid": vm.vmid, "vm_state": vm.state, "os_state": vm.os_state,
                "app_status": vm.app_status})  # fmt: skip
            self.notify(rm.MESSAGE_IDS["NOTIFY_VM_STATUS"], payload, after)

    def send_exited(self, vm: GuestVm, exit_type: int, reason: int) -> None:
        payload = rm.encode_notification(
            "NOTIFY_VM_EXITED", {"vmid": vm.vmid, "exit_type": exit_type}, [{"word": reason}]
        )
        self.notify(rm.MESSAGE_IDS["NOTIFY_VM_EXITED"], payload, False)

    def set_state(self, vm: GuestVm, state: int, after: bool = False) -> None:
        vm.state = state
        self.send_state(vm, after)

    def handle_exit(self, vm: GuestVm) -> None:
        """vm_config_handle_exit: the VM's vCPUs stop."""
        if vm.created:
            self.hyp.vm_stop(vm.vmid)

    # -- VM_ALLOCATE, VM_DEALLOCATE -----------------------------------------------
    def allocate(self, payload: bytes) -> Reply:
        if self.client != PRIMARY_VM_ID:
            return E["DENIED"], b""
        if len(payload) != 4:
            return E["MSG_INVALID"], b""
        vmid, picked = vmid_of(payload), False
        if vmid == 0:
            free = self.free_dynamic
            if free:
                bit = (free & -free).bit_length() - 1
                self.free_dynamic &= ~(1 << bit)
                vmid, picked = VMID_DYNAMIC_BASE + bit, True
        elif vmid < 64 and self.free_secondary >> vmid & 1:
            self.free_secondary &= ~(1 << vmid)
        else:
            vmid = 0
        if vmid == 0:
            return E["NORESOURCE"], b""
        self.vms[vmid] = GuestVm(vmid, self.client, peers=[self.client])
        return rm.OK, rm.encode_reply("VM_ALLOCATE", {"vmid": vmid}) if picked else b""

    def deallocate(self, payload: bytes) -> Reply:
        if len(payload) != 4:
            return E["MSG_INVALID"], b""
        vmid = vmid_of(payload)
        vm = self.vms.get(vmid)
        if vm is None:
            return E["VMID_INVALID"], b""  # the real RM asserts here
        if getattr(vm, "owner", None) != self.client or not isinstance(vm, GuestVm):
            return E["DENIED"], b""
        if vm.state not in (S["LOAD"], S["RESET"]):
            return E["VM_STATE"], b""
        del self.vms[vmid]
        if vmid >= VMID_DYNAMIC_BASE:
            self.free_dynamic |= 1 << (vmid - VMID_DYNAMIC_BASE)
        else:
            self.free_secondary |= 1 << vmid
        return rm.OK, b""

    def _owned(self, payload: bytes, size: int, not_owner: int) -> GuestVm | int:
        """The checks most requests start with: the payload's length, a VMID
        the RM knows (its low 16 bits first), the caller its owner (else
        `not_owner`, which differs by request)."""
        if len(payload) != size:
            return E["MSG_INVALID"]
        vm = self.vms.get(vmid_of(payload))
        if vm is None:
            return E["VMID_INVALID"]
        if not isinstance(vm, GuestVm) or vm.owner != self.client:
            return not_owner
        return vm

    # -- VM_CONFIG_IMAGE (vm_creation.c, second_vm.c) -------------------------------
    def config_image(self, payload: bytes) -> Reply:
        if self.client != PRIMARY_VM_ID:
            return E["DENIED"], b""
        if len(payload) != CONFIG_IMAGE.size:
            return E["MSG_INVALID"], b""
        _, auth, handle, img_off, img_size, dt_off, dt_size = CONFIG_IMAGE.unpack(payload)
        vm = self._owned(payload, CONFIG_IMAGE.size, E["DENIED"])
        if isinstance(vm, int):
            return vm, b""
        if vm.state not in (S["LOAD"], S["RESET"]):
            return E["VM_STATE"], b""
        error = self._config(vm, auth, handle, img_off, img_size, dt_off, dt_size)
        if error:
            vm.state = S["INIT_FAILED"]
        else:
            vm.state = S["AUTH"] if auth == AUTH_PLATFORM else S["INIT"]
        self.send_state(vm)
        return error, b""

    def _config(self, vm: GuestVm, auth: int, handle: int, img_off: int, img_size: int,
                dt_off: int, dt_size: int) -> int:  # fmt: skip
        parcel = self.parcels.get(handle)
        if parcel is None or all(v != vm.vmid for v, _ in parcel.acl):
            return E["MEM_INVALID"]  # memparcel_lookup_by_target_vmid
        vm.handle, vm.mem_size = handle, sum(size for _, size in parcel.sgl)
        if img_off + img_size > min(U64, vm.mem_size) or dt_off + dt_size > min(U64, vm.mem_size):
            return E["ARGUMENT_INVALID"]
        vm.image_offset, vm.dt_offset, vm.dt_size = img_off, dt_off, dt_size
        vm.configured = True
        if auth not in (AUTH_NONE, AUTH_PLATFORM, AUTH_ANDROID):
            return E["ARGUMENT_INVALID"]
        vm.auth = auth
        return rm.OK

    # -- the VM's tree in its parcel --------------------------------------------------
    def _phys(self, vm: GuestVm, offset: int, size: int) -> int | None:
        """Where [offset, offset+size) of the image parcel is, if in one piece:
        from the parcel's own ranges (the RM maps the parcel's memory extent,
        map_dtb), not the owner's stage 2, which a lend has taken it out of."""
        parcel = self.parcels.get(vm.handle)
        if parcel is None or size <= 0:
            return None
        start = 0
        for (_, length), phys in zip(parcel.sgl, parcel.phys, strict=True):
            if start <= offset and offset + size <= start + length:
                return phys + offset - start
            start += length
        return None

    def _read_dt(self, vm: GuestVm) -> vm_config.Tree | None:
        """map_dtb, then the blob read: a header libfdt accepts, a tree that
        fits the region, and this RM's bounds."""
        if vm.dt_size == 0 or vm.dt_offset > vm.mem_size or vm.dt_size > vm.mem_size - vm.dt_offset:
            return None
        head_at = self._phys(vm, vm.dt_offset, min(vm.dt_size, 40))
        head = None if head_at is None else self.hyp.read_phys(head_at, min(vm.dt_size, 40))
        if head is None or len(head) < 40:
            return None
        total = int.from_bytes(head[4:8], "big")
        if total > vm.dt_size or total > vm_config.MAX_DT_SIZE or total < 40:
            return None
        at = self._phys(vm, vm.dt_offset, total)
        blob = None if at is None else self.hyp.read_phys(at, total)
        return None if blob is None or len(blob) != total else vm_config.load(blob)

    # -- VM_INIT (second_vm.c vm_creation_init) ---------------------------------------
    def init(self, payload: bytes) -> Reply:
        if self.client != PRIMARY_VM_ID:
            return E["DENIED"], b""
        if len(payload) != 4 or payload[2:4] != b"\0\0":
            return E["MSG_INVALID"], b""
        vm = self._owned(payload, 4, E["DENIED"])
        if isinstance(vm, int):
            return vm, b""
        if vm.state != S["INIT"]:
            return E["VM_STATE"], b""
        error = self._init(vm)
        self.set_state(vm, S["INIT_FAILED"] if error else S["READY"])
        return error, b""

    def _init(self, vm: GuestVm) -> int:
        tree = self._read_dt(vm)
        cfg = None if tree is None else vm_config.parse(tree)
        if cfg is None:
            return E["MEM_INVALID"]  # the tree unmapped, unreadable or refused
        # vm_config_update_parsed: the memory range, then the VM's IDs and
        # attributes (handle_ids), then what an untrusted config may not ask
        if cfg.size_min > cfg.size_max:
            return E["ARGUMENT_INVALID"]
        vm.config = cfg  # no-reset and no-shutdown hold from here, even if INIT fails
        vm.name = cfg.image_name.encode("latin-1")
        vm.uri = cfg.uri.encode("latin-1")
        if cfg.guid is not None:
            vm.guid = cfg.guid
        if cfg.crash_fatal or cfg.is_direct:
            return E["ARGUMENT_INVALID"]
        self.hyp.vm_create(vm.vmid, vm.owner)
        vm.created = True
        # vm_config_create_vdevices: handle_vcpu
        if not 0 < len(cfg.cpus) <= vm_config.MAX_CORES or not self._schedulable(cfg):
            return E["NORESOURCE"]
        self.hyp.add_vmmio(vm.vmid, vm_config.VMMIO_BASE, vm_config.VMMIO_SIZE)
        vm.vcpus = [self.hyp.vcpu_create(vm.vmid, i, vm.owner) for i in range(len(cfg.cpus))]
        # the vGIC where the VM's tree puts it, else where the rewrite will (vm_config.rewrite)
        gicd = vm_config.GICD_BASE if cfg.gicd is None else cfg.gicd
        gicr = vm_config.GICR_BASE if cfg.gicr is None else cfg.gicr
        stride = cfg.gicr_stride or vm_config.GICR_SIZE
        self.hyp.add_vgic(vm.vmid, gicd, gicr, stride, len(cfg.cpus))
        return self._doorbells(vm, cfg)

    def _doorbells(self, vm: GuestVm, cfg: vm_config.VmConfig) -> int:
        """handle_doorbell, for each doorbell the VM receives, in the tree's
        order: its virq (the one its `interrupts` names, which must be an SPI
        not mapped yet; else the first free from 960), then the doorbell
        with the VM's cap (receive) and, for peer-default, its owner's
        (send, and receive with source-can-clear: vm_config.c
        configure_doorbell_with_peer). A peer named by `peer` is one this
        RM never finds: the doorbell is made for the VM alone, as the RM
        makes it for a peer that does not exist yet. Any failure fails
        VM_INIT with NORESOURCE (second_vm.c). A doorbell-source (the VM
        rings its owner) is read and checked but not made."""
        for d in cfg.doorbells:
            if d.source:
                continue
            irq = d.irq
            if irq is None:
                free = (i for i in range(VIRQ_ALLOC_BASE, SPI_LAST + 1) if i not in vm.virqs)
                number = next(free, None)
                if number is None:
                    return E["NORESOURCE"]
                irq = vm_config.Interrupt(number, cpu_local=False, edge=True)  # virq_edge
            elif not SPI_FIRST <= irq.irq <= SPI_LAST or irq.irq in vm.virqs:
                return E["NORESOURCE"]  # map_virq: not global, or mapped already
            sender = vm.owner if d.peer_default else None
            rights = DOORBELL_SEND | (DOORBELL_RECEIVE if d.source_can_clear else 0)
            try:
                mine, theirs = self.hyp.doorbell_create(vm.vmid, irq.irq, sender, rights)
            except ValueError:
                return E["NORESOURCE"]
            vm.virqs.add(irq.irq)
            vm.bells.append(Bell(d, mine, theirs, irq))
        return rm.OK

    @staticmethod
    def _schedulable(cfg: vm_config.VmConfig) -> bool:
        """handle_vcpu: a proxy-scheduled VM runs at the lowest priority; any
        other untrusted VM must ask for a priority below its owner's (an
        offset below 0, within the scheduler's 0..63 from the owner's 32)
        and a timeslice within 100 us .. 100 ms."""
        if cfg.affinity == "proxy":
            return True
        return -32 <= cfg.sched_priority < 0 and 100 <= cfg.sched_timeslice <= 100_000

    # -- VM_START (vm_mgnt.c, vm_creation_process_resource) -----------------------------
    def start(self, payload: bytes) -> Reply:
        vm = self._owned(payload, 4, E["DENIED"])
        if isinstance(vm, int):
            return vm, b""
        if vm.state != S["READY"]:
            return E["VM_STATE"], b""
        error = self._start(vm)
        self.set_state(vm, S["INIT_FAILED"] if error else S["RUNNING"])
        return error, b""

    def _start(self, vm: GuestVm) -> int:
        cfg = vm.config
        assert cfg is not None
        if not self._process_resource(vm, cfg):
            return E["NORESOURCE"]
        # vm_firmware_vm_start: an Android VM's firmware is mandatory, and
        # copying it is refused until the firmware milestone, which this RM
        # never reaches; other VMs start at the image, every boot vCPU
        if vm.auth == AUTH_ANDROID:
            return E["DENIED"]
        entry, context = cfg.base + vm.image_offset, cfg.base + vm.dt_offset
        for i, cpu in enumerate(cfg.cpus):
            if cpu.boot:
                try:
                    self.hyp.vcpu_poweron(vm.vmid, i, entry, context)
                except ValueError as refused:  # vm_firmware_vm_start_default's reply
                    return rm_error_from_hyp(refused)
        return rm.OK

    def _process_resource(self, vm: GuestVm, cfg: vm_config.VmConfig) -> bool:
        """vm_creation_process_resource: the image parcel accepted at the
        VM's memory base, then its tree read again and rewritten in place."""
        if self.parcels.accept_for(vm.handle, vm.vmid, cfg.base) != rm.OK:
            return False
        # process_dtb: the tree read again and rewritten in place
        tree = self._read_dt(vm)
        if tree is None:
            return False
        bells = tuple(
            vm_config.DoorbellNode(b.config.generate or vm_config.DOORBELL_GENERATE, b.cap_id,
                                   b.irq, b.config.label, b.config.push_compatible)
            for b in vm.bells)  # fmt: skip
        facts = vm_config.Facts(vm.vmid, vm.owner, cfg.image_name, (cfg.base, vm.mem_size),
                                self.hyp.random_bytes(8), len(vm.vcpus), bells)  # fmt: skip
        blob = vm_config.rewrite(tree, cfg, facts)
        if blob is None:
            return False
        room = vm.mem_size - vm.dt_offset
        if not (len(blob) <= DTB_BUFFER and len(blob) <= room) and 2 * len(blob) > vm.dt_size:
            return False  # neither the RM's buffer nor the region's spare half holds it
        at = self._phys(vm, vm.dt_offset, len(blob))
        return at is not None and self.hyp.write_phys(at, blob)

    # -- VM_STOP, the power-off callback ------------------------------------------------
    def stop(self, payload: bytes) -> Reply:
        vm = self._owned(payload, 8, E["VMID_INVALID"])
        if isinstance(vm, int):
            return vm, b""
        if vm.state not in (S["RUNNING"], S["PAUSED"]) or vm.no_shutdown:
            return E["VM_STATE"], b""
        if payload[2] & VM_STOP_FLAG_FORCE:
            self.stopping.add(vm.vmid)  # a power-off the halt causes is this stop's to tell
            try:
                self.handle_exit(vm)
            finally:
                self.stopping.discard(vm.vmid)
            self.set_state(vm, S["EXITED"])
            self.send_exited(vm, rm.EXIT_TYPE["VM_STOP_FORCED"], 0)
        # else NOTIFY_VM_SHUTDOWN goes to the VM itself, which has no RPC link here
        return rm.OK, b""

    def on_vm_exit(self, vmid: int, exit_type: int, reason: int) -> None:
        """vcpu_halt_callback: the VM's last vCPU powered off."""
        vm = self.guest(vmid)
        if vm is None or vm.state not in (S["RUNNING"], S["PAUSED"]) or vmid in self.stopping:
            return  # already exited, never ran, or being stopped
        self.set_state(vm, S["EXITED"])
        self.send_exited(vm, exit_type, reason)

    # -- VM_RESET (vm_mgnt.c, the reset stages) ------------------------------------------
    def reset(self, payload: bytes) -> Reply:
        vm = self._owned(payload, 4, E["VMID_INVALID"])
        if isinstance(vm, int):
            return vm, b""
        if vm.no_reset:
            return E["DENIED"], b""
        if vm.state not in (S["EXITED"], S["READY"], S["INIT_FAILED"]):
            return E["VM_STATE"], b""
        if vm.state != S["EXITED"] and vm.configured:
            self.handle_exit(vm)
        self.set_state(vm, S["RESETTING"])
        # after the reply: the parcels released, the VM destroyed, its facts cleared
        for handle in self.parcels.release_all(vm.vmid):
            payload = rm.encode_notification("NOTIFY_MEM_RELEASED", {"handle": handle,
                                                                     "vmid": vm.vmid})  # fmt: skip
            self.notify(rm.MESSAGE_IDS["NOTIFY_MEM_RELEASED"], payload, True)
        if vm.created:
            self.hyp.vm_destroy(vm.vmid)
        vm.created, vm.configured, vm.config, vm.vcpus = False, False, None, []
        vm.virqs, vm.bells = set(), []
        vm.name = vm.uri = vm.crash_msg = b""
        vm.guid, vm.os_state, vm.app_status = bytes(16), 0, 0
        vm.handle = vm.mem_size = vm.image_offset = vm.dt_offset = vm.dt_size = 0
        self.set_state(vm, S["RESET"], after=True)
        vm.peers.clear()  # vm_deregister_all_peers
        return rm.OK, b""

    # -- VM_GET_HYP_RESOURCES (vm_get_resources.c) ---------------------------------------
    def get_hyp_resources(self, payload: bytes) -> Reply:
        if len(payload) != 4:
            return E["MSG_INVALID"], b""
        vm = self.vms.get(vmid_of(payload))
        if vm is None:
            return E["ARGUMENT_INVALID"], b""
        entries = []
        if isinstance(vm, GuestVm):
            if not vm.configured:
                return E["NORESOURCE"], b""
            if vm.owner == self.client:
                entries = [{"resource_type": 4, "label": i, "cap_id": cap, "virq": virq}
                           for i, (cap, virq) in enumerate(vm.vcpus)]  # fmt: skip
            # get_vdev_doorbell_desc: a doorbell whose peer is the caller and
            # that has no vdevice of the peer's own: the peer's cap to ring it
            entries += [{"resource_type": RESOURCE_DOORBELL_SRC, "partner_vmid": vm.vmid,
                         "label": b.config.label, "cap_id": b.owner_cap, "virq": 0}
                        for b in vm.bells
                        if b.owner_cap is not None and vm.owner == self.client]  # fmt: skip
        return rm.OK, rm.encode_reply("VM_GET_HYP_RESOURCES", None, entries)
