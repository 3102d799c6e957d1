"""A second VM in a boot: our VM manager module (/dev/gunyah) and our VMM
run the measured guest (tests/guests/secondary/vmmio.S) in the booted
primary, carried in with `--initramfs-file` and started with `--run`."""

from __future__ import annotations

import re
from pathlib import Path

import fdt
import pytest
from boot_helpers import _TMP, boot, no_orphans, qemus_in  # noqa: F401

from gunyah import outcome, render
from gunyah.abi.errors import Error
from gunyah.boot import modules
from gunyah.boot.kernel import find_parts
from gunyah.boot.modules import VM_MANAGER_SOURCE
from gunyah.rm import vm_config
from gunyah.toolchain import VMM_ELF, build, flat_binary
from gunyah.vmm.devicetree import VmTree
from gunyah.vmm.devicetree import build as build_tree

SECONDARY = Path(__file__).resolve().parent / "guests" / "secondary"
WATCH_MODULE = Path(__file__).resolve().parent / "modules" / "watch.c"

# docs/real-gunyah.md section 13: the owner's view of the measured guest,
# as our VMM prints it (a write's value is the 8 bytes vcpu_run gave)
MEASURED = [
    "vmm: mmio write 0x6000 8 0x5100000000008001",
    "vmm: mmio write 0x6008 8 0x10000eff",
    "vmm: mmio write 0x6010 8 0x80001000",
    "vmm: mmio read 0x6018 8 -> 0x1122334455667788",
    "vmm: mmio write 0x6020 8 0x1122334455667788",
    "vmm: mmio read 0x6028 4 -> 0xa5a5a5a5",
    "vmm: mmio write 0x602c 4 0xa5a5a5a5",
    "vmm: mmio write 0x6030 1 0x1122334455667788",
    "vmm: exit powered-off type 1 reason 0x0",
]


@pytest.fixture(scope="module")
def vm_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    out = tmp_path_factory.mktemp("vm")
    elf = build([SECONDARY / "vmmio.S"], out / "vmmio.elf",
                ("-Wl,-T," + str(SECONDARY / "secondary.ld"),))  # fmt: skip
    image, dtb = out / "image", out / "dtb"
    image.write_bytes(flat_binary(elf))
    dtb.write_bytes(build_tree(VmTree(image_name="vmmio")))
    return image, dtb


@pytest.fixture(scope="module")
def vm_boot(vm_files: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
            ) -> tuple[int, list[str], str]:  # fmt: skip
    """One boot of the measured guest through our module and VMM: its status,
    console and stderr, once its QEMU is known reaped."""
    image, dtb = vm_files
    tmp = tmp_path_factory.mktemp("boot")
    _TMP.append(tmp)
    try:
        status, d, err = boot(
            "--persona", "gunyah-qemu", "--module", str(VM_MANAGER_SOURCE),
            "--initramfs-file", f"{VMM_ELF}:/vmm", "--initramfs-file", f"{image}:/vm/image",
            "--initramfs-file", f"{dtb}:/vm/dtb", "--run", "/vmm /vm/image /vm/dtb",
        )  # fmt: skip
    finally:
        _TMP.pop()
    assert qemus_in(tmp) == [], "a QEMU outlived its boot"
    assert list(tmp.iterdir()) == [], "a boot left files behind"
    return status, d["console"], err


def test_create_vm_is_the_rms_vm_allocate_and_close_tears_it_down(
    vm_boot: tuple[int, list[str], str],
) -> None:
    _, console, err = vm_boot
    assert any("gunyah-vm: /dev/gunyah ready" in ln for ln in console), err
    assert "gunyah-boot: loaded gunyah_vm.ko" in console
    allocated = [ln for ln in console if "gunyah-vm: VM_ALLOCATE gave VMID" in ln]
    assert len(allocated) == 1 and allocated[0].endswith("VMID 0x80")  # the first dynamic one
    assert sum("gunyah-vm: VM 128 torn down" in ln for ln in console) == 1
    assert console.index("gunyah-boot: init done") > max(
        i for i, ln in enumerate(console) if "torn down" in ln)  # fmt: skip


