"""The resource manager hosting a second VM: the life cycle measured on the
QEMU build replayed request by request (docs/real-gunyah.md, "hosting a
second VM"; the table's bytes, cap IDs and virqs as the recording hypervisor
picks them), and every error the RM's sources answer, in their order of
checks (quic/gunyah-resource-manager bf31a9a: src/vm_mgnt/vm_mgnt.c,
src/vm_creation/vm_creation.c, src/vm_creation/second_vm.c,
src/vm_config/vm_config_parser.c, src/vm_config/dtb_parser.c,
platform/qemu/src/vm_dt.c), the device tree read and rewritten, and hostile
requests and trees."""

from __future__ import annotations

import struct

import fdt
import pytest
from cli_helpers import assert_usage_error, gunyah, gunyah_json
from hypothesis import given, settings
from hypothesis import strategies as st
from rm_fakes import HLOS_RAM, RecordingHyp

from gunyah.abi import rm
from gunyah.abi.errors import Error
from gunyah.guest.vm_tree import vm_device_tree as guest_tree
from gunyah.rm import ResourceManager
from gunyah.rm import vm_config as vc
from gunyah.rm.hyp import rm_error_from_hyp
from gunyah.rm.memparcel import Parcels

ID = rm.MESSAGE_IDS
VMID = 0x80
PARCEL_SIZE = 0x20_0000
DT_OFFSET, DT_SIZE = 0x1000, 0x10000


# -- a VM's device tree, as a VMM writes it --------------------------------------------
def words(name: str, *values: int) -> fdt.PropWords:
    return fdt.PropWords(name, *values)


# -- the RM, a hypervisor that records, a parcel service ------------------------------
class Rig:
    def __init__(self) -> None:
        self.hyp = RecordingHyp()
        self.parcels = Parcels(self.hyp)
        self.rm = ResourceManager(hyp=self.hyp, parcels=self.parcels)
        self.seq = 0

    def send(
        self, name: str | int, payload: bytes | str = b""
    ) -> list[tuple[int, int, int, bytes]]:
        """The messages back: (type, seq, message ID, payload), whole."""
        msg_id = ID[name] if isinstance(name, str) else name
        data = bytes.fromhex(payload) if isinstance(payload, str) else payload
        self.seq += 1
        out: list[bytes] = []
        for m in rm.frame(rm.TYPE_REQUEST, self.seq, msg_id, data):
            out += self.rm.receive(m)
        return assemble(out)

    def ask(self, name: str | int, payload: bytes | str = b"") -> tuple[int, bytes]:
        """A request that causes no notification: its error and reply payload."""
        (reply,) = self.send(name, payload)
        assert reply[0] == rm.TYPE_REPLY and reply[1] == self.seq
        return struct.unpack_from("<I", reply[3])[0], reply[3][4:]

    def place(self, dt: bytes, offset: int = DT_OFFSET) -> None:
        self.hyp.ram[offset : offset + len(dt)] = dt

    def vm(self):  # the RM's record of VM 0x80
        return self.rm.vms[VMID]


def assemble(messages: list[bytes]) -> list[tuple[int, int, int, bytes]]:
    out, i = [], 0
    while i < len(messages):
        h = rm.Header.decode(messages[i])
        body = b"".join(m[8:] for m in messages[i : i + h.fragments + 1])
        out.append((h.msg_type, h.seq, h.msg_id, body))
        i += h.fragments + 1
    return out


def share(rig: Rig, acl: tuple[tuple[int, int], ...] = ((VMID, 7), (3, 7)),
          base: int = HLOS_RAM, size: int = PARCEL_SIZE) -> int:  # fmt: skip
    payload = struct.pack("<BBBBIHH", 0, 0, 0, 0, 0, len(acl), 0)
    payload += b"".join(struct.pack("<HBB", v, r, 0) for v, r in acl)
    payload += struct.pack("<HH", 1, 0) + struct.pack("<QQ", base, size) + struct.pack("<HH", 0, 0)
    error, data = rig.ask("MEM_SHARE", payload)
    assert error == 0
    return int.from_bytes(data, "little")


def config_image(vmid: int = VMID, handle: int = 1, auth: int = 0,
                 image: tuple[int, int] = (0, 0x1000),
                 dt: tuple[int, int] = (DT_OFFSET, DT_SIZE)) -> bytes:  # fmt: skip
    return struct.pack("<HHIQQQQ", vmid, auth, handle, *image, *dt)


def vmid_word(vmid: int = VMID) -> bytes:
    return struct.pack("<HH", vmid, 0)


def status(n: int, state: int, vmid: int = VMID) -> tuple[int, int, int, bytes]:
    """VM_STATUS as measured: u16 vmid, u16 0, u8 state, u8 os state, u16 app status."""
    return (rm.TYPE_NOTIFICATION, n, 0x56100008, struct.pack("<HHBBH", vmid, 0, state, 0, 0))


def reply(
    rig: Rig, msg_id: int, error: int = 0, payload: bytes = b""
) -> tuple[int, int, int, bytes]:
    return (rm.TYPE_REPLY, rig.seq, msg_id, struct.pack("<I", error) + payload)


def ready(rig: Rig, dt: bytes | None = None) -> None:
    """Allocated, shared, configured and initialised: state READY."""
    assert rig.ask("VM_ALLOCATE", bytes(4)) == (0, struct.pack("<I", VMID))
    share(rig)
    rig.place(guest_tree() if dt is None else dt)
    assert rig.send("VM_CONFIG_IMAGE", config_image())[-1][3][:4] == bytes(4)
    assert rig.send("VM_INIT", vmid_word())[-1][3][:4] == bytes(4)


def running(rig: Rig) -> None:
    ready(rig)
    assert rig.send("VM_START", vmid_word())[-1][3][:4] == bytes(4)


