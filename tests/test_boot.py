"""`gunyah boot`: a real arm64 Linux kernel in a real QEMU on the model.

These boot the kernel `gunyah boot-setup` fetched (the README's test command
runs it first); each boot takes a few seconds.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from boot_helpers import _TMP, boot, boots_in, no_orphans, run_boot, shared_boot, shared_run_boot  # noqa: F401
from cli_helpers import COMMAND, assert_usage_error, gunyah

from gunyah import render
from gunyah.boot.kernel import cache_dir
from gunyah.conduit import RESET_STATUS
from gunyah.guest.references import DEFAULT_REFERENCE
from gunyah.model import PERSONAS, get_persona
from gunyah.psci import CPU_ON, SYSTEM_OFF, fn32, fn64

MODULES = Path(__file__).resolve().parent / "modules"


def names(d: dict[str, Any]) -> list[str | None]:
    return [c["name"] for c in d["calls"]]


@pytest.mark.parametrize(("persona", "status"), [("gunyah", 0), ("kvm", 1)])
def test_the_boots_exit_status_is_the_modules_verdict(persona: str, status: int) -> None:
    rc, d, _ = shared_boot("--persona", persona)
    assert d["verdict"] == DEFAULT_REFERENCE.expected_verdict(get_persona(persona))
    assert d["modules"][0] == {**d["modules"][0], "name": "gunyah_identify.ko", "loaded": True}
    assert rc == d["exit_status"] == status
    assert any("psci: PSCIv1.1 detected in firmware." in ln for ln in d["console"])


def test_gunyah_banner_and_the_kernels_own_uid_call() -> None:
    rc, d, _ = shared_boot("--persona", "gunyah")
    assert rc == 0
    assert any(ln.endswith("Running under Gunyah hypervisor 51/v1") for ln in d["console"])
    uid_calls = [c for c in d["calls"] if c["name"] == "VENDOR_HYP_CALL_UID"]
    # the kernel's own SMCCC probe, then our module's: both get the Gunyah UID
    assert len(uid_calls) >= 2
    words = [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]
    assert all(c["results"][:4] == words for c in uid_calls)
    assert "hypervisor_identify" in names(d)
    assert all(c["conduit"] == "hvc" and c["imm"] == 0 for c in d["calls"])


def test_kvm_persona_is_detected_by_the_kernel_itself() -> None:
    rc, d, _ = shared_boot("--persona", "kvm")
    assert rc == 1
    assert any("smccc: KVM: hypervisor services detected" in ln for ln in d["console"])
    assert "KVM_FEATURES" in names(d)


def test_second_cpu_comes_up_through_psci_cpu_on() -> None:
    rc, d, _ = boot("--smp", "2")
    assert rc == 0
    on = [c for c in d["calls"] if c["function_id"] == fn64(CPU_ON)]
    assert len(on) == 1 and on[0]["arguments"][0] == 1 and on[0]["results"][0] == 0
    assert on[0]["cpu"] == 0  # each call names its vCPU: the second makes its own
    assert {c["cpu"] for c in d["calls"]} == {0, 1}
    assert any("CPU1: Booted secondary processor" in ln for ln in d["console"])
    assert any("SMP: Total of 2 processors activated" in ln for ln in d["console"])
    assert d["actions"][0]["kind"] == "cpu_on" and d["actions"][0]["cpu"] == 1


def test_smc_conduit() -> None:
    rc, d, _ = boot("--method", "smc")
    assert rc == 0
    # Gunyah's hypercalls go over HVC whatever the conduit, as the driver makes them
    hypercalls = {"hypervisor_identify", "msgqueue_send", "msgqueue_receive"}
    smccc = [c for c in d["calls"] if c["name"] not in hypercalls]
    assert smccc and all(c["conduit"] == "smc" for c in smccc)
    assert {c["conduit"] for c in d["calls"] if c["name"] in hypercalls} == {"hvc"}
    assert d["verdict"] == "supported"


def test_system_reset_ends_the_boot_with_the_reset_status() -> None:
    rc, d, _ = boot("--module", str(MODULES / "reset.c"))
    assert rc == RESET_STATUS
    assert d["stopped_by"] == "reset"
    assert names(d)[-1] == "PSCI_SYSTEM_RESET2"
    assert d["actions"][-1]["kind"] == "system_reset"
    assert d["actions"][-1]["reset_type"] == 0 and d["actions"][-1]["cookie"] == 0x5EED


def test_a_users_module_is_built_against_the_kernels_headers_and_loaded() -> None:
    rc, d, _ = boot("--module", str(MODULES / "hello.c"))
    assert rc == 0
    hello = d["modules"][1]
    assert hello["name"] == "hello.ko" and hello["loaded"] is True
    assert any("hello-module: built for 6.1" in ln for ln in hello["log"])


def test_a_panic_gives_125_and_the_panic_lines_not_a_hang() -> None:
    rc, d, _ = boot("--module", str(MODULES / "panic.c"), "--timeout", "60")
    assert rc == 125
    assert d["stopped_by"] == "panic"
    assert d["boot_seconds"] < 30
    assert any(
        "Kernel panic - not syncing: panic-module: asked to panic" in ln for ln in d["console"]
    )
    # its text form: test_a_capture_that_never_gets_out boots the same module without --json


def test_a_kernel_that_never_powers_off_is_stopped_at_the_timeout() -> None:
    rc, d, _ = boot("--module", str(MODULES / "hang.c"), "--timeout", "8")
    assert rc == 125
    assert d["stopped_by"] == "timeout"
    assert 8 <= d["boot_seconds"] < 20
    assert d["modules"][1]["loaded"] is None


def test_the_text_report_names_the_verdict_and_lists_calls_with_trace() -> None:
    p = shared_run_boot("--trace")
    assert p.returncode == 0, p.stderr
    assert "Running under Gunyah hypervisor 51/v1" in p.stdout
    assert "verdict: supported" in p.stdout
    assert f"x0={fn32(SYSTEM_OFF):#x} PSCI_SYSTEM_OFF" in p.stdout


def test_boot_calls_read_back_by_trace_stats(tmp_path: Path) -> None:
    p = shared_run_boot("--trace")
    log = tmp_path / "boot.log"
    log.write_text(p.stdout)
    s = gunyah("trace", "stats", str(log), "--json")
    assert s.returncode == 0, s.stderr
    stats = json.loads(s.stdout)
    assert stats["calls"] == int(p.stdout.split("calls: ")[1].split()[0]) >= 10
    assert stats["malformed"]["count"] == 0
    assert "PSCI_SYSTEM_OFF" in {c["name"] for c in stats["by_call"]}


# -- bad input ----------------------------------------------------------------
def test_not_an_arm64_image(tmp_path: Path) -> None:
    bad = tmp_path / "Image"
    bad.write_bytes(b"MZ" + b"\0" * 100)
    assert_usage_error(gunyah("boot", "--kernel", str(bad)),
                       "neither an arm64 Linux Image nor an ELF")  # fmt: skip
    bad.write_bytes(b"\x7fELF" + b"\0" * 100)
    assert_usage_error(gunyah("boot", "--kernel", str(bad)), "corrupt ELF: class 0")
    bad.write_bytes(b"\x7fELF\x01" + b"\0" * 100)
    assert_usage_error(gunyah("boot", "--kernel", str(bad)), "a 32-bit ELF")


def test_a_module_that_does_not_build_names_the_file_and_the_error() -> None:
    p = run_boot("--module", str(MODULES / "broken.c"))
    assert p.returncode == 2
    assert "broken.c does not build" in p.stderr
    assert "no_such_function_anywhere" in p.stderr
    assert "Traceback" not in p.stderr


def test_modules_built_in_one_go_are_each_cached_and_a_broken_one_stops_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from gunyah.boot import modules

    headers = cache_dir() / "default" / "headers"
    monkeypatch.setenv("GUNYAH_CACHE", str(tmp_path))  # an empty module cache
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the builds work
    sources = [MODULES / "hello.c", MODULES / "broken.c", MODULES / "hang.c"]
    modules.build_all(sources, headers)
    cached = sorted(p.name for p in (tmp_path / "modules").glob("*/*.ko"))
    assert cached == ["hang.ko", "hello.ko"]
    assert modules.build(MODULES / "hello.c", headers).parent.parent == tmp_path / "modules"
    assert "no_such_function_anywhere" in str(
        pytest.raises(modules.ModuleError, modules.build, MODULES / "broken.c", headers).value)
    assert not list(scratch.iterdir())  # nothing of the builds is left


def test_a_module_with_another_kernels_vermagic(tmp_path: Path) -> None:
    from gunyah.boot.modules import IDENTIFY_SOURCE, build

    ko = build(IDENTIFY_SOURCE, cache_dir() / "default" / "headers").read_bytes()
    other = tmp_path / "other.ko"
    other.write_bytes(ko.replace(b"vermagic=6.1.0-", b"vermagic=9.9.9-"))
    assert_usage_error(gunyah("boot", "--module", str(other)), "was built for another kernel")


def test_not_a_module(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ko"
    junk.write_bytes(b"not an ELF at all")
    assert_usage_error(gunyah("boot", "--module", str(junk)), "is not a kernel module")


def test_missing_qemu_says_the_setup_command(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": str(tmp_path)}
    p = subprocess.run([*COMMAND, "boot"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 125
    assert p.stderr.strip().count("\n") == 0
    assert "gunyah boot-setup" in p.stderr


def test_missing_kernel_says_the_setup_command(tmp_path: Path) -> None:
    env = {**os.environ, "GUNYAH_CACHE": str(tmp_path / "empty")}
    p = subprocess.run([*COMMAND, "boot"], capture_output=True, text=True, env=env, timeout=60)
    assert p.returncode == 125
    assert "gunyah boot-setup" in p.stderr and "--kernel" in p.stderr


def test_unknown_persona_and_bad_smp() -> None:
    assert gunyah("boot", "--persona", "hyper-v").returncode == 2
    assert_usage_error(gunyah("boot", "--smp", "0"), "--smp takes 1 to 8")


def test_setup_is_idempotent() -> None:
    if shutil.which("qemu-system-aarch64") is None:
        pytest.fail("gunyah boot-setup has not run: the README's test command runs it first")
    p = gunyah("boot-setup")
    assert p.returncode == 0
    assert "already set up" in p.stderr


def test_ctrl_c_stops_the_boot_and_reaps_qemu() -> None:
    import signal
    import time

    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    proc = subprocess.Popen([*COMMAND, "boot", "--module", str(MODULES / "hang.c")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not boots_in(_TMP[-1]) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert proc.poll() is None, f"the boot ended early: {proc.communicate()}"
        assert boots_in(_TMP[-1]), "QEMU never started"
        time.sleep(1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("persona", "verdict", "rc"),
    [("gunyah", "gunyah-guest", 0), ("kvm", "other-hypervisor", 1), ("none", "no-evidence", 1)],
)
def test_probe_capture_from_inside_the_guest(tmp_path: Path, persona: str, verdict: str,
                                             rc: int) -> None:  # fmt: skip
    cap = tmp_path / "capture.tar.gz"
    status, d, err = boot("--persona", persona, "--capture-probe", str(cap))
    assert d["capture_bytes"] and d["capture_problem"] is None, err
    p = gunyah("probe", "--root", str(cap), "--json")
    assert p.returncode == rc, p.stderr
    report = json.loads(p.stdout)
    assert report["verdict"] == verdict
    found = " ".join(e["meaning"] for e in report["evidence"] if e["status"] == "found")
    if persona == "gunyah":
        assert "a Gunyah hypervisor node" in found and "Running under Gunyah hypervisor" in found
    if persona == "kvm":
        assert "the kernel names the hypervisor: KVM" in found
    # the capture holds what the probe read, not the guest's whole tree
    assert len(cap.read_bytes()) < 64 << 10


def test_probe_capture_refusals(tmp_path: Path) -> None:
    existing = tmp_path / "c.tar.gz"
    existing.write_bytes(b"mine")
    assert_usage_error(gunyah("boot", "--capture-probe", str(existing)), "already exists")
    assert existing.read_bytes() == b"mine"
    assert_usage_error(
        gunyah("boot", "--capture-probe", str(tmp_path / "new.tgz"), "--initrd", str(existing)),
        "cannot go with --initrd",
    )


STANDIN = MODULES / "standin_gunyah.c"  # a documented stand-in for the VM manager


@pytest.mark.parametrize(
    ("abi", "created", "refused"),
    [("upstream", "upstream", None), ("vendor", "vendor", None), ("einval", None, "EINVAL")],
)
def test_the_active_check_on_a_real_kernel(tmp_path: Path, abi: str, created: str | None,
                                           refused: str | None) -> None:  # fmt: skip
    """The program `probe --active` runs, run by the collector in the guest's
    init, against a /dev/gunyah that answers one ABI: the VM it makes is
    destroyed at once, and the probe names the ABI that answered."""
    cap = tmp_path / "capture.tar.gz"
    status, d, err = boot("--module", str(STANDIN), "--module-args", f"standin_gunyah=abi={abi}",
                          "--capture-probe", str(cap), "--probe-active")  # fmt: skip
    assert status == 0 and d["capture_problem"] is None, err
    said = [ln.split("gunyah-standin: ", 1)[1] for ln in d["console"] if "gunyah-standin: " in ln]
    report = json.loads(gunyah("probe", "--root", str(cap), "--json").stdout)
    answers = {a["abi"]: a for a in report["active"]["answers"]}
    assert report["active"]["opened"] is True and set(answers) == {"upstream", "vendor"}
    if created:
        assert said == [f"created a VM (ioctl {0x4700 if abi == 'upstream' else 0xB201:#x})",
                        "VM destroyed"]  # fmt: skip
        assert answers[created]["created"] is True
        assert answers[created]["vm_fd"] == "anon_inode:gunyah-vm"
        other = "vendor" if created == "upstream" else "upstream"
        assert answers[other]["errno_name"] == "ENOTTY"
        assert report["driver_generation"] == created
        assert any(f"{created} (" in c and "just now" in c for c in report["can_create"])
    else:
        assert said == ["refused a VM (ioctl 0x4700)"]
        assert answers["upstream"]["errno_name"] == refused
        assert "created no VM with either ABI" in " ".join(report["in_the_way"])


def test_no_vm_is_created_unless_asked(tmp_path: Path) -> None:
    cap = tmp_path / "capture.tar.gz"
    status, d, err = boot("--module", str(STANDIN), "--capture-probe", str(cap))
    assert status == 0, err
    assert d["capture_problem"] is None and d["console"]
    assert not any("gunyah-standin:" in ln for ln in d["console"])
    assert json.loads(gunyah("probe", "--root", str(cap), "--json").stdout)["active"] is None


def test_active_and_module_args_refusals(tmp_path: Path) -> None:
    assert_usage_error(gunyah("boot", "--probe-active"), "add --capture-probe FILE")
    assert_usage_error(gunyah("boot", "--module-args", "standin_gunyah=abi=vendor"),
                       "no --module is named standin_gunyah")  # fmt: skip
    for bad in ("standin_gunyah", "standin_gunyah=abi=$(reboot)", "standin_gunyah=a=*"):
        assert_usage_error(gunyah("boot", "--module", str(STANDIN), "--module-args", bad),
                           "give NAME=PARAMS")  # fmt: skip


# -- the conformance matrix on the real kernel -------------------------------
def conformance(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    return subprocess.run([*COMMAND, "conformance", "--kernel", *args], capture_output=True,
                          text=True, env=env, timeout=600, stdin=subprocess.DEVNULL)  # fmt: skip


def test_kernel_matrix_our_module_passes_every_persona(tmp_path: Path) -> None:
    """`gunyah conformance --kernel`: every persona booted, each row our
    module's verdict, its log, how the boot ended and the calls behind it."""
    import xml.etree.ElementTree as ET

    junit = tmp_path / "matrix.xml"
    p = conformance("--junit", str(junit), "--json")
    assert p.returncode == 0, p.stderr
    d = json.loads(p.stdout)
    assert (d["total"], d["failed"]) == (len(PERSONAS), 0)
    assert {r["persona"] for r in d["rows"]} == {p.name for p in PERSONAS}
    assert all(r["calls"] and r["seconds"] > 0 for r in d["rows"])
    suite = ET.parse(junit).getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == len(PERSONAS) and suite.get("failures") == "0"
    assert all(c.find("failure") is None and "PSCI_SYSTEM_OFF" in c.find("system-out").text
               for c in cases if c.get("name") != "none")  # fmt: skip
    for row in d["rows"]:
        _a_row_reaches_the_personas_verdict(row)


