"""A secondary VM's whole life on the model, as the primary VM drives it:
its requests to the resource manager over the primary's queues, its memory
shared from the primary's RAM, its vCPU run with vcpu_run from the primary,
and the notifications of its end (docs/real-gunyah.md sections 11-13, the
measured launch). Nothing here is a stand-in: the model's hypervisor, its
RM, its parcel service and the secondary's vCPU on the unicorn engine."""

from __future__ import annotations

import struct
from pathlib import Path

import fdt
import pytest
from cli_helpers import assert_usage_error, gunyah, gunyah_json

from gunyah.abi import hvc, rm
from gunyah.abi.calls import native_imm
from gunyah.abi.devicetree import RM_LINK
from gunyah.abi.errors import Error
from gunyah.guest.rm_client import exchange, notifications, receive_all
from gunyah.guest.vm_tree import vm_device_tree
from gunyah.model import Hypervisor
from gunyah.model import vcpu_run as vr
from gunyah.vcpu.loader import Image

SRC = Path(__file__).resolve().parent / "guests" / "secondary"
ID = rm.MESSAGE_IDS
RAM_BASE, RAM_SIZE = 0x4000_0000, 0x40_0000  # the primary's RAM: IPA == PA
PARCEL, PARCEL_SIZE = RAM_BASE + 0x20_0000, 0x20_0000
BASE = 0x8000_0000  # the VM's memory base-address
DT_OFFSET = 0x1000
VCPU_RUN = native_imm(hvc.BY_NAME["vcpu_run"].number)
VM_STATUS, VM_EXITED = ID["NOTIFY_VM_STATUS"], ID["NOTIFY_VM_EXITED"]

# docs/real-gunyah.md section 13: each exit (state, x2, x3, x4) and the resume value
MEASURED = [
    ((5, 0x6000, 8, 0x5100000000008001), 0),
    ((5, 0x6008, 8, 0x10000EFF), 0),
    ((5, 0x6010, 8, BASE + DT_OFFSET), 0),
    ((4, 0x6018, 8, 0), 0x1122334455667788),
    ((5, 0x6020, 8, 0x1122334455667788), 0),
    ((4, 0x6028, 4, 0), 0xA5A5A5A5),
    ((5, 0x602C, 4, 0xA5A5A5A5), 0),
    ((5, 0x6030, 1, 0x1122334455667788), 0),
]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> Image:
    from gunyah.toolchain import build
    from gunyah.vcpu.loader import load_elf

    out = tmp_path_factory.mktemp("secondary")
    link = ("-Wl,-T," + str(SRC / "secondary.ld"),)
    return load_elf(build([SRC / "vmmio.S"], out / "vmmio.elf", link))


class Primary:
    """The primary VM's side: its RAM, its requests, its vcpu_run calls."""

    def __init__(self, image: Image, persona: str = "gunyah-qemu") -> None:
        self.hyp = Hypervisor(persona)
        self.ram = bytearray(RAM_SIZE)
        self.hyp.attach_ram(RAM_BASE, self.ram)
        for s in image.segments:  # the image at the parcel's start, the tree after it
            at = PARCEL - RAM_BASE + s.address - BASE
            self.ram[at : at + len(s.data)] = s.data
        tree = vm_device_tree()
        at = PARCEL - RAM_BASE + DT_OFFSET
        self.ram[at : at + len(tree)] = tree
        self.seq = 0
        self.notes: list[tuple[int, bytes]] = []  # every notification, as it came

    def ask(self, name: str, payload: bytes) -> tuple[int | None, bytes]:
        self.seq += 1
        x = exchange(self.hyp, ID[name], payload, self.seq)
        self.notes += [(h.msg_id, p) for h, p in notifications(x.messages)]
        return x.error, x.data

    def collect(self) -> None:
        self.notes += [(h.msg_id, p) for h, p in notifications(receive_all(self.hyp))]

    def run(self, cap: int, resume: int = 0) -> tuple[int, ...]:
        """The next vcpu_run answer that is an error or not ready (X0..X4)."""
        for _ in range(1000):
            regs = self.hyp.call(cap, resume, 0, 0, 0, imm=VCPU_RUN)
            resume = 0
            if regs[0] or regs[1] != vr.READY:
                return tuple(regs[:5])
        raise AssertionError("the vCPU only ever said ready")

    def states(self) -> list[int]:
        return [p[4] for msg_id, p in self.notes if msg_id == VM_STATUS]