def test_the_rm_is_waited_on_with_its_interrupts_not_polled(
    vm_boot: tuple[int, list[str], str],
) -> None:
    """The module takes each reply and notification on the RM's receive
    interrupt (SPI 0xc1 of the boot's tree, which the model raises and the
    shim sets pending): every receive of the VM's whole life found a message,
    none the queue empty; and the vCPU's wake-up interrupt came when the RM
    powered it on (VM_START)."""
    _, console, err = vm_boot
    counts = [re.fullmatch(r".*gunyah-vm: RM interrupts: (\d+) rx, (\d+) tx, (\d+) wake-up; "
                           r"(\d+) empty receives", ln) for ln in console]  # fmt: skip
    said = [tuple(int(n) for n in m.groups()) for m in counts if m]
    assert len(said) == 1, err
    rx, _tx, wake, empty = said[0]
    assert rx >= 8 and wake >= 1 and empty == 0, said


def test_the_vmm_sees_the_measured_exits(vm_boot: tuple[int, list[str], str]) -> None:
    status, console, _ = vm_boot
    said = [ln for ln in console if ln.startswith("vmm: ")]
    assert [ln for ln in said if ln.startswith(("vmm: mmio", "vmm: exit"))] == MEASURED
    assert said[-1] == "vmm: done" and "gunyah-boot: run exited 0" in console
    assert status == 0


# What the hostile VMM (tests/vmms/hostile.c) is answered: the errno the
# series gives (android14-6.1 drivers/virt/gunyah: vm_mgr.c, vm_mgr_mm.c,
# gunyah_vcpu.c) or, where it has no such check, ours (E2BIG for a region
# over 1 GiB, EINVAL for a vCPU id past 7, a run page bigger than a page)
HOSTILE = {
    "open": "= 0", "create_vm_type_1": "errno 22", "dev_unknown_ioctl": "errno 25",
    "create_vm": "= 0", "region_null": "errno 14", "region_flags": "errno 22",
    "region_zero": "errno 22", "region_size_unaligned": "errno 22",
    "region_gpa_unaligned": "errno 22", "region_uaddr_unaligned": "errno 22",
    "region_overflow": "errno 75", "region_unmapped": "errno 14", "region_huge": "errno 7",
    "region": "= 0", "region_same_label": "errno 17", "region_overlap": "errno 17",
    "dtb_zero": "errno 22", "dtb_overflow": "errno 75", "dtb_null": "errno 14",
    "fn_unknown_type": "errno 2", "fn_arg_too_big": "errno 22", "fn_vcpu_arg_size": "errno 22",
    "fn_vcpu_arg_pointer": "errno 14", "fn_vcpu_id_8": "errno 22", "fn_vcpu": "= 0",
    "fn_vcpu_again": "errno 17", "vcpu_mmap_size": "= 4096", "vcpu_mmap_two_pages": "errno 22",
    "vcpu_mmap_offset": "errno 22", "vcpu_unknown_ioctl": "errno 22",
    "vm_unknown_ioctl": "errno 25", "start_without_dtb": "errno 22",
    "run_without_dtb": "errno 22",
    # then 2 MiB lent and a page shared to a VM it starts: the lent page
    # read is a SIGBUS (Linux's answer to the synchronous external abort the
    # hypervisor injects: arch/arm64/mm/fault.c, BUS_OBJERR 3), the shared one
    # reads, and the lent one reads again once the VM is torn down and its
    # parcel reclaimed: as 0, since the RM accepts a VM's image parcel with
    # SANITIZE (vm_creation.c, process_image_memparcel); an ioeventfd and an
    # irqfd bound when it goes, their eventfd closed after it
    "lend_dtb_read": "= 0", "lend_region": "= 0", "lend_share_region": "= 0",
    "lend_dtb": "= 0", "lend_vcpu": "= 0", "lend_start": "= 0",
    "lend_ioeventfd": "= 0", "lend_irqfd": "= 0", "lent_read": "errno 1",
    "lent_signal": "= 7", "lent_code": "= 3", "shared_read": "= 90",
    "reclaimed_read": "= 0", "reclaimed_signal": "= 0", "eventfd_after_vm": "= 0",
    "done": "= 0",
}  # fmt: skip
SPIN = (0x1400_0000).to_bytes(4, "little")  # b . : a guest that never stops


