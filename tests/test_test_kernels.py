"""`gunyah boot` with kernels that are not Linux: bare-metal test kernels of
our own, built here with the pip-installed compiler, booted as ELF and as raw
binaries on the shim and the model, and judged by the status they report."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from boot_helpers import _TMP, boot, no_orphans, run_boot  # noqa: F401
from cli_helpers import assert_usage_error

from gunyah.boot import layout, machine
from gunyah.toolchain import SHIM_DIR, build

BOOT_GUESTS = Path(__file__).resolve().parent / "boot_guests"
LOAD_AT = layout.KERNEL_ADDR  # where an Image goes: bare.ld's address
FLAGS = ("-mcpu=generic-neon-fp_armv8", "-mstrict-align", f"-Wl,-T,{BOOT_GUESTS / 'bare.ld'}",
         f"-I{SHIM_DIR}")  # bare.h includes the boot's layout.h
PERSONAS = ["kvm", "gunyah", "gunyah-qemu"]


@pytest.fixture(scope="module")
def kernels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Each test kernel as an ELF, and as a raw binary beside it (NAME.bin)."""
    out = tmp_path_factory.mktemp("test-kernels")
    built = {}
    forms = {name: (name, ()) for name in ("psci_test", "selftest", "testdev_exit", "cpu_off")}
    for waker in ("none", "timer", "cpu"):
        forms[f"wfi_{waker}"] = ("wfi", (f"-DWAKER=WAKER_{waker.upper()}",))
    for name, (source, defines) in forms.items():
        elf = build([BOOT_GUESTS / f"{source}.c"], out / f"{name}.elf", (*FLAGS, *defines))
        raw = out / f"{name}.bin"
        p = subprocess.run([sys.executable, "-m", "ziglang", "objcopy", "-O", "binary", str(elf),
                            str(raw)], capture_output=True, text=True)  # fmt: skip
        assert p.returncode == 0, p.stderr
        built[name], built[f"{name}.bin"] = elf, raw
    return built


def lines(d: dict[str, Any], prefix: str) -> list[str]:
    return [ln for ln in d["console"] if ln.startswith(prefix)]


def boot_test_kernel(kernels: dict[str, Path], name: str, form: str, *args: str
                     ) -> tuple[int, dict[str, Any]]:  # fmt: skip
    where = ["--kernel", str(kernels[name])]
    if form == "raw":
        where = ["--kernel", str(kernels[f"{name}.bin"]), "--kernel-addr", hex(LOAD_AT)]
    rc, d, _ = boot(*where, "--smp", "4", "--timeout", "30", *args)
    return rc, d


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("form", ["elf", "raw"])
def test_the_psci_test_kernel_passes(kernels: dict[str, Path], persona: str, form: str) -> None:
    rc, d = boot_test_kernel(kernels, "psci_test", form, "--persona", persona)
    results = lines(d, "psci-test: ")
    assert results[-1] == "psci-test: SUMMARY 5 tests, 0 failures", results
    assert all(r.endswith(" PASS") for r in results[:-1]) and len(results) == 6
    assert (rc, d["stopped_by"], d["guest_status"], d["kernel"]) == (0, "poweroff", 0, form)
    assert d["modules"] == [] and d["verdict"] is None  # nothing of ours ran in it
    # every call names its vCPU; CPUs 1 and 2 raced each other to CPU_ON CPU 3
    assert {c["cpu"] for c in d["calls"]} == {0, 1, 2, 3}
    racers = {c["cpu"] for c in d["calls"] if c["name"] == "PSCI_CPU_ON"
              and c["arguments"][0] == 3}  # fmt: skip
    assert racers == {1, 2}


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("form", ["elf", "raw"])
def test_the_selftest_kernel_passes(kernels: dict[str, Path], persona: str, form: str) -> None:
    """Its own exceptions stay its own (an undefined instruction, an SVC), a
    branch past the end of its RAM is a prefetch abort, and SMP comes up."""
    rc, d = boot_test_kernel(kernels, "selftest", form, "--persona", persona)
    results = lines(d, "selftest: ")
    assert results == [f"selftest: {n} PASS" for n in ("undef", "svc", "prefetch-abort", "smp")
                       ] + ["selftest: SUMMARY 4 tests, 0 failures"]  # fmt: skip
    assert (rc, d["stopped_by"], d["guest_status"]) == (0, "poweroff", 0)


def test_chr_testdev_carries_the_guests_exit_status(kernels: dict[str, Path]) -> None:
    rc, d, _ = boot("--kernel", str(kernels["testdev_exit"]), "--testdev", "--timeout", "30")
    assert (rc, d["stopped_by"], d["guest_status"], d["problem"]) == (7, "guest-exit", 7, None)
    rc, d, _ = boot("--kernel", str(kernels["testdev_exit"]), "--timeout", "30")
    assert lines(d, "testdev-exit: ") == ["testdev-exit: no chr-testdev"]
    assert (rc, d["stopped_by"], d["guest_status"]) == (0, "poweroff", 0)  # SYSTEM_OFF is 0