def _a_row_reaches_the_personas_verdict(row: dict[str, Any]) -> None:
    persona = row["persona"]
    expected = DEFAULT_REFERENCE.expected_verdict(get_persona(persona))
    assert (row["expected"], row["observed"], row["passed"]) == (expected, expected, True), persona
    log = row["module_log"]
    assert any(f"gunyah-verdict: {expected}" in line for line in log), persona
    # under Gunyah, the resource manager answered through the queues, its
    # buffers followed through the kernel's own page tables
    rm_lines = [line for line in log if "gunyah-rm:" in line]
    assert rm_lines == (["gunyah-rm: VMID 3"] if expected == "supported" else []), persona
    # a clean end: SYSTEM_OFF reached the model, or, without PSCI, the kernel's power-down
    assert row["stopped_by"] == ("halted" if persona == "none" else "poweroff"), persona
    calls = row["calls"]
    if persona != "none":
        assert calls[-1]["name"] == "PSCI_SYSTEM_OFF", persona
        # PSCI 1.1 (dirty-upper's upper half is not part of the answer)
        assert any(c["name"] == "PSCI_VERSION" and c["results"][0] & 0xFFFF_FFFF == 0x10001
                   for c in calls), persona  # fmt: skip
    else:
        assert all(c["results"][0] == 0xFFFF_FFFF_FFFF_FFFF for c in calls), persona