def test_a_hostile_vmm_and_a_killed_one_leave_the_host_working(
    vm_files: tuple[Path, Path],
    tmp_path: Path,  # fmt: skip
) -> None:
    """Nonsense to every ioctl gets its errno; a VMM killed while its guest
    spins has its VM stopped with force, reset, its memory reclaimed and the
    VM deallocated; the next VMM runs the measured guest as before."""
    image, dtb = vm_files
    hostile = build([Path(__file__).resolve().parent / "vmms" / "hostile.c"],
                    tmp_path / "hostile.elf",
                    ("-Wl,-e,_start", "-Os", f"-I{VMM_ELF.parent}"))  # fmt: skip
    spin = tmp_path / "spin"
    spin.write_bytes(SPIN)
    status, d, err = boot(
        "--persona", "gunyah-qemu", "--module", str(VM_MANAGER_SOURCE),
        "--initramfs-file", f"{VMM_ELF}:/vmm", "--initramfs-file", f"{hostile}:/hostile",
        "--initramfs-file", f"{spin}:/vm/spin", "--initramfs-file", f"{image}:/vm/image",
        "--initramfs-file", f"{dtb}:/vm/dtb",
        "--run", "/hostile; /vmm /vm/spin /vm/dtb & sleep 3; kill -9 $!; wait $!; "
                 'echo "killed: $?"; /vmm /vm/image /vm/dtb',
    )  # fmt: skip
    console = d["console"]
    tries = [re.fullmatch(r"hostile: (\w+) (errno \d+|= \d+)", ln) for ln in console]
    said = {m[1]: m[2] for m in tries if m}
    assert said == HOSTILE, err
    assert "killed: 137" in console  # SIGKILL ended it, inside GH_VCPU_RUN
    assert sum("gunyah-vm: VM 128 torn down" in ln for ln in console) == 4
    assert not any("not reclaimed" in ln or "did not reset" in ln for ln in console)
    last = console[console.index("killed: 137") :]
    assert [ln for ln in last if ln.startswith(("vmm: mmio", "vmm: exit"))] == MEASURED
    assert "gunyah-boot: run exited 0" in console and status == 0


def test_boot_vm_runs_a_raw_binary_and_reports_its_console_and_end(tmp_path: Path) -> None:
    """`gunyah boot --vm IMAGE`: our VMM emulates the PL011 our tree names
    (the guest's stores to its data register come out as the VMM's console
    lines, not as mmio exits); the VM's console, its PLATFORM_OFF and the
    VMM's end reach --json and the text report, and the trace names each
    call's VM, the secondary's SYSTEM_OFF among the primary's vcpu_runs."""
    elf = build([SECONDARY / "console.S"], tmp_path / "console.elf",
                ("-Wl,-T," + str(SECONDARY / "secondary.ld"),))  # fmt: skip
    image = tmp_path / "image"
    image.write_bytes(flat_binary(elf))
    # 64 MiB: past what small pages fit in one parcel; the VMM's huge pages do
    status, d, err = boot("--persona", "gunyah-qemu", "--vm", str(image), "--vm-memory", "64M")
    said = [ln for ln in d["console"] if ln.startswith("vmm: ") and "started" not in ln]
    ended = ["vmm: exit powered-off type 1 reason 0x0", "vmm: vcpu_run returned 7 times"]
    assert said[:3] == ["vmm: console hi vm", *ended] and said[4:] == ["vmm: done"], err
    life = said[3].removeprefix("vmm: life cycle ").removesuffix(" us")
    assert life.isdigit() and d["vm"]["life_cycle_us"] == int(life) > 0
    assert status == 0 and d["problem"] is None
    v = d["vm"]
    assert (v["image"], v["kind"], v["memory"], v["base"]) == (str(image), "raw", 64 << 20,
                                                                0x8000_0000)  # fmt: skip
    assert v["vmid"] == 0x80  # the RM's first dynamic VMID
    assert v["console"] == ["hi vm"] and v["exits"] == 7  # six bytes to the PL011, SYSTEM_OFF
    assert v["end"] == {"status": "powered-off", "exit_type": 1, "exit_type_name": "PLATFORM_OFF",
                        "reason": 0, "reason_name": "NORMAL"}  # fmt: skip
    assert (v["vmm"], v["vmm_status"], v["ok"], v["problem"]) == ("done", 0, True, None)
    assert v["own_manager"] is False and "gunyah-boot: loaded gunyah_vm.ko" in d["console"]
    hyp = v["hypervisor_end"]  # the model's own record agrees with the VMM's word
    assert (hyp["exit_type"], hyp["reason"]) == (v["end"]["exit_type"], v["end"]["reason"])
    calls = d["calls"]
    assert {c["vmid"] for c in calls} == {3, 0x80}
    (off,) = [i for i, c in enumerate(calls) if c["vmid"] == 0x80]
    assert calls[off]["name"] == "PSCI_SYSTEM_OFF" and calls[off]["cpu"] == 0
    # served inside the primary's vcpu_run that came back powered off, exited
    assert calls[off + 1]["name"] == "vcpu_run" and calls[off + 1]["results"][1:3] == [2, 1]
    text = render.boot_report(d, False, True)
    assert "  | hi vm" in text and "exit type PLATFORM_OFF (1), reason NORMAL (0x0)" in text
    assert "  vm0x80 cpu0 0x0000000080000020 hvc #0x0 x0=0x84000008 PSCI_SYSTEM_OFF" in text
    assert "  vm0x3 cpu0 " in text