# -- the constants, against their sources -----------------------------------------------
def test_constants_are_the_resource_managers() -> None:
    # include/vm_creation_message.h, vm_mgnt_message.h, memparcel_msg.h
    assert (ID["VM_CONFIG_IMAGE"], ID["VM_AUTH_IMAGE"], ID["VM_INIT"]) == (
        0x56000009, 0x5600000A, 0x5600000B)  # fmt: skip
    assert (ID["NOTIFY_VM_EXITED"], ID["NOTIFY_VM_STATUS"], ID["NOTIFY_MEM_RELEASED"]) == (
        0x56100001, 0x56100008, 0x51100012)  # fmt: skip
    # include/vm_mgnt.h
    assert rm.VM_STATE == {"NONE": 0, "INIT": 1, "READY": 2, "RUNNING": 3, "PAUSED": 4,
                           "LOAD": 5, "AUTH": 6, "INIT_FAILED": 8, "EXITED": 9,
                           "RESETTING": 10, "RESET": 11}  # fmt: skip
    assert rm.EXIT_TYPE == {"VM_EXIT": 0, "PLATFORM_OFF": 1, "PLATFORM_RESET": 2,
                            "PSCI_SYSTEM_RESET2": 3, "WATCHDOG_BITE": 4, "SOFTWARE_ERROR": 5,
                            "ASYNC_HW_ERROR": 6, "VM_STOP_FORCED": 7}  # fmt: skip
    # include/vm_resource_msg.h: a 44-byte entry; rm_types.h; the parser's limits
    assert rm.REPLIES["VM_GET_HYP_RESOURCES"][0].item.size == 44
    assert rm.RESOURCE_TYPES[4] == "VIRTUAL_CPU"
    assert (vc.MAX_DEPTH, vc.MAX_PATH_LEN, vc.VM_MAX_NAME_LEN) == (16, 256, 80)
    # config/platform/qemu.conf; vgic addresses as measured
    assert (vc.DEFAULT_BASE, vc.DEFAULT_SIZE_MAX) == (0x28800000, 0x07FFFFFF)
    assert (vc.GICD_BASE, vc.GICD_SIZE, vc.GICR_BASE, vc.GICR_SIZE) == (
        0x40010000, 0x10000, 0x40020000, 0x20000)  # fmt: skip


# -- the measured life cycle, request by request -----------------------------------------
def test_the_measured_life_cycle() -> None:
    rig = Rig()
    # VM_ALLOCATE: VMID 0 picks the first dynamic VMID
    assert rig.send("VM_ALLOCATE", "00000000") == [
        reply(rig, ID["VM_ALLOCATE"], 0, bytes.fromhex("80000000"))
    ]
    # MEM_SHARE (the parcel service's): handle 1
    assert share(rig) == 1
    dt = guest_tree()
    rig.place(dt)
    # VM_CONFIG_IMAGE: VM_STATUS INIT before the reply, notification 0
    assert rig.send("VM_CONFIG_IMAGE", config_image()) == [
        status(0, 1),
        reply(rig, ID["VM_CONFIG_IMAGE"]),
    ]
    # VM_INIT: VM_STATUS READY before the reply
    assert rig.send("VM_INIT", vmid_word()) == [status(1, 2), reply(rig, ID["VM_INIT"])]
    assert rig.send("VM_GET_STATE", vmid_word()) == [
        reply(rig, ID["VM_GET_STATE"], 0, bytes.fromhex("02000000"))
    ]
    # VM_GET_HYP_RESOURCES: one 44-byte entry, the owner's cap to vCPU 0 and its wake-up virq
    entry = bytes.fromhex("04000000" "00000000" "00000000" "0300000000000000" "00000000"
                          "c2030000" "0000000000000000" "0000000000000000")  # fmt: skip
    assert len(entry) == 44
    assert rig.send("VM_GET_HYP_RESOURCES", vmid_word()) == [
        reply(rig, ID["VM_GET_HYP_RESOURCES"], 0, bytes.fromhex("01000000") + entry)
    ]
    assert rig.hyp.named("vcpu_create") == [("vcpu_create", VMID, 0, 3)]
    assert rig.hyp.named("add_vmmio") == [("add_vmmio", VMID, 0, 0x40000000)]
    # VM_START: VM_STATUS RUNNING before the reply; vCPU 0 at the image, x0 the tree
    assert rig.send("VM_START", vmid_word()) == [status(2, 3), reply(rig, ID["VM_START"])]
    assert rig.hyp.named("map") == [("map", VMID, 0x80000000, HLOS_RAM, PARCEL_SIZE, 7)]
    assert rig.hyp.named("vcpu_poweron") == [("vcpu_poweron", VMID, 0, 0x80000000, 0x80001000)]
    # PSCI SYSTEM_OFF: VM_STATUS EXITED, then VM_EXITED (PLATFORM_OFF, reason size 4, reason 0)
    assert rig.hyp.on_vm_exit is not None
    rig.hyp.on_vm_exit(VMID, 1, 0)
    assert assemble(list(rig.rm.outbox)) == [
        status(3, 9),
        (rm.TYPE_NOTIFICATION, 4, 0x56100001, bytes.fromhex("800001000400000000000000")),
    ]
    rig.rm.outbox.clear()
    # VM_RESET: RESETTING before the reply, then MEM_RELEASED, then RESET
    assert rig.send("VM_RESET", vmid_word()) == [
        status(5, 10), reply(rig, ID["VM_RESET"]),
        (rm.TYPE_NOTIFICATION, 6, 0x51100012, bytes.fromhex("01000000" "8000" "0000" "00000000")),
        status(7, 11)]  # fmt: skip
    assert rig.hyp.named("vm_destroy") == [("vm_destroy", VMID)]
    assert rig.ask("MEM_RECLAIM", "0100000000000000") == (0, b"")
    assert rig.ask("VM_DEALLOCATE", vmid_word()) == (0, b"")
    assert rig.ask("VM_GET_STATE", vmid_word()) == (rm.ERROR_NORESOURCE, b"")
    # and the VMID is free again
    assert rig.ask("VM_ALLOCATE", bytes(4)) == (0, bytes.fromhex("80000000"))


def test_the_measured_bytes_on_the_wire() -> None:
    """Requests `21 01 <seq> <id> <payload>`, replies `21 02 <seq> <id>
    <error> <payload>`, notifications `21 03 <n> <id> <payload>`."""
    rig = Rig()
    wire = rig.rm.receive
    assert wire(bytes.fromhex("2101" "0500" "01000056" "00000000")) == [
        bytes.fromhex("2102" "0500" "01000056" "00000000" "80000000")]
    share(rig)
    rig.place(guest_tree())
    assert wire(bytes.fromhex("2101" "0600" "09000056") + config_image()) == [
        bytes.fromhex("2103" "0000" "08001056" "8000" "0000" "01" "00" "0000"),
        bytes.fromhex("2102" "0600" "09000056" "00000000")]
    assert wire(bytes.fromhex("2101" "0700" "0b000056" "80000000")) == [
        bytes.fromhex("2103" "0100" "08001056" "8000" "0000" "02" "00" "0000"),
        bytes.fromhex("2102" "0700" "0b000056" "00000000")]