def test_a_guest_with_every_cpu_off_is_halted_at_once(kernels: dict[str, Path]) -> None:
    rc, d, _ = boot("--kernel", str(kernels["cpu_off"]), "--timeout", "60")
    assert d["stopped_by"] == "halted" and d["boot_seconds"] < 30
    assert d["guest_status"] is None and rc == 0
    p = run_boot("--kernel", str(kernels["cpu_off"]), "--timeout", "60")
    assert "cpu-off: turning the last CPU off" in p.stdout
    assert "guest status: none reported" in p.stdout


def test_a_guest_waiting_with_nothing_to_wake_it_is_halted_at_once(
    kernels: dict[str, Path],
) -> None:
    """Its only enabled interrupts are the SPIs only the host raises, during
    some vCPU's call (the shim's configuration names where they start): with
    every vCPU waiting, none can come."""
    rc, d, _ = boot("--kernel", str(kernels["wfi_none"]), "--timeout", "60")
    assert lines(d, "wfi: ") == ["wfi: CPU 0 waits"]
    assert (rc, d["stopped_by"], d["guest_status"]) == (0, "halted", None)
    assert d["halted_because"].startswith("every vCPU that is on (0) waits in WFI")
    assert d["boot_seconds"] < 30
    p = run_boot("--kernel", str(kernels["wfi_none"]), "--timeout", "60")
    assert "halted: every vCPU that is on (0) waits in WFI with nothing to wake it" in p.stdout


@pytest.mark.parametrize("persona", PERSONAS)
def test_a_timer_wakes_a_waiting_guest(kernels: dict[str, Path], persona: str) -> None:
    """An armed timer the GIC passes on is something to wake it: not halted."""
    rc, d, _ = boot("--kernel", str(kernels["wfi_timer"]), "--persona", persona,
                    "--timeout", "60")  # fmt: skip
    assert lines(d, "wfi: ") == ["wfi: CPU 0 waits", "wfi: the timer woke CPU 0"]
    assert (rc, d["stopped_by"], d["halted_because"]) == (0, "poweroff", None)


def test_another_cpu_can_wake_a_waiting_one(kernels: dict[str, Path]) -> None:
    """CPU 0 waits with nothing to wake it, but CPU 1 runs: no halt, though
    CPU 1 takes twice the grace; its SGI wakes CPU 0, which powers off."""
    rc, d, _ = boot("--kernel", str(kernels["wfi_cpu"]), "--smp", "2", "--timeout", "60")
    assert lines(d, "wfi: ") == ["wfi: CPU 0 waits", "wfi: CPU 1 sends CPU 0 an SGI",
                                 "wfi: CPU 0 woke"]  # fmt: skip
    assert (rc, d["stopped_by"]) == (0, "poweroff")
    assert d["boot_seconds"] > machine.WAIT_GRACE


def test_the_command_line_is_the_users_when_they_give_it() -> None:
    """--cmdline replaces ours entirely (the kernel says what it was given)."""
    own = "console=ttyAMA0 rdinit=/init panic=-1 gunyah-test=yes"
    rc, d, _ = boot("--cmdline", own, "--append", "and-more", "--no-identify")
    assert f"Kernel command line: {own} and-more" in " ".join(d["console"])
    assert rc == 0 and d["stopped_by"] == "poweroff"


def test_the_guest_sees_the_memory_it_is_given() -> None:
    rc, d, _ = boot("--memory", "256M", "--no-identify")
    assert rc == 0 and "/262144K available" in " ".join(d["console"])


@pytest.mark.parametrize(("size", "fragment"), [
    ("3", "a guest is given 16 to 1022 MiB"), ("1023M", "1022 MiB"), ("17M", "steps of 2 MiB"),
    ("lots", "not a size"),
])  # fmt: skip
def test_memory_a_guest_cannot_be_given_is_refused(size: str, fragment: str) -> None:
    assert_usage_error(run_boot("--memory", size), fragment)


def test_the_device_tree_holds_any_command_line(kernels: dict[str, Path]) -> None:
    rc, d, _ = boot("--kernel", str(kernels["psci_test"]), "--smp", "4", "--cmdline", "")
    assert rc == 0


@pytest.mark.parametrize(("target", "args", "fragment"), [
    ("source", [], "give its load address with --kernel-addr"),  # a C file: not a kernel
    ("raw", ["--kernel-addr", "0x40000000"], "outside the guest's RAM"),  # QEMU's device tree
    ("raw", ["--kernel-addr", hex(layout.SHIM_BASE)], "outside the guest's RAM"),
    ("raw", ["--kernel-addr", "0x40200002"], "not 4-byte aligned"),
])  # fmt: skip
def test_what_cannot_be_booted_is_refused_before_qemu(
    kernels: dict[str, Path], target: str, args: list[str], fragment: str
) -> None:
    path = BOOT_GUESTS / "cpu_off.c" if target == "source" else kernels["cpu_off.bin"]
    assert_usage_error(run_boot("--kernel", str(path), *args), fragment)


def test_an_elf_or_image_takes_no_load_address(kernels: dict[str, Path]) -> None:
    assert_usage_error(run_boot("--kernel", str(kernels["cpu_off"]), "--kernel-addr",
                                "0x40200000"), "--kernel-addr is for raw binaries")  # fmt: skip


def test_a_test_kernel_takes_no_modules(kernels: dict[str, Path]) -> None:
    assert_usage_error(run_boot("--kernel", str(kernels["cpu_off"]), "--module",
                                str(BOOT_GUESTS / "cpu_off.c")), "not a Linux Image")  # fmt: skip