def test_a_vm_that_crashes_makes_the_boot_exit_6(tmp_path: Path) -> None:
    """An undefined instruction with no vectors: the VM halts with a fault,
    ends as SOFTWARE_ERROR, and the boot that would exit 0 says so and exits
    EXIT_VM_FAILED. The VM manager is the user's (--no-vm-manager with
    --module), as the Linux series' would be: here ours under another file
    name stands in for it, and it is the only one inserted (ours beside it
    would fail to load, its module name taken)."""
    image = tmp_path / "udf"
    image.write_bytes(bytes(4))  # udf #0, and VBAR_EL1 0 lies outside the VM's memory
    standin = tmp_path / "standin_vm.ko"
    standin.write_bytes(modules.build(VM_MANAGER_SOURCE, find_parts().headers).read_bytes())
    status, d, err = boot("--vm", str(image), "--vm-memory", "2M", "--no-vm-manager",
                          "--module", str(standin))  # fmt: skip
    assert status == outcome.EXIT_VM_FAILED == 6, err
    console = d["console"]
    assert "gunyah-boot: loaded standin_vm.ko" in console
    assert not any("gunyah_vm.ko" in ln for ln in console)
    assert sum("gunyah-vm: /dev/gunyah ready" in ln for ln in console) == 1
    v = d["vm"]
    assert v["own_manager"] and v["started"]
    assert v["memory"] == 2 << 20 and v["console"] == [] and not v["ok"]
    assert (v["end"]["status"], v["end"]["exit_type_name"]) == ("crashed", "SOFTWARE_ERROR")
    assert v["hypervisor_end"]["exit_type_name"] == "SOFTWARE_ERROR"
    assert d["problem"] == v["problem"] == "the VM ended crashed: SOFTWARE_ERROR, reason NORMAL"
    assert d["verdict"] == "supported" and d["stopped_by"] == "poweroff"
    text = render.boot_report(d, False, False).splitlines()
    assert "vm problem: the VM ended crashed: SOFTWARE_ERROR, reason NORMAL" in text
    assert not any(ln.startswith("problem: ") for ln in text)  # said once