def test_the_rewritten_tree_is_what_the_vm_is_given() -> None:
    rig = Rig()
    running(rig)
    size = int.from_bytes(rig.hyp.ram[DT_OFFSET + 4 : DT_OFFSET + 8], "big")
    tree = vc.load(bytes(rig.hyp.ram[DT_OFFSET : DT_OFFSET + size]))
    assert tree is not None
    vm = vc.find(tree, "/hypervisor/qcom,gunyah-vm")
    assert vm is not None
    assert vc.strings(vc.find(tree, "/hypervisor"), "compatible") == [
        "gunyah-hypervisor",
        "qcom,gunyah-hypervisor-1.0",
        "qcom,gunyah-hypervisor",
        "simple-bus",
    ]
    assert vc.strings(vm, "compatible") == ["qcom,gunyah-vm-id-1.0", "qcom,gunyah-vm-id"]
    assert (vc.u32(vm, "qcom,vmid"), vc.u32(vm, "qcom,owner-vmid")) == (VMID, 3)
    assert (vc.string(vm, "qcom,image-name"), vc.string(vm, "qcom,vendor")) == ("svm", "Qualcomm")
    assert vc.find(tree, "/vsoc").nodes == [] and vc.find(tree, "/reserved-memory").nodes == []
    memory = vc.find(tree, "/memory")
    assert vc.string(memory, "device_type") == "memory"
    assert vc.raw(memory, "reg") == struct.pack(">IIII", 0, 0x80000000, 0, PARCEL_SIZE)
    assert vc.raw(vc.find(tree, "/chosen"), "kaslr-seed") == bytes(range(0xA0, 0xA8))
    gic = vc.find(tree, "/intc@3f000000")
    assert vc.raw(gic, "reg") == struct.pack(
        ">8I", 0, 0x40010000, 0, 0x10000, 0, 0x40020000, 0, 0x20000
    )
    assert vc.raw(gic, "redistributor-stride") == (0x20000).to_bytes(8, "big")
    # the image is left alone: only the tree's region was written
    assert bytes(rig.hyp.ram[:DT_OFFSET]) == bytes(DT_OFFSET)


def test_a_gic_with_its_own_reg_is_left_as_it_is() -> None:
    rig = Rig()
    ready(rig, guest_tree(gic_reg=True))
    assert rig.send("VM_START", vmid_word())[-1][3][:4] == bytes(4)
    size = int.from_bytes(rig.hyp.ram[DT_OFFSET + 4 : DT_OFFSET + 8], "big")
    tree = vc.load(bytes(rig.hyp.ram[DT_OFFSET : DT_OFFSET + size]))
    assert vc.raw(vc.find(tree, "/intc@3f000000"), "reg")[4:8] == (0x3F000000).to_bytes(4, "big")


def test_vm_stop_force_while_running() -> None:
    """Measured: VM_STATUS 9, VM_EXITED type 7, then the reply 0."""
    rig = Rig()
    running(rig)
    payload = struct.pack("<HBBI", VMID, 1, 0, 0)
    assert rig.send("VM_STOP", payload) == [
        status(3, 9),
        (rm.TYPE_NOTIFICATION, 4, 0x56100001, bytes.fromhex("80000700" "04000000" "00000000")),
        reply(rig, ID["VM_STOP"])]  # fmt: skip
    assert rig.hyp.named("vm_stop") == [("vm_stop", VMID)]
    # a power-off that comes after is too late to tell again
    rig.hyp.on_vm_exit(VMID, 1, 0)
    assert not rig.rm.outbox
    assert rig.ask("VM_STOP", payload) == (rm.ERROR_CODES["VM_STATE"], b"")


def test_a_power_off_the_stop_itself_causes_is_told_once() -> None:
    """A hypervisor may report the halt VM_STOP asks for as a power-off: the
    owner hears VM_STOP_FORCED, once."""
    rig = Rig()
    running(rig)
    rig.hyp.vm_stop = lambda vmid: rig.hyp.on_vm_exit(vmid, 1, 0)  # type: ignore[method-assign,misc]
    replies = rig.send("VM_STOP", struct.pack("<HBBI", VMID, 1, 0, 0))
    assert replies[0] == status(3, 9)
    assert replies[1][2:] == (0x56100001, bytes.fromhex("800007000400000000000000"))
    assert len(replies) == 3 and not rig.rm.outbox


def test_vm_stop_without_force_asks_the_vm_and_changes_nothing() -> None:
    rig = Rig()
    running(rig)
    assert rig.ask("VM_STOP", struct.pack("<HBBI", VMID, 0, 0, 5)) == (0, b"")
    assert rig.vm().state == 3


def test_a_tree_refused_ends_in_init_failed_and_a_reset_recovers() -> None:
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig)
    rig.place(guest_tree(image_name=None))
    rig.send("VM_CONFIG_IMAGE", config_image())
    assert rig.send("VM_INIT", vmid_word()) == [status(1, 8), reply(rig, ID["VM_INIT"], 10)]
    assert rig.send("VM_RESET", vmid_word()) == [
        status(2, 10),
        reply(rig, ID["VM_RESET"]),
        status(3, 11),
    ]
    # reset, the client is no longer a peer: it hears nothing of the relaunch
    rig.place(guest_tree())
    assert rig.send("VM_CONFIG_IMAGE", config_image()) == [reply(rig, ID["VM_CONFIG_IMAGE"])]
    assert rig.send("VM_INIT", vmid_word()) == [reply(rig, ID["VM_INIT"])]
    assert rig.vm().state == 2


# -- errors, in the RM's order of checks -----------------------------------------------
E = rm.ERROR_CODES