def test_kernel_matrix_a_failing_row_does_not_stop_the_others(tmp_path: Path) -> None:
    import xml.etree.ElementTree as ET

    junit = tmp_path / "matrix.xml"
    personas = ["--persona", "kvm", "--persona", "none"]
    p = conformance(
        "--module", str(MODULES / "picky.c"), *personas, "--junit", str(junit), "--json"
    )
    assert p.returncode == 1, p.stderr
    rows = {r["persona"]: r for r in json.loads(p.stdout)["rows"]}
    assert rows["none"]["passed"]
    kvm = rows["kvm"]
    assert not kvm["passed"] and kvm["observed"] == "panic"
    assert kvm["reason"] == "the kernel panicked"
    assert any("picky: KVM is not for me" in ln for ln in kvm["console"])
    assert any(c["name"] == "VENDOR_HYP_CALL_UID" for c in kvm["calls"])
    failure = ET.parse(junit).getroot().find(".//testcase[@name='kvm']/failure")
    assert failure is not None and "expected not-gunyah, observed panic" in failure.get("message")
    assert "picky: KVM is not for me" in failure.text


def test_kernel_matrix_a_module_with_no_verdict_fails_its_rows() -> None:
    p = conformance("--module", str(MODULES / "hello.c"), "--persona", "gunyah", "--json")
    assert p.returncode == 1
    d = json.loads(p.stdout)
    row = d["rows"][0]
    assert row["observed"] == "no verdict"
    assert "gunyah-verdict" in row["reason"]
    # the text form renders the same report (cli/conformance.py)
    text = render.matrix(d)
    assert "FAIL" in text and "no verdict" in text