def test_a_secondary_with_two_vcpus_starts_the_second_with_cpu_on(tmp_path: Path) -> None:
    """`--vm-cpus 2`: our tree names two cpus, the RM makes two vCPUs, our VMM
    runs each in a thread of its own; vCPU 0's PSCI CPU_ON starts vCPU 1 at
    its entry with its context in x0 and its own MPIDR (aff0 1, bit 31), the
    two share the VM's memory, CPU_ON of a vCPU that is on answers
    ALREADY_ON (-4), 300 writes of any value to the SGI registers are each
    taken by the hypervisor and the guest goes on, and vCPU 0's SYSTEM_OFF
    ends the VM whatever vCPU 1 does (tests/guests/secondary/smp.S)."""
    elf = build([SECONDARY / "smp.S"], tmp_path / "smp.elf",
                ("-Wl,-T," + str(SECONDARY / "secondary.ld"),))  # fmt: skip
    image = tmp_path / "smp"
    image.write_bytes(flat_binary(elf))
    status, d, err = boot("--persona", "gunyah-qemu", "--smp", "2", "--vm", str(image),
                          "--vm-cpus", "2")  # two physical CPUs: the vCPUs run at once
    said = [ln for ln in d["console"] if ln.startswith("vmm: ") and "mmio" in ln]
    assert [ln for ln in said if not ln.startswith("vmm: cpu1 ")] == [
        "vmm: mmio write 0x7000 8 0x0",  # CPU_ON: SUCCESS
        "vmm: mmio write 0x7008 8 0x5eee",  # vCPU 1's store, seen by vCPU 0
        "vmm: mmio write 0x7018 8 0xfffffffffffffffc",  # ALREADY_ON
        "vmm: mmio write 0x7020 8 0x12c"], (said, err)  # 300 SGI register writes, taken
    # vCPU 1's MPIDR, said before it could store what vCPU 0 saw (the two
    # run at once: vCPU 0's first line may come before it or after)
    mine = "vmm: cpu1 mmio write 0x7010 8 0x80000001"
    assert said.count(mine) == 1 and said.index(mine) < said.index(
        "vmm: mmio write 0x7008 8 0x5eee"), said
    v = d["vm"]
    assert status == 0 and v["ok"] and v["cpus"] == 2, (v["problem"], err)
    assert v["end"]["exit_type_name"] == "PLATFORM_OFF"
    calls = [(c["name"], c["cpu"]) for c in d["calls"] if c["vmid"] == 0x80]  # its vCPU's
    assert [n for n, cpu in calls if cpu == 0] == ["PSCI_CPU_ON", "PSCI_CPU_ON", "PSCI_SYSTEM_OFF"]
    assert [n for n, cpu in calls if cpu == 1] in ([], ["PSCI_CPU_OFF"])  # before the end, or not
    assert "2 vCPUs" in render.boot_report(d, False, False)


def test_a_linux_secondary_with_two_vcpus_boots_to_our_init_and_powers_off() -> None:
    """The boot's own kernel as the secondary (docs/boot.md sections 14 and
    15): it finds our VMM's PL011 as a device (the AMBA bus reads its IDs,
    its driver binds, /dev/console works), brings up its second vCPU with
    PSCI CPU_ON and its IPIs (SGIs through the vGIC), unpacks our initramfs,
    runs our /init, whose line (with the 2 CPUs it runs on) reaches the
    boot's report through the VM's console, and powers off with PSCI
    SYSTEM_OFF: the VM ends PLATFORM_OFF and the boot exits 0. `quiet`: the
    kernel's own lines would cost two exits a character."""
    status, d, err = boot("--persona", "gunyah-qemu", "--smp", "2", "--vm",
                          str(find_parts().image), "--vm-cpus", "2",
                          "--vm-cmdline", "console=ttyAMA0 quiet")  # fmt: skip
    v = d["vm"]
    assert status == 0 and d["problem"] is None, (v["problem"], v["console"][-20:], err)
    assert (v["kind"], v["memory"], v["ok"]) == ("linux", 128 << 20, True)
    assert v["end"]["exit_type_name"] == v["hypervisor_end"]["exit_type_name"] == "PLATFORM_OFF"
    assert v["initrd"]["ours"] and v["initrd"]["address"] % 4096 == 0
    inits = [ln for ln in v["console"] if ln.startswith("gunyah-vm-init: pid 1 up ")]
    assert len(inits) == 1 and v["init_seconds"] is not None and v["init_seconds"] > 0
    assert v["init_cpus"] == v["cpus"] == 2
    assert any(ln.endswith("reboot: Power down") for ln in v["console"])
    calls = [c["name"] for c in d["calls"] if c["vmid"] == 0x80]
    assert calls[-1] == "PSCI_SYSTEM_OFF" and "PSCI_VERSION" in calls and "PSCI_CPU_ON" in calls