@pytest.mark.parametrize(("name", "payload", "error"), [
    ("VM_ALLOCATE", "000000", E["MSG_INVALID"]),
    ("VM_ALLOCATE", "0000000000", E["MSG_INVALID"]),
    ("VM_ALLOCATE", "03000000", E["NORESOURCE"]),  # not a VMID that may be asked for
    ("VM_ALLOCATE", "40000000", E["NORESOURCE"]),  # 64 and above: out of range
    ("VM_ALLOCATE", "80000000", E["NORESOURCE"]),  # a dynamic VMID cannot be asked for
    ("VM_DEALLOCATE", "8000", E["MSG_INVALID"]),
    ("VM_DEALLOCATE", "81000000", E["VMID_INVALID"]),  # the real RM asserts
    ("VM_DEALLOCATE", "03000000", E["DENIED"]),  # the primary VM is the RM's
    ("VM_START", "810000", E["MSG_INVALID"]),
    ("VM_START", "81000000", E["VMID_INVALID"]),
    ("VM_START", "03000000", E["DENIED"]),
    ("VM_START", "80000000", E["VM_STATE"]),  # allocated, not ready
    ("VM_STOP", "80000000", E["MSG_INVALID"]),  # exactly 8 bytes
    ("VM_STOP", "8100010000000000", E["VMID_INVALID"]),
    ("VM_STOP", "0300010000000000", E["VMID_INVALID"]),  # not the owner: VMID_INVALID too
    ("VM_STOP", "8000010000000000", E["VM_STATE"]),
    ("VM_RESET", "80000000" "00", E["MSG_INVALID"]),
    ("VM_RESET", "81000000", E["VMID_INVALID"]),
    ("VM_RESET", "03000000", E["VMID_INVALID"]),
    ("VM_RESET", "80000000", E["VM_STATE"]),  # LOAD cannot reset
    ("VM_INIT", "80000100", E["MSG_INVALID"]),  # the reserved half must be 0
    ("VM_INIT", "8000", E["MSG_INVALID"]),
    ("VM_INIT", "81000000", E["VMID_INVALID"]),
    ("VM_INIT", "03000000", E["DENIED"]),
    ("VM_INIT", "80000000", E["VM_STATE"]),
    ("VM_CONFIG_IMAGE", "80000000", E["MSG_INVALID"]),
    ("VM_CONFIG_IMAGE", config_image(0x81).hex(), E["VMID_INVALID"]),
    ("VM_CONFIG_IMAGE", config_image(3).hex(), E["DENIED"]),
    ("VM_GET_HYP_RESOURCES", "800000", E["MSG_INVALID"]),
    ("VM_GET_HYP_RESOURCES", "81000000", E["ARGUMENT_INVALID"]),
    ("VM_GET_HYP_RESOURCES", "00000000", E["ARGUMENT_INVALID"]),  # 0 is no VM here
    ("VM_GET_HYP_RESOURCES", "80000000", E["NORESOURCE"]),  # no config yet
    ("VM_GET_CRASH_MSG", "8000", E["MSG_INVALID"]),
    ("VM_GET_CRASH_MSG", "81000000", E["VMID_INVALID"]),
    ("VM_GET_CRASH_MSG", "03000000", E["VMID_INVALID"]),  # the RM owns the primary VM
    ("VM_GET_ID", "80000000", E["VM_STATE"]),  # only ready, running or paused VMs
])  # fmt: skip
def test_errors_of_an_allocated_vm(name: str, payload: str, error: int) -> None:
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    assert rig.ask(name, payload) == (error, b"")
    assert rig.vm().state == 5 and not rig.rm.outbox  # nothing changed


@pytest.mark.parametrize(("cfg", "error"), [
    (config_image(handle=9), E["MEM_INVALID"]),  # no such parcel
    (config_image(image=(0, PARCEL_SIZE + 1)), E["ARGUMENT_INVALID"]),
    (config_image(dt=(PARCEL_SIZE - 0x10, 0x11)), E["ARGUMENT_INVALID"]),
    (config_image(dt=((1 << 64) - 1, 2)), E["ARGUMENT_INVALID"]),  # wraps
    (config_image(auth=3), E["ARGUMENT_INVALID"]),
])  # fmt: skip
def test_config_image_refused_sends_init_failed(cfg: bytes, error: int) -> None:
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig)
    assert rig.send("VM_CONFIG_IMAGE", cfg) == [
        status(0, 8),
        reply(rig, ID["VM_CONFIG_IMAGE"], error),
    ]
    assert rig.send("VM_INIT", vmid_word()) == [reply(rig, ID["VM_INIT"], E["VM_STATE"])]


def test_config_image_needs_a_parcel_the_vm_is_in() -> None:
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig, acl=((3, 7),))
    assert rig.send("VM_CONFIG_IMAGE", config_image())[-1][3][:4] == struct.pack(
        "<I", E["MEM_INVALID"]
    )


def test_an_untrusted_crash_fatal_vm_fails_init_and_may_not_reset() -> None:
    """handle_ids records the VM's no-reset before the untrusted config is
    refused: the real RM leaves such a VM in INIT_FAILED for good."""
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig)
    dt = guest_tree(extra=[])
    tree = vc.load(dt)
    assert tree is not None
    cfg_node = vc.find(tree, "/gunyah-vm-config")
    cfg_node.append(fdt.PropBytes("vm-attrs", data=b"crash-fatal\0"))
    rig.place(vc.serialize(tree.fdt.root))
    rig.send("VM_CONFIG_IMAGE", config_image())
    assert rig.send("VM_INIT", vmid_word())[-1] == reply(rig, ID["VM_INIT"], E["ARGUMENT_INVALID"])
    assert rig.ask("VM_RESET", vmid_word()) == (E["DENIED"], b"")
    assert rig.ask("VM_DEALLOCATE", vmid_word()) == (E["VM_STATE"], b"")


def test_states_refuse_out_of_turn() -> None:
    rig = Rig()
    ready(rig)
    assert rig.ask("VM_CONFIG_IMAGE", config_image()) == (E["VM_STATE"], b"")
    assert rig.ask("VM_INIT", vmid_word()) == (E["VM_STATE"], b"")
    assert rig.ask("VM_DEALLOCATE", vmid_word()) == (E["VM_STATE"], b"")
    assert rig.ask("VM_STOP", struct.pack("<HBBI", VMID, 1, 0, 0)) == (E["VM_STATE"], b"")
    rig.send("VM_START", vmid_word())
    assert rig.ask("VM_START", vmid_word()) == (E["VM_STATE"], b"")
    assert rig.ask("VM_RESET", vmid_word()) == (E["VM_STATE"], b"")  # running
    assert rig.ask("MEM_RECLAIM", "0100000000000000") == (E["MEM_INUSE"], b"")