def vmid_word(vmid: int) -> bytes:
    return struct.pack("<HH", vmid, 0)


def share(vmid: int) -> bytes:
    """MEM_SHARE as measured: normal memory, the VM and us RWX, one region, no attributes."""
    head = struct.pack("<BBBBIHH", 0, 0, 0, 0, 0, 2, 0)
    acl = struct.pack("<HBBHBB", vmid, 7, 0, 3, 7, 0)
    sgl = struct.pack("<HHQQ", 1, 0, PARCEL, PARCEL_SIZE)
    return head + acl + sgl + struct.pack("<HH", 0, 0)


def launch(p: Primary) -> tuple[int, int, int]:
    """Allocate to start, as measured: (VMID, parcel handle, the vCPU's cap)."""
    error, data = p.ask("VM_ALLOCATE", bytes(4))
    assert (error, data) == (0, bytes.fromhex("80000000"))
    vmid = 0x80
    error, data = p.ask("MEM_SHARE", share(vmid))
    assert error == 0 and len(data) == 4
    (handle,) = struct.unpack("<I", data)
    config = struct.pack("<HHIQQQQ", vmid, 0, handle, 0, 0x1000, DT_OFFSET, 0x10000)
    assert p.ask("VM_CONFIG_IMAGE", config) == (0, b"")
    assert p.ask("VM_INIT", vmid_word(vmid)) == (0, b"")
    assert p.ask("VM_GET_STATE", vmid_word(vmid)) == (0, bytes.fromhex("02000000"))
    error, data = p.ask("VM_GET_HYP_RESOURCES", vmid_word(vmid))
    assert error == 0 and len(data) == 4 + 44 and data[:8] == bytes.fromhex("0100000004000000")
    (cap,) = struct.unpack_from("<Q", data, 4 + 12)
    (wake_virq,) = struct.unpack_from("<I", data, 4 + 24)  # vcpu_run's wake-up interrupt
    assert wake_virq == 0x3C2  # docs/real-gunyah.md section 11: the measured one
    assert p.run(cap) == (0, vr.POWERED_OFF, 0, 0, 0)  # before VM_START
    p.hyp.vm.vic.take()
    assert p.ask("VM_START", vmid_word(vmid)) == (0, b"")
    assert p.states() == [1, 2, 3]  # INIT, READY, RUNNING, each before its reply
    # its vCPU powered on: runnable, so its wake-up virq is raised in us, the owner
    assert wake_virq in p.hyp.vm.vic.take()
    return vmid, handle, cap