# What the hostile guest (tests/guests/secondary/confine.S) reports, in order:
# an external abort at its own vector (ESR_EL1 EC 0x25, IL, FSC 0x10; FAR the
# address) for each read or write of what is not its own, an instruction
# abort (EC 0x21) for its jump into the primary's RAM, VMMIO reads for the
# GIC and fw_cfg (in its VMMIO window), then 0 registers of its own changed
# and 0 of its debug and PMU checks failed,
# then the INTIDs its vGIC gave it for the SPI it set pending and its timers
CONFINED = [
    *(f"vmm: mmio write {at:#x} 8 {v:#x}" for addr in (0x4000_0000, 0x4020_0000, 0x7FE0_0000,
                                                       0x7FF1_0000, 0x7FFE_2000)
      for at, v in ((0x7000, 0x9600_0010), (0x7008, addr))),
    "vmm: mmio write 0x7000 8 0x86000010", "vmm: mmio write 0x7008 8 0x40000000",
    "vmm: mmio read 0x8000000 8 -> 0x0", "vmm: mmio read 0x9020000 8 -> 0x0",
    "vmm: mmio write 0x7010 8 0x0",
    "vmm: mmio write 0x7020 8 0x0",  # its debug and PMU registers its own (section 19)
    "vmm: mmio write 0x7018 8 0x28",  # its SPI 8 (ID 40), through its vGIC
    "vmm: mmio write 0x7018 8 0x1b",  # its virtual timer's PPI 27, through its vGIC
    "vmm: mmio write 0x7018 8 0x1e",  # its EL1 physical timer's PPI 30 (section 20)
    "vmm: mmio write 0x7028 8 0x0",  # a timer's PPI pending only while its level holds
    "vmm: mmio read 0x7030 8 -> 0x0", "vmm: the same again 99 times",  # a poll: one line
    "vmm: exit powered-off type 1 reason 0x0",
]  # fmt: skip


def test_a_secondary_reaches_nothing_but_its_own_and_both_worlds_keep_their_registers(
    tmp_path: Path,
) -> None:
    """The world switch (docs/boot.md section 12) with a hostile guest: its
    reads and writes of the primary's RAM, the shim, a mailbox and its own
    stage-2 tables, and a jump into the primary's RAM, each get the external
    abort at its own vector; the GIC and fw_cfg are only VMMIO exits. Its 100
    ms spin is ended "ready" by the host's interrupts again and again (the
    primary keeps running: the boot ends as it should), its odd EL1, timer
    and FP/SIMD registers are its own after every switch, and our VMM's
    registers (Q0..Q31, FPCR, TPIDR_EL0, TPIDRRO_EL0, CNTKCTL_EL1's EL0
    counter access) are its own after every vcpu_run: it fails with
    CALLER_STATE otherwise. Its debug registers and PMU are its own too
    (docs/boot.md section 19), while the primary has a watchpoint and a
    cycle counter on every CPU, which it finds as it left them."""
    image = build([SECONDARY / "confine.S"], tmp_path / "confine.elf",
                  ("-Wl,-T," + str(SECONDARY / "secondary.ld"),))  # its ELF, as --vm takes one
    status, d, err = boot("--persona", "gunyah-qemu", "--vm", str(image), "--vm-memory", "2M",
                          "--module", str(WATCH_MODULE))  # fmt: skip
    said = [ln for ln in d["console"] if ln.startswith(("vmm: mmio", "vmm: exit", "vmm: the"))]
    assert said == CONFINED, err
    # the primary's watchpoint and cycle counters (tests/modules/watch.c),
    # on every CPU while the guest runs: the guest read none of them as its
    # own (CONFINED's 0x7020), and the primary finds them as it left them:
    # the watchpoints see each write after the guest's runs as before them
    # (a hit or two more than writes, before any VM too, as the kernel
    # counts them under QEMU: a shim that left the primary's watchpoint
    # unrestored lost most), and the cycle counters count
    console = d["console"]
    first = next(i for i, ln in enumerate(console) if ln.startswith("vmm: mmio"))
    found = [(i, re.search(r"gunyah-watch: (\d+) writes, (\d+) seen, cycles (\w+)", ln))
             for i, ln in enumerate(console)]  # fmt: skip
    counts = [(i, int(m[1]), int(m[2]), m[3]) for i, m in found if m]
    assert sum(i > first for i, *_ in counts) >= 1, counts
    assert all(seen >= writes for _, writes, seen, _ in counts), counts
    assert all(cycles == "counted" for *_, cycles in counts), counts
    assert status == 0 and d["problem"] is None and d["stopped_by"] == "poweroff"
    v = d["vm"]
    assert (v["vmm"], v["vmm_status"], v["ok"], v["kind"]) == ("done", 0, True, "elf")
    runs = [c["results"] for c in d["calls"] if c["name"] == "vcpu_run" and c["vmid"] == 3]
    ready = [r for r in runs if r[:2] == [0, 0]]  # error OK, state READY
    assert len(ready) >= 5, runs  # 100 ms of spinning, 10 ms slices at the most
    assert runs[-1][1:3] == [2, 1]  # powered off, exited