def test_reset_from_ready_releases_nothing_and_destroys_the_vm() -> None:
    rig = Rig()
    ready(rig)
    assert rig.send("VM_RESET", vmid_word()) == [
        status(2, 10),
        reply(rig, ID["VM_RESET"]),
        status(3, 11),
    ]
    assert rig.hyp.named("vm_stop") == [("vm_stop", VMID)]
    assert rig.hyp.named("vm_destroy") == [("vm_destroy", VMID)]


def test_dynamic_vmids_count_up_and_fixed_ones_answer_no_vmid() -> None:
    rig = Rig()
    assert [rig.ask("VM_ALLOCATE", bytes(4))[1] for _ in range(3)] == [
        struct.pack("<I", v) for v in (0x80, 0x81, 0x82)
    ]
    assert rig.ask("VM_ALLOCATE", "05000000") == (0, b"")  # a fixed VMID: the error alone
    assert rig.ask("VM_ALLOCATE", "05000000") == (E["NORESOURCE"], b"")
    assert rig.ask("VM_DEALLOCATE", "81000000") == (0, b"")
    assert rig.ask("VM_ALLOCATE", bytes(4)) == (0, struct.pack("<I", 0x81))  # the lowest free
    assert rig.ask("VM_GET_PEERS") == (0, struct.pack("<5I", 4, 0x80, 0x82, 5, 0x81))


def test_dynamic_vmids_run_out_after_63() -> None:
    rig = Rig()
    for _ in range(63):
        assert rig.ask("VM_ALLOCATE", bytes(4))[0] == 0
    assert rig.ask("VM_ALLOCATE", bytes(4)) == (E["NORESOURCE"], b"")


def test_lookup_name_and_crash_msg() -> None:
    rig = Rig()
    running(rig)
    name = b"svm"
    assert rig.ask("VM_LOOKUP_NAME", struct.pack("<HH", 3, 0) + name + b"\0") == (
        0, struct.pack("<II", 1, VMID))  # fmt: skip
    assert rig.ask("VM_LOOKUP_NAME", struct.pack("<HH", 4, 0) + b"HLOS") == (
        0,
        struct.pack("<II", 1, 3),
    )
    assert rig.ask("VM_LOOKUP_NAME", struct.pack("<HH", 2, 0) + b"RM\0\0") == (
        0,
        struct.pack("<I", 0),
    )
    assert rig.ask("VM_LOOKUP_NAME", struct.pack("<HH", 3, 0) + b"svmx") == (E["MSG_INVALID"], b"")
    assert rig.ask("VM_LOOKUP_NAME", struct.pack("<HH", 3, 0) + b"svm") == (E["MSG_INVALID"], b"")
    assert rig.ask("VM_LOOKUP_NAME", struct.pack("<HH", 80, 0) + bytes(80)) == (
        E["ARGUMENT_INVALID"],
        b"",
    )
    assert rig.ask("VM_LOOKUP_NAME", "0000") == (E["MSG_INVALID"], b"")
    assert rig.ask("VM_LOOKUP_NAME", "") == (E["ARGUMENT_INVALID"], b"")  # no buffer at all
    assert rig.ask("VM_GET_CRASH_MSG", vmid_word()) == (0, bytes(4))
    error, data = rig.ask("VM_GET_ID", vmid_word())
    assert error == 0 and rm.decode_reply(ID["VM_GET_ID"], data)["ids"][1]["value"] == "svm"


def test_hyp_resources_of_the_primary_vm_list_nothing() -> None:
    assert Rig().ask("VM_GET_HYP_RESOURCES", "03000000") == (0, bytes(4))


def test_without_a_hypervisor_the_life_cycle_is_unimplemented() -> None:
    server = ResourceManager()
    (m,) = server.receive(rm.frame(rm.TYPE_REQUEST, 1, ID["VM_ALLOCATE"], bytes(4))[0])
    assert m[8:] == struct.pack("<I", rm.ERROR_UNIMPLEMENTED)


# -- the device tree VM_INIT reads ---------------------------------------------------------
def init_error(dt: bytes | None = None, *, region: int = DT_SIZE, raw: bytes | None = None) -> int:
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig)
    rig.place(raw if raw is not None else guest_tree() if dt is None else dt)
    rig.send("VM_CONFIG_IMAGE", config_image(dt=(DT_OFFSET, region)))
    (*_, (_, _, _, body)) = rig.send("VM_INIT", vmid_word())
    assert rig.vm().state == (2 if body[:4] == bytes(4) else 8)
    return int.from_bytes(body[:4], "little")


def cpu_node(name: str, *props: fdt.Property) -> fdt.Node:
    n = fdt.Node(name)
    for p in props:
        n.append(p)
    return n