def test_kernel_matrix_bad_jobs() -> None:
    assert_usage_error(conformance("--jobs", "0"), "--jobs must be at least 1")
    assert_usage_error(conformance("--jobs", "100000"), "parallel boots need up to")
    assert_usage_error(gunyah("conformance", "--module", str(MODULES / "hello.c")),
                       "--module goes with --kernel")  # fmt: skip


def test_kernel_matrix_ctrl_c_reaps_every_qemu() -> None:
    import signal
    import time

    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    proc = subprocess.Popen([*COMMAND, "conformance", "--kernel", "--jobs", "2"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        deadline, booting = time.monotonic() + 60, 0
        while booting < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            booting = boots_in(_TMP[-1])
        assert booting >= 2, "two boots never ran at once"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err


def test_a_capture_that_never_gets_out(tmp_path: Path) -> None:
    cap = tmp_path / "c.tar.gz"
    p = run_boot("--module", str(MODULES / "panic.c"), "--capture-probe", str(cap))
    assert p.returncode == 125
    assert p.stderr.strip() == "gunyah: no probe capture: the guest never began sending its capture"
    assert not cap.exists()
    # the panic's text report (test_a_panic_gives_125_and_the_panic_lines_not_a_hang: --json)
    assert "Kernel panic - not syncing" in p.stdout
    assert "stopped: panic" in p.stdout


def test_initrd_that_is_not_a_file(tmp_path: Path) -> None:
    assert_usage_error(gunyah("boot", "--initrd", "/dev/zero"), "not a regular file")
    assert_usage_error(gunyah("boot", "--initrd", str(tmp_path / "none")), "not a regular file")


def test_a_host_side_that_dies_ends_the_boot(monkeypatch: pytest.MonkeyPatch) -> None:
    """An error in the host's answer ends the boot at once, with QEMU reaped."""
    from gunyah.boot import machine
    from gunyah.boot.kernel import find_parts
    from gunyah.model import Hypervisor
    from gunyah.toolchain import SHIM_ELF

    def broken(self: object, *args: object) -> None:
        raise RuntimeError("the model broke")

    monkeypatch.setattr(Hypervisor, "handle", broken)
    monkeypatch.setenv("TMPDIR", str(_TMP[-1]))
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", None)  # TMPDIR is read again
    result = machine.boot(machine.BootOptions(timeout=60), find_parts(), SHIM_ELF)
    assert result.stopped_by == "host-error"
    assert result.exit_status == 125
    assert "the model broke" in result.problem
    assert result.boot_seconds < 30


def test_a_module_that_is_neither_c_nor_ko(tmp_path: Path) -> None:
    odd = tmp_path / "mod.txt"
    odd.write_text("not a module")
    for command in (["boot"], ["conformance", "--kernel"]):
        assert_usage_error(gunyah(*command, "--module", str(odd)), "takes a .c or .ko file")