# What the irqfd VMM (tests/vmms/irqfd.c) is answered and hears: the series'
# errnos (android14-6.1 drivers/virt/gunyah/vm_mgr.c, gunyah_irqfd.c,
# gunyah_ioeventfd.c; the handlers' comparison v14's: docs/boot.md section
# 18), the guest's accesses that
# no ioeventfd took, each ioeventfd's count, the guest's readiness, the
# interrupt ID it took (the RM's first virq for a VM, 960), its end
# The guest's ioeventfd accesses that reach the VMM, in order: at 0x7100 a
# value no handler has (0x66), 0, a read, a length no handler has, a byte
# whose register is not the handler's value (0x101 against 1: the whole
# register is compared); a read where a handler has no DATAMATCH; a write
# where one was removed
ACCESSES = [
    ("io_write_7100_4", "= 102"), ("io_write_7100_4", "= 0"), ("io_read_7100_4", "= 0"),
    ("io_write_7100_2", "= 85"), ("io_write_7100_1", "= 257"), ("io_read_7200_8", "= 0"),
    ("io_write_7300_4", "= 0"),
]  # fmt: skip
IRQFD = {
    "image": "= 0", "dtb": "= 0", "create_vm": "= 0", "region": "= 0", "dtb_config": "= 0",
    "vcpu": "= 0", "arg_size": "errno 22", "arg_pointer": "errno 14",
    "reserved_flag": "errno 22", "no_such_fd": "errno 9", "not_an_eventfd": "errno 22",
    "bind": "= 0", "bind_clearable": "= 0", "same_label": "errno 17", "no_doorbell": "= 0",
    "remove_unknown": "= 0",
    "io_arg_size": "errno 22", "io_reserved_flag": "errno 22", "io_len_3": "errno 22",
    "io_len_0_datamatch": "errno 22", "io_no_such_fd": "errno 9", "io_not_an_eventfd": "errno 22",
    "io_datamatch": "= 0", "io_datamatch_byte": "= 0",
    # v14 compares the value: one handler per address, length and value
    "io_same_value": "errno 17", "io_other_value": "= 0", "io_remove_other_value": "= 0",
    "io_any_length_there": "errno 17",  # length 0 collides with every length at its address
    "io_any": "= 0",
    "io_wraps": "= 0", "io_remove_wraps": "= 0",  # the series' overflow check never fails
    "io_then_removed": "= 0", "io_remove": "= 0", "io_remove_unknown": "= 0",
    "io_remove_other_bytes": "= 0",
    "io_cap": "= 61", "io_over_cap": "errno 28", "io_cap_removed": "= 0",  # 64 a VM, ours
    "io_count_datamatch": "= 1",  # 0x55 only
    "io_count_datamatch_byte": "= 1",  # a register of 1 only
    "io_count_any": "= 2",  # any length, any value
    "io_count_never": "errno 11",  # removed before the guest wrote there: EAGAIN
    "ready": "= 0", "intid": "= 960", "exit_type": "= 1", "remove": "= 0", "done": "= 0",
}  # fmt: skip