@pytest.mark.parametrize(("dt", "error"), [
    (guest_tree(), 0),
    (guest_tree(config="qcom,vm-config"), 0),
    (guest_tree(root_parent=False, interrupts="/intc@3f000000"), 0),  # the GIC by path
    (guest_tree(interrupts="/intc"), 0),  # a unit address may be left out
    (guest_tree(psci=False), 0),  # PSCI is the guest's to need
    (guest_tree(cpus=8), 0),
    (guest_tree(image_name=None), 10),
    (guest_tree(image_name="x" * 79), 0),
    (guest_tree(image_name="x" * 80), 10),
    (guest_tree(config="vm-config"), 2),  # no vm-config: no vCPUs (NORESOURCE)
    (guest_tree(vcpus=[]), 10),  # static by default, and no affinity-map
    (guest_tree(cpus=9), 2),  # more vCPUs than cores
    (guest_tree(interrupts="/nothing"), 10),
    (guest_tree(root_parent=False), 0),  # no GIC at all: only VM_START fails
    (guest_tree(memory_props=[words("base-address", 0, 0x80000800)]), 10),  # not page aligned
    (guest_tree(memory_props=[words("size-min", 0x3000), words("size-max", 0x2000)]), 6),
    (guest_tree(memory_props=[words("size-min", 0, 0x3000), words("size-max", 0x2000)]), 0),
    (guest_tree(vcpus=[fdt.PropStrings("affinity", "proxy"),
                       fdt.PropStrings("config", "/cpux")]), 10),
    (guest_tree(extra=[cpu_node("memory@80000000", fdt.PropStrings("device_type", "memory"),
                                words("reg", 0, 0x80000000, 0, 0x200000))]), 10),
    # a doorbell anywhere is the parser's: without a peer the tree is refused
    (guest_tree(extra=[cpu_node("db", fdt.PropStrings("vdevice-type", "doorbell"),
                                fdt.PropStrings("device_type", "cpu"))]), 10),
    (guest_tree(extra=[cpu_node("db", fdt.PropStrings("vdevice-type", "doorbell"),
                                fdt.Property("peer-default"),
                                fdt.PropStrings("device_type", "cpu"))]), 0),
    (guest_tree(extra=[cpu_node("mq", fdt.PropStrings("vdevice-type", "message-queue"),
                                fdt.PropStrings("device_type", "cpu"))]), 0),  # claimed, not made
    (guest_tree(extra=[cpu_node("memory", fdt.PropStrings("device_type", "memory"),
                                words("reg", 0, 0x80000000, 0, 0x200000))]), 0),
])  # fmt: skip
def test_what_vm_init_accepts(dt: bytes, error: int) -> None:
    assert init_error(dt) == error


def test_a_root_memory_node_of_the_vms_own_is_refused() -> None:
    """Measured (docs/real-gunyah.md, Linux's VM manager on it): MEM_INVALID
    for a VMM's root memory node; parse_memory allows only a node named
    exactly /memory, so a `memory@<base>` node is what is refused."""
    node = cpu_node("memory@80000000", fdt.PropStrings("device_type", "memory"),
                    words("reg", 0, 0x80000000, 0, 0x200000))  # fmt: skip
    assert init_error(guest_tree(extra=[node])) == E["MEM_INVALID"]


@pytest.mark.parametrize(("vcpus", "error"), [
    ([fdt.PropStrings("affinity", "static"), words("affinity-map", 0)], 2),  # owner's priority
    ([fdt.PropStrings("affinity", "static"), words("affinity-map", 0),
      words("sched-priority", 0xFFFFFFFF), words("sched-timeslice", 5000)], 0),
    ([fdt.PropStrings("affinity", "static"), words("affinity-map", 0),
      words("sched-priority", 0xFFFFFFFF)], 2),  # no timeslice
    ([fdt.PropStrings("affinity", "static"), words("affinity-map", 0, 1)], 10),  # counts differ
    ([fdt.PropStrings("affinity", "proxy"), words("sched-priority", 5)], 0),  # proxy ignores it
])  # fmt: skip
def test_vcpus_scheduling(vcpus: list[fdt.Property], error: int) -> None:
    assert init_error(guest_tree(vcpus=vcpus)) == error