def test_the_measured_launch_runs_to_its_end_and_is_torn_down(image: Image) -> None:
    p = Primary(image)
    vmid, handle, cap = launch(p)
    resume = 0
    for expected, then in MEASURED:
        assert p.run(cap, resume) == (0, *expected)
        resume = then
    # PSCI SYSTEM_OFF: powered off, exited; VM_STATUS EXITED, then VM_EXITED PLATFORM_OFF,
    # whose arrival raised the receive queue's interrupt during that vcpu_run call
    p.hyp.vm.vic.take()
    assert p.run(cap) == (0, vr.POWERED_OFF, vr.POWEROFF_EXITED, 0, 0)
    assert p.hyp.vm.vic.take() == [RM_LINK.rx_intid]
    p.collect()
    assert p.states()[-1] == 9
    assert p.notes[-1] == (VM_EXITED, bytes.fromhex("800001000400000000000000"))
    # the RM's tree in the parcel: the VM's ID and owner, its memory
    tree = fdt.parse_dtb(bytes(p.ram[PARCEL - RAM_BASE + DT_OFFSET :][:0x10000]))
    vm_node = tree.get_node("/hypervisor/qcom,gunyah-vm")
    assert vm_node.get_property("qcom,vmid").value == vmid
    assert vm_node.get_property("qcom,owner-vmid").value == 3
    assert list(tree.get_property("reg", "/memory").data) == [0, BASE, 0, PARCEL_SIZE]
    # teardown: RESETTING before the reply, MEM_RELEASED, RESET; reclaim; deallocate
    assert p.ask("VM_RESET", vmid_word(vmid)) == (0, b"")
    assert p.states()[-2:] == [10, 11]
    released = [n for n in p.notes if n[0] == ID["NOTIFY_MEM_RELEASED"]]
    assert released == [(ID["NOTIFY_MEM_RELEASED"], struct.pack("<IHHI", handle, vmid, 0, 0))]
    assert p.run(cap)[0] == Error.CSPACE_CAP_REVOKED  # the cap went with the VM
    assert p.ask("MEM_RECLAIM", struct.pack("<II", handle, 0)) == (0, b"")
    assert p.ask("VM_DEALLOCATE", vmid_word(vmid)) == (0, b"")
    assert p.ask("VM_GET_STATE", vmid_word(vmid))[0] == rm.ERROR_NORESOURCE


def test_a_forced_stop_ends_a_running_vm(image: Image) -> None:
    p = Primary(image)
    vmid, handle, cap = launch(p)
    assert p.run(cap)[1] == vr.VMMIO_WRITE
    assert p.ask("VM_STOP", struct.pack("<HBBI", vmid, 1, 0, 0)) == (0, b"")
    assert p.states()[-1] == 9
    assert p.notes[-1][0] == VM_EXITED and p.notes[-1][1][2:4] == b"\x07\x00"  # VM_STOP_FORCED
    assert p.run(cap) == (0, vr.POWERED_OFF, vr.POWEROFF_EXITED, 0, 0)
    assert p.ask("VM_RESET", vmid_word(vmid)) == (0, b"")
    assert p.ask("MEM_RECLAIM", struct.pack("<II", handle, 0)) == (0, b"")


def test_the_vm_reaches_nothing_of_the_primary_but_its_parcel(image: Image) -> None:
    """The secondary's stage 2 holds the parcel and nothing else: the primary's
    RAM around it is not the VM's, and writes there never land."""
    p = Primary(image)
    vmid, _, _ = launch(p)
    maps = p.hyp.vms[vmid].addrspace.mappings
    assert [(m.ipa, m.phys, m.size) for m in maps] == [(BASE, PARCEL, PARCEL_SIZE)]
    assert p.hyp.vms.translate(vmid, RAM_BASE, 0x1000) is None


# -- the same life cycle from the command line ------------------------------------------
def test_gunyah_rm_runs_a_life_cycle_and_shows_its_notifications(tmp_path: Path) -> None:
    tree = tmp_path / "vm.dtb"
    tree.write_bytes(vm_device_tree())
    config = struct.pack("<HHIQQQQ", 0x80, 0, 1, 0, 0x1000, DT_OFFSET, 0x10000)
    code, d = gunyah_json("rm", "--load", f"{PARCEL + DT_OFFSET:#x}:{tree}",
                          "VM_ALLOCATE", "00000000", "MEM_SHARE", share(0x80).hex(),
                          "VM_CONFIG_IMAGE", config.hex(), "VM_INIT", "80000000",
                          "VM_GET_STATE", "80000000")  # fmt: skip
    assert code == 0
    exchanges = d["exchanges"]
    assert [x["request"]["message"] for x in exchanges] == [
        "VM_ALLOCATE", "MEM_SHARE", "VM_CONFIG_IMAGE", "VM_INIT", "VM_GET_STATE"]  # fmt: skip
    assert [x["request"]["seq"] for x in exchanges] == [1, 2, 3, 4, 5]
    assert all(x["rm_error"] == 0 for x in exchanges)
    notes = [n["decoded"]["vm_state"] for x in exchanges for n in x["notifications"]]
    assert notes == [1, 2]  # INIT with the configuration, READY with the init
    assert exchanges[-1]["decoded"]["vm_state"] == 2
    text = gunyah("rm", "--load", f"{PARCEL + DT_OFFSET:#x}:{tree}", "VM_ALLOCATE",
                  "00000000", "VM_GET_STATE", "80000000").stdout  # fmt: skip
    assert "reply    reply, seq 2, RM error 0x0 OK" in text