def test_the_host_rings_a_secondary_through_an_irqfd_while_it_waits(tmp_path: Path) -> None:
    """GH_FN_IRQFD end to end (docs/boot.md section 16): the VM's tree asks
    the RM for a doorbell (a `doorbell` vdevice, peer-default, label 0); the
    guest enables the doorbell's SPI, says it is ready and waits in WFI
    (vcpu_run: EXPECTS_WAKEUP, and our module sleeps on the wake-up
    interrupt); another process signals the eventfd, our module rings the
    doorbell (doorbell_send on the owner's cap, from that process's CPU), the
    model makes the SPI pending and wakes the vCPU, raising its wake-up
    interrupt in the primary within that call; the guest takes ID 960 and
    powers off. An irqfd without a doorbell rings nothing, and the hostile
    bindings get the series' errnos. GH_IRQFD_LEVEL's doorbell_mask needs
    the receive right, which the RM gives the owner only with
    source-can-clear (vm_config.c configure_doorbell_with_peer): without it
    (label 0) the mask is refused and the module warns, as the series does;
    with it (label 1) it is taken. GH_FN_IOEVENTFD in the same boot (docs/boot.md
    section 18): before it waits, the guest writes where the VMM bound
    ioeventfds; the writes a handler matches signal its eventfd inside
    GH_VCPU_RUN (vcpu_run returned them, the VMM never sees them), the rest
    and every read reach the VMM as MMIO exits, and the hostile bindings get
    the series' errnos."""
    elf = build([SECONDARY / "doorbell.S"], tmp_path / "doorbell.elf",
                ("-Wl,-T," + str(SECONDARY / "secondary.ld"),))  # fmt: skip
    image = tmp_path / "image"
    image.write_bytes(flat_binary(elf))
    tree = vm_config.load(build_tree(VmTree(image_name="doorbell")))
    assert tree is not None
    vdevices = fdt.Node("vdevices")
    for label in (0, 1):
        bell = fdt.Node(f"bell{label}")
        bell.append(fdt.PropStrings("vdevice-type", "doorbell"))
        bell.append(fdt.Property("peer-default"))
        bell.append(fdt.PropWords("label", label))
        if label:
            bell.append(fdt.Property("source-can-clear"))
        vdevices.append(bell)
    config = vm_config.find(tree, "/gunyah-vm-config")
    assert config is not None
    config.append(vdevices)
    dtb = tmp_path / "dtb"
    dtb.write_bytes(vm_config.serialize(tree.fdt.root))
    vmm = build([Path(__file__).resolve().parent / "vmms" / "irqfd.c"], tmp_path / "irqfd.elf",
                ("-Wl,-e,_start", "-Os", f"-I{VMM_ELF.parent}"))  # fmt: skip
    status, d, err = boot(
        "--persona", "gunyah-qemu", "--module", str(VM_MANAGER_SOURCE),
        "--initramfs-file", f"{vmm}:/irqfd", "--initramfs-file", f"{image}:/vm/image",
        "--initramfs-file", f"{dtb}:/vm/dtb", "--run", "/irqfd",
    )  # fmt: skip
    console = d["console"]
    tries = [re.fullmatch(r"irqfd: (\w+) (errno \d+|= \d+)", ln) for ln in console]
    access = ("io_read_", "io_write_")
    said = {m[1]: m[2] for m in tries if m and not m[1].startswith(access)}
    runs = int(said.pop("runs").removeprefix("= "))
    assert said == IRQFD, err
    assert [(m[1], m[2]) for m in tries if m and m[1].startswith(access)] == ACCESSES
    # ready, seven accesses, the INTID, the end; a wake-up's look again at most
    assert 10 <= runs <= 13, runs
    # the doorbell rung once; the irqfd without one said so, once, and rang nothing
    assert any(ln.endswith("gunyah-vm: irqfd: 1 doorbell sends") for ln in console), console
    # four writes signalled in the kernel: vcpu_run returned them, the VMM never saw them
    assert any(ln.endswith("gunyah-vm: ioeventfd: 4 signals") for ln in console), console
    assert sum("premature injection of interrupt 9" in ln for ln in console) == 1
    assert "gunyah-boot: run exited 0" in console and status == 0
    calls = [c for c in d["calls"] if c["vmid"] == 3]
    names = [c["name"] for c in calls]
    masks = [c["results"][0] for c in calls if c["name"] == "doorbell_mask"]  # GH_IRQFD_LEVEL's
    assert masks == [Error.CSPACE_INSUFFICIENT_RIGHTS, 0]  # label 0's, then label 1's
    assert sum("irq 0 couldn't be set as level triggered" in ln for ln in console) == 1
    writes = [c["results"][2] for c in calls
              if c["name"] == "vcpu_run" and c["results"][1] == 5]  # fmt: skip
    assert [w for w in writes if 0x7100 <= w < 0x7400] == [0x7100] * 6 + [0x7200] * 2 + [0x7300]
    (send,) = [i for i, n in enumerate(names) if n == "doorbell_send"]
    assert calls[send]["results"][:2] == [0, 0]  # OK, no flags before
    waits = [i for i, c in enumerate(calls[:send])
             if c["name"] == "vcpu_run" and c["results"][1] == 1]  # fmt: skip
    assert waits, "the vCPU was not waiting when the doorbell rang"
    after = [c["results"][1] for c in calls[send:] if c["name"] == "vcpu_run"]
    # the INTID's store (runs the host's interrupts end come back ready), then powered off
    assert [s for s in after if s != 0][:1] == [5] and after[-1] == 2, after