@pytest.mark.parametrize("break_it", [
    lambda b: b[:4] + bytes(4) + b[8:],  # totalsize 0
    lambda b: b"\0" + b[1:],  # bad magic
    lambda b: b[:20] + struct.pack(">I", 1) + b[24:],  # version 1
    lambda b: b[:4] + struct.pack(">I", DT_SIZE + 1) + b[8:],  # bigger than the region
    lambda b: b[: len(b) // 2],  # cut short
    lambda b: b[:4] + struct.pack(">I", 40) + b[8:],  # no room for its blocks
])  # fmt: skip
def test_a_blob_libfdt_refuses_is_mem_invalid(break_it) -> None:
    assert init_error(raw=break_it(guest_tree()) + bytes(64)) == E["MEM_INVALID"]


def nested(depth: int) -> bytes:
    node = fdt.Node("n")
    top = node
    for _ in range(depth - 1):
        child = fdt.Node("n")
        node.append(child)
        node = child
    return guest_tree(extra=[top])


def dtb(*tokens: tuple) -> bytes:
    """A blob from its structure tokens: ("begin", name), ("prop", name,
    value), ("end",)."""
    names: dict[str, int] = {}
    table, body = bytearray(), bytearray()
    for t in tokens:
        if t[0] == "begin":
            body += struct.pack(">I", 1) + t[1].encode() + b"\0"
        elif t[0] == "end":
            body += struct.pack(">I", 2)
        else:
            if t[1] not in names:
                names[t[1]] = len(table)
                table += t[1].encode() + b"\0"
            body += struct.pack(">III", 3, len(t[2]), names[t[1]]) + t[2]
        body += bytes(-len(body) % 4)
    body += struct.pack(">I", 9)
    off_struct = 40 + 16
    total = off_struct + len(body) + len(table)
    head = struct.pack(">10I", 0xD00DFEED, total, off_struct, off_struct + len(body), 40, 17, 16,
                       0, len(table), len(body))  # fmt: skip
    return head + bytes(16) + bytes(body) + bytes(table)


def test_the_blob_is_walked_as_libfdt_walks_it() -> None:
    """The root's name makes no path; a property after a subnode is one
    libfdt's property walk never finds; two properties or two nodes of one
    name are refused."""
    one = b"\0\0\0\1"
    tree = vc.load(dtb(("begin", "odd"), ("prop", "a", one), ("begin", "n"), ("end",),
                       ("prop", "b", one), ("end",)))  # fmt: skip
    assert tree is not None and [p for _, p, _ in tree.order] == ["/", "/n"]
    assert vc.raw(tree.fdt.root, "a") == one and vc.raw(tree.fdt.root, "b") is None
    assert vc.load(dtb(("begin", ""), ("prop", "a", one), ("prop", "a", one), ("end",))) is None
    assert vc.load(dtb(("begin", ""), ("begin", "n"), ("end",), ("begin", "n"), ("end",),
                       ("end",))) is None  # fmt: skip
    assert vc.load(dtb(("begin", ""), ("end",), ("begin", ""), ("end",))) is None  # two roots
    assert vc.load(dtb(("begin", ""), ("begin", "n"), ("end",))) is None  # never closed
    assert vc.load(dtb(("end",))) is None


def test_depth_and_path_limits_are_the_parsers() -> None:
    assert init_error(nested(15)) == 0  # 16 levels with the root
    assert init_error(nested(16)) == E["MEM_INVALID"]
    long = cpu_node("x" * 254)
    assert init_error(guest_tree(extra=[long])) == 0  # a 255-byte path
    assert init_error(guest_tree(extra=[cpu_node("x" * 255)])) == E["MEM_INVALID"]


def test_huge_trees_are_refused_without_reading_them() -> None:
    rig = Rig()
    blob = bytearray(guest_tree())
    blob[4:8] = struct.pack(">I", vc.MAX_DT_SIZE + 8)
    assert vc.load(bytes(blob) + bytes(vc.MAX_DT_SIZE)) is None
    many = [fdt.Node(f"n{i}") for i in range(vc.MAX_NODES)]
    assert vc.load(guest_tree(extra=many)) is None
    assert init_error(guest_tree(extra=many), region=0x80000) == E["MEM_INVALID"]
    assert rig.rm.outbox == type(rig.rm.outbox)()


def test_vm_start_refuses_what_the_rewrite_cannot_do() -> None:
    for dt in (guest_tree(root_parent=False), guest_tree(chosen=False),
               guest_tree(extra=[fdt.Node("hypervisor")])):  # fmt: skip
        rig = Rig()
        ready(rig, dt)
        assert rig.send("VM_START", vmid_word()) == [status(2, 8), reply(rig, ID["VM_START"], 2)]
        assert not rig.hyp.named("vcpu_poweron")
        # the image parcel was accepted before the rewrite failed: a reset releases it
        assert [m[2] for m in rig.send("VM_RESET", vmid_word())] == [
            0x56100008,
            ID["VM_RESET"],
            0x51100012,
            0x56100008,
        ]


def test_vm_start_powers_on_every_boot_vcpu() -> None:
    """vm_firmware_vm_start: each vCPU enabled at boot (no status: the
    first only; status "okay": each) starts at the image with the tree."""
    rig = Rig()
    okay = fdt.PropStrings("status", "okay")
    tree = vc.load(guest_tree(cpus=3))
    for name in ("cpu@0", "cpu@2"):
        vc.find(tree, f"/cpus/{name}").append(okay.copy())
    ready(rig, vc.serialize(tree.fdt.root))
    rig.send("VM_START", vmid_word())
    assert rig.hyp.named("vcpu_poweron") == [
        ("vcpu_poweron", VMID, i, 0x80000000, 0x80001000) for i in (0, 2)]
    assert len(rig.hyp.named("vcpu_create")) == 3


def test_a_power_on_the_hypervisor_refuses_fails_the_start_as_its_error() -> None:
    """vm_firmware_vm_start_default replies rm_error_from_hyp of the
    vcpu_poweron's error and VM_START leaves the VM INIT_FAILED
    (src/vm_firmware/vm_firmware.c, src/vm_mgnt/vm_mgnt.c); in a boot the
    shim's room for a VM's stage 2 runs out there (NOMEM), and a reset
    recovers the VM as from any failed start."""

    def refuse(vmid: int, index: int, entry: int, context: int) -> None:
        raise Refused(Error.NOMEM)

    rig = Rig()
    ready(rig)
    rig.hyp.vcpu_poweron = refuse  # type: ignore[method-assign]
    started = rig.send("VM_START", vmid_word())
    assert started == [status(2, 8), reply(rig, ID["VM_START"], E["NOMEM"])]
    assert rig.vm().state == 8
    assert [m[2] for m in rig.send("VM_RESET", vmid_word())][1] == ID["VM_RESET"]
    assert rig.vm().state == 11 and rig.ask("VM_DEALLOCATE", vmid_word()) == (0, b"")


class Refused(ValueError):
    def __init__(self, error: int | None) -> None:
        super().__init__("refused")
        self.error = error


def test_hypervisor_errors_become_the_rms_as_rm_error_from_hyp_maps_them() -> None:
    """src/resource-manager.c rm_error_from_hyp, case by case; every other
    code, and a refusal without one, is DENIED."""
    expect = {Error.OK: 0x0, Error.UNIMPLEMENTED: 0xFFFFFFFF, Error.NOMEM: 0x1,
              Error.NORESOURCES: 0x2, Error.DENIED: 0x3, Error.BUSY: 0x5,
              Error.ADDR_INVALID: 0xA, Error.ADDR_OVERFLOW: 0xA, Error.ADDR_UNDERFLOW: 0xA,
              Error.ARGUMENT_INVALID: 0x6}  # fmt: skip
    for code in Error:
        assert rm_error_from_hyp(Refused(code)) == expect.get(code, 0x3), code
    assert rm_error_from_hyp(Refused(None)) == rm_error_from_hyp(ValueError("no code")) == 0x3
    assert rm_error_from_hyp(Refused(12345)) == 0x3


def test_an_android_vm_without_its_firmware_does_not_start() -> None:
    rig = Rig()
    rig.ask("VM_ALLOCATE", bytes(4))
    share(rig)
    rig.place(guest_tree())
    rig.send("VM_CONFIG_IMAGE", config_image(auth=2))
    rig.send("VM_INIT", vmid_word())
    assert rig.send("VM_START", vmid_word()) == [
        status(2, 8), reply(rig, ID["VM_START"], E["DENIED"])]  # fmt: skip
    assert not rig.hyp.named("vcpu_poweron")


def test_the_tree_changed_between_init_and_start_is_read_again() -> None:
    rig = Rig()
    ready(rig)
    rig.place(bytes(64))
    assert rig.send("VM_START", vmid_word())[-1] == reply(rig, ID["VM_START"], 2)


# -- hostile bytes ------------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=600))
def test_any_blob_is_a_tree_or_refused(blob: bytes) -> None:
    tree = vc.load(blob)
    if tree is not None:
        vc.parse(tree)


@settings(max_examples=100, deadline=None)
@given(st.integers(0, len(guest_tree()) - 1), st.integers(0, 255))
def test_any_damaged_tree_is_read_or_refused(at: int, value: int) -> None:
    blob = bytearray(guest_tree())
    blob[at] = value
    tree = vc.load(bytes(blob))
    if tree is not None:  # what the RM writes back reads as the same tree
        again = vc.load(vc.serialize(tree.fdt.root))
        assert again is not None
        assert [
            (p, d, [(q.name, vc.raw(n, q.name)) for q in n.props]) for n, p, d in again.order
        ] == [(p, d, [(q.name, vc.raw(n, q.name)) for q in n.props]) for n, p, d in tree.order]
    if tree is not None and (cfg := vc.parse(tree)) is not None:
        vc.rewrite(
            tree, cfg, vc.Facts(VMID, 3, cfg.image_name, (0x80000000, PARCEL_SIZE), bytes(8), 1)
        )


MESSAGES = [
    ID[n] for n in ("VM_ALLOCATE", "VM_DEALLOCATE", "VM_CONFIG_IMAGE", "VM_INIT", "VM_START",
                    "VM_STOP", "VM_RESET", "VM_GET_STATE", "VM_GET_HYP_RESOURCES",
                    "VM_LOOKUP_NAME", "VM_GET_CRASH_MSG")
]  # fmt: skip


def snapshot(rig: Rig) -> list[tuple[int, int]]:
    return sorted((v.vmid, v.state) for v in rig.rm.vms.values())


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(MESSAGES), st.binary(max_size=64))
def test_random_payloads_never_raise_and_change_nothing_when_refused(
    msg_id: int, payload: bytes
) -> None:
    rig = Rig()
    ready(rig)
    before = snapshot(rig)
    replies = rig.send(msg_id, payload)
    body = replies[[r[0] for r in replies].index(rm.TYPE_REPLY)][3]
    error = int.from_bytes(body[:4], "little")
    if error:
        assert snapshot(rig) == before
        assert all(r[0] == rm.TYPE_REPLY for r in replies) or msg_id in (ID["VM_CONFIG_IMAGE"],)