def test_gunyah_rm_without_the_tree_shows_init_failing() -> None:
    config = struct.pack("<HHIQQQQ", 0x80, 0, 1, 0, 0x1000, DT_OFFSET, 0x10000)
    code, d = gunyah_json("rm", "VM_ALLOCATE", "00000000", "MEM_SHARE", share(0x80).hex(),
                          "VM_CONFIG_IMAGE", config.hex(), "VM_INIT", "80000000")  # fmt: skip
    assert code == 1
    init = d["exchanges"][-1]
    assert init["rm_error_name"] == "MEM_INVALID"
    assert [n["decoded"]["vm_state"] for n in init["notifications"]] == [8]  # INIT_FAILED


def test_gunyah_rm_refuses_what_it_cannot_send(tmp_path: Path) -> None:
    big = tmp_path / "big"
    big.write_bytes(bytes(0x2000))
    assert_usage_error(gunyah("rm", "VM_GET_STATE", "80000000", "03000000"), "one payload")
    assert_usage_error(gunyah("rm", "--load", "0x1000:/dev/null", "VM_GET_VMID"),
                       "outside the primary's RAM")  # fmt: skip
    end = RAM_BASE + (16 << 20) - 0x1000
    assert_usage_error(gunyah("rm", "--load", f"{end:#x}:{big}", "VM_GET_VMID"), "does not fit")
    assert_usage_error(gunyah("rm", "--load", "nowhere", "VM_GET_VMID"), "ADDR:FILE")
    assert_usage_error(gunyah("rm", "--load", f"{RAM_BASE:#x}:{tmp_path / 'none'}",
                              "VM_GET_VMID"), "cannot read")  # fmt: skip
    assert_usage_error(gunyah("rm", *["VM_GET_VMID"] * 65), "at most 64")


def test_a_lost_vm_exited_is_recovered_by_a_forced_stop(image: Image) -> None:
    """The quirk of the real one (docs/real-gunyah.md section 14), made certain:
    the power-off never reaches the RM, vcpu_run says powered off without the
    exited bit, the VM stays RUNNING and cannot be reset until a forced
    VM_STOP, which brings VM_EXITED (VM_STOP_FORCED) and the teardown back."""
    p = Primary(image, persona="gunyah-qemu-lost-exit")
    vmid, handle, cap = launch(p)
    resume = 0
    for expected, then in MEASURED:
        assert p.run(cap, resume) == (0, *expected)
        resume = then
    for _ in range(3):
        assert p.run(cap) == (0, vr.POWERED_OFF, 0, 0, 0)  # exited never set
    p.collect()
    assert not [n for n in p.notes if n[0] == VM_EXITED]
    assert p.ask("VM_GET_STATE", vmid_word(vmid)) == (0, bytes.fromhex("03000000"))
    assert p.ask("VM_RESET", vmid_word(vmid))[0] == rm.ERROR_CODES["VM_STATE"]
    assert p.ask("VM_STOP", struct.pack("<HBBI", vmid, 1, 0, 0)) == (0, b"")
    assert p.notes[-1][0] == VM_EXITED and p.notes[-1][1][2:4] == b"\x07\x00"
    assert p.run(cap) == (0, vr.POWERED_OFF, vr.POWEROFF_EXITED, 0, 0)
    assert p.ask("VM_RESET", vmid_word(vmid)) == (0, b"")
    assert p.ask("MEM_RECLAIM", struct.pack("<II", handle, 0)) == (0, b"")