@given(st.sampled_from(sorted(rm.REPLIES)), st.data())
def test_every_reply_layout_round_trips(name: str, data: st.DataObject) -> None:
    for layout in rm.REPLIES[name]:
        values = {n: data.draw(st.integers(0, (1 << (8 * struct.calcsize("<" + c))) - 1))
                  for n, c in layout.fields}  # fmt: skip
        count = data.draw(st.integers(0, 3))
        entries = [{n: data.draw(st.integers(0, (1 << (8 * struct.calcsize("<" + c))) - 1))
                    for n, c in layout.entry} for _ in range(count)]  # fmt: skip
        blob = layout.encode(values, entries)
        assert layout.decode(blob) is not None
        if not layout.derive:
            d = layout.decode(blob)
            assert layout.encode(d, d.get("entries", [])) == blob


@given(st.sampled_from(sorted(rm.NOTIFICATIONS)), st.data())
def test_every_notification_layout_round_trips(name: str, data: st.DataObject) -> None:
    layout = rm.NOTIFICATIONS[name]
    values = {n: data.draw(st.integers(0, (1 << (8 * struct.calcsize("<" + c))) - 1))
              for n, c in layout.fields}  # fmt: skip
    entries = [{"word": data.draw(st.integers(0, 0xFFFFFFFF))}
               for _ in range(data.draw(st.integers(0, 3)))] if layout.entry else []  # fmt: skip
    blob = layout.encode(values, entries)
    d = rm.decode_reply(ID[name], blob)
    assert d is not None
    if name == "NOTIFY_VM_EXITED":
        assert d["reason"] == [e["word"] for e in entries]
        assert d["exit_type_name"] == rm.EXIT_TYPES.get(values["exit_type"])
    else:
        assert layout.encode(d) == blob


@given(st.binary(max_size=80))
def test_decoding_any_payload_never_raises(payload: bytes) -> None:
    for msg_id in rm.MESSAGE_NAMES:
        rm.decode_reply(msg_id, payload)


# -- the command line ------------------------------------------------------------------------
def test_decode_names_a_notifications_fields() -> None:
    code, d = gunyah_json("decode", "--rm", "56100001", "--rm-payload", "800007000400000000000000")
    assert code == 0 and d["message"] == "NOTIFY_VM_EXITED"
    assert (d["decoded"]["vmid"], d["decoded"]["exit_type_name"]) == (0x80, "VM_STOP_FORCED")
    p = gunyah("decode", "--rm", "NOTIFY_VM_STATUS", "--rm-payload", "8000000009000000")
    assert p.returncode == 0 and "vm_state: 9 (0x9) EXITED" in p.stdout
    p = gunyah("decode", "--rm", "VM_INIT", "--rm-error", "10", "--rm-payload", "")
    assert p.returncode == 0 and "VM_INIT" in p.stdout and "MEM_INVALID" in p.stdout
    p = gunyah("decode", "--rm", "VM_GET_STATE", "--rm-payload", "0300")
    assert p.returncode == 0 and "not a shape known" in p.stdout
    assert_usage_error(gunyah("decode", "--rm", "VM_START", "--rm-payload", "zz"), "not hex")


TEMPLATES = [bytes(4), vmid_word(), vmid_word(0x81), config_image(),
             struct.pack("<HBBI", VMID, 1, 0, 0), struct.pack("<HBBI", VMID, 0, 0, 0),
             struct.pack("<HH", 3, 0) + b"svm\0"]  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([*MESSAGES, ID["MEM_RECLAIM"]]),
                          st.one_of(st.sampled_from(TEMPLATES), st.binary(max_size=48)),
                          st.booleans()), max_size=25))  # fmt: skip
def test_any_sequence_of_requests_is_answered_once_each(steps) -> None:
    """Valid and hostile requests in any order, power-offs between them: one
    reply a request, notifications numbered in order, states the RM has."""
    rig = Rig()
    rig.send("VM_ALLOCATE", bytes(4))  # the parcel service shares with VMs that exist
    share(rig)
    rig.place(guest_tree())
    numbers = []
    for msg_id, payload, power_off in steps:
        out = rig.send(msg_id, payload)
        assert [m[0] for m in out].count(rm.TYPE_REPLY) == 1
        numbers += [m[1] for m in out if m[0] == rm.TYPE_NOTIFICATION]
        if power_off:
            rig.hyp.on_vm_exit(VMID, 1, 0)
            numbers += [m[1] for m in assemble(list(rig.rm.outbox))]
            rig.rm.outbox.clear()
        assert all(vm.state in rm.VM_STATES for vm in rig.rm.vms.values())
    assert numbers == list(range(len(numbers)))
