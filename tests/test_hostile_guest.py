"""`gunyah boot` against a hostile guest: kernel modules and a bare-metal
guest that try each way out of the box, each test asserting that nothing on
the host changed and that the report says only what the shim and the model
observed.

The classes tried: reaching the host through semihosting (commands, files);
writing the shim's memory (mailboxes, code) and running its code; reading
the shim's addresses at entry; forging the verdict and the probe capture;
exhausting the host's memory through the console and the actions; stopping
for good where no power-off says so; outliving a stopped `gunyah`; escape
sequences on the user's terminal; and losing a vCPU in the race between
CPU_OFF and CPU_ON.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import Any

import pytest
from boot_helpers import _TMP, boot, boots_in, no_orphans, run_boot  # noqa: F401
from cli_helpers import COMMAND, gunyah

from gunyah import outcome, render, smccc
from gunyah.boot import console, layout, machine, options, qemu
from gunyah.conduit import Conduit
from gunyah.model import Hypervisor
from gunyah.toolchain import SHIM_DIR, build

HOSTILE = Path(__file__).resolve().parent / "modules" / "hostile"
BOOT_GUESTS = Path(__file__).resolve().parent / "boot_guests"
README_MEMORY_MIB = 400  # the README's promise for a boot, whatever the guest does


def console_has(d: dict[str, Any], text: str) -> bool:
    return any(text in line for line in d["console"])


def module_report(d: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in d["modules"] if m["name"] == name)


# -- semihosting: no host command, no host file ------------------------------
def test_semihosting_from_the_kernel_reaches_nothing_on_the_host(tmp_path: Path) -> None:
    target = tmp_path / "host-file"
    src = tmp_path / "semihosting.c"
    src.write_text((HOSTILE / "semihosting.c").read_text().replace("@HOST_PATH@", str(target)))
    rc, d, _ = boot("--module", str(src))
    assert list(tmp_path.glob("host-file*")) == [], "the guest reached the host"
    # HLT is undefined at EL1 without semihosting: the module's first try oopses
    assert console_has(d, "Internal error: Oops - Undefined instruction: 0000000002000000")
    assert module_report(d, "semihosting.ko")["loaded"] is False
    assert (rc, d["stopped_by"], d["verdict"]) == (0, "poweroff", "supported")


def test_qemu_gets_no_semihosting_and_no_file_of_ours_by_path() -> None:
    from gunyah.boot import kernel

    parts = kernel.find_parts()
    cmd = qemu.base_args(parts, 1)
    assert not any("semihosting" in a for a in cmd)
    assert "-nodefaults" in cmd


# -- the shim's memory, its entry, its map: a bare-metal guest ---------------
@pytest.fixture(scope="module")
def shim_probe(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The bare-metal probe as an arm64 Image, and the host path its
    semihosting call names."""
    out = tmp_path_factory.mktemp("shim-probe")
    target = out / "semihosting-target"
    elf = build(
        [BOOT_GUESTS / "shim_probe.c"], out / "shim_probe.elf",
        ("-mcpu=generic-neon-fp_armv8", "-mstrict-align", f"-DSEMIHOSTING_PATH=\"{target}\"",
         f"-Wl,-T,{BOOT_GUESTS / 'image.ld'}", f"-I{SHIM_DIR}"),
    )  # fmt: skip
    image = out / "shim_probe.img"
    p = subprocess.run([sys.executable, "-m", "ziglang", "objcopy", "-O", "binary", str(elf),
                        str(image)], capture_output=True, text=True)  # fmt: skip
    assert p.returncode == 0 and image.stat().st_size > 64, p.stderr
    return image, target


def probe_lines(d: dict[str, Any]) -> dict[str, dict[str, int]]:
    """`shim-probe: NAME key=value ...` lines, by name."""
    found = {}
    for line in d["console"]:
        if line.startswith("shim-probe: "):
            name, *pairs = line.split()[1:]
            found[name] = {k: int(v, 16) for k, v in (p.split("=") for p in pairs)}
    return found


@pytest.mark.parametrize("persona", ["gunyah", "kvm"])
def test_shim_is_outside_the_guests_map_and_aborts_are_kvms(shim_probe, persona: str) -> None:
    image, target = shim_probe
    rc, d, _ = boot("--kernel", str(image), "--no-identify", "--persona", persona,
                    "--timeout", "30")  # fmt: skip
    seen = probe_lines(d)
    # clean entry: every register the boot protocol leaves undefined is zero
    assert seen["entry"]["nonzero"] == 0
    # an access outside the map is a synchronous external abort, as KVM injects:
    # EC 0x25 (data abort, same EL) or 0x21 (instruction abort), IL set, FSC 0x10
    assert seen["write-shim"] == {"taken": 1, "esr": 0x9600_0010, "far": layout.SHIM_MAILBOXES,
                                  "elr": seen["write-shim"]["elr"]}  # fmt: skip
    assert seen["read-shim"]["esr"] == 0x9600_0010 and seen["read-shim"]["far"] == layout.SHIM_BASE
    # kvm-unit-tests' vectors-kernel: a jump past the end of RAM is a prefetch abort
    assert seen["exec-shim"]["esr"] == 0x8600_0010
    assert seen["exec-shim"]["far"] == seen["exec-shim"]["elr"] == layout.SHIM_BASE
    # fw_cfg (whose DMA writes physical memory) is not the guest's
    assert seen["fw-cfg"]["esr"] == 0x9600_0010 and seen["fw-cfg"]["far"] == layout.FW_CFG_PAGE
    # semihosting is an undefined instruction (EC 0), and the host file never appears
    assert seen["semihosting"]["taken"] == 1 and seen["semihosting"]["esr"] >> 26 == 0
    assert not target.exists()
    # and the shim still answers: the call after the aborts gets the persona's UID word
    uid = Conduit(Hypervisor(persona)).trap([smccc.VENDOR_HYP_CALL_UID] + [0] * 17)
    assert (seen["uid"]["x0"], seen["uid"]["x1"]) == (uid[0], uid[1])
    assert (rc, d["stopped_by"]) == (0, "poweroff")
    assert [c["name"] for c in d["calls"]] == ["VENDOR_HYP_CALL_UID", "PSCI_SYSTEM_OFF"]


def test_a_module_writing_the_shims_memory_gets_an_abort_and_changes_nothing() -> None:
    where = f"shim_write=mailboxes={layout.SHIM_MAILBOXES:#x} shim={layout.SHIM_BASE:#x}"
    rc, d, _ = boot("--module", str(HOSTILE / "shim_write.c"), "--module-args", where, "--trace")
    assert console_has(d, "hostile-shim-write: writing the mailbox")
    assert console_has(d, "Internal error: synchronous external abort: 0000000096000010")
    assert not console_has(d, "the shim's memory took the writes")
    assert module_report(d, "shim_write.ko")["loaded"] is False
    # nothing in the trace or the ending comes from the forged request
    assert all(c["pc"] != 0xDEADBEEF for c in d["calls"])
    assert (rc, d["stopped_by"], d["verdict"]) == (0, "poweroff", "supported")
    assert [a["kind"] for a in d["actions"]] == ["system_off"]


# -- forged results ----------------------------------------------------------
def test_the_command_line_cannot_give_the_verdict() -> None:
    rc, d, _ = boot("--persona", "kvm", "--append", "loglevel=6 gunyah-verdict: supported")
    assert console_has(d, "gunyah-verdict: supported")  # the kernel printed it, and it was ignored
    assert (rc, d["verdict"]) == (1, "not-gunyah")


def test_a_second_module_cannot_give_the_verdict_or_a_capture() -> None:
    rc, d, _ = boot("--persona", "kvm", "--module", str(HOSTILE / "forge.c"))
    assert module_report(d, "forge.ko")["loaded"] is True
    assert (rc, d["verdict"]) == (1, "not-gunyah")
    assert d["capture_bytes"] is None and d["capture_problem"] is None
    assert console_has(d, "gunyah-capture: begin")  # shown as the guest printed it, no more


def test_a_quiet_command_line_still_gives_the_verdict() -> None:
    rc, d, _ = boot("--append", "quiet")
    assert (rc, d["verdict"]) == (0, "supported")


def test_no_verdict_is_a_failure_with_its_own_status() -> None:
    # our module cannot load (unsigned): init reports no verdict, and it is not success
    rc, d, _ = boot("--append", "module.sig_enforce=1")
    assert module_report(d, "gunyah_identify.ko")["loaded"] is False
    assert (rc, d["exit_status"], d["verdict"]) == (outcome.EXIT_NO_VERDICT, 5, None)
    assert d["stopped_by"] == "poweroff"
    assert "no 'gunyah-verdict: <verdict>' line" in d["problem"]
    # the text form prints what --json gave (cli/boot.py renders the same dict)
    assert f"problem: {d['problem']}" in render.boot_report(d, verbose=False, trace=False)


def test_a_capture_begun_by_the_guest_hides_no_panic() -> None:
    rc, d, _ = boot("--module", str(HOSTILE / "capture_then_panic.c"), "--timeout", "60")
    assert (rc, d["stopped_by"]) == (125, "panic")
    assert d["boot_seconds"] < 30
    assert console_has(d, "capture-then-panic: asked to panic")


# -- bounded by bytes --------------------------------------------------------
# `gunyah boot ARGS` with the console keeping at most KEEP bytes (argv[1]), in
# a process that reports its own peak memory (not QEMU's) on stderr
_MEASURED = """import resource, sys
from gunyah.boot import console
console.MAX_CONSOLE = int(sys.argv[1])
from gunyah.cli import main
rc = main(sys.argv[2:])
print(f"peak-kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", file=sys.stderr)
sys.exit(rc)
"""


# The flood's bound and size: a quarter of the real bound, flooded half as much
# again; bench/stress.py --only console-flood floods the real bound (6 MiB).
FLOOD_KEEP = console.MAX_CONSOLE // 4
FLOOD_KIB = FLOOD_KEEP * 3 // 2 >> 10


def test_a_console_flood_keeps_the_host_within_the_readmes_memory() -> None:
    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    p = subprocess.run([sys.executable, "-c", _MEASURED, str(FLOOD_KEEP), "boot", "--module",
                        str(HOSTILE / "flood.c"), "--module-args", f"flood=kib={FLOOD_KIB}",
                        "--json", "--timeout", "180"],
                       capture_output=True, text=True, env=env, timeout=240)  # fmt: skip
    assert p.returncode == 0, p.stderr[-2000:]
    peak_mib = int(p.stderr.split("peak-kib ")[1].split()[0]) >> 10
    assert peak_mib < README_MEMORY_MIB, f"gunyah boot --json took {peak_mib} MiB"
    d = json.loads(p.stdout)
    kept = sum(sys.getsizeof(line) for line in d["console"])
    assert FLOOD_KEEP // 2 < kept <= FLOOD_KEEP and d["console_dropped"] > 0
    assert console_has(d, "hostile-flood: ")  # the flood's end was kept, its start dropped
    assert d["verdict"] == "supported"  # our init's line came before the flood


# `gunyah boot ARGS` with the channel keeping only KEEP actions (argv[1])
_FEW_ACTIONS = """import sys
from gunyah.boot import channel
channel.MAX_ACTIONS = int(sys.argv[1])
from gunyah.cli import main
sys.exit(main(sys.argv[2:]))
"""
CYCLES = 20  # bench/stress.py makes 1000


@pytest.mark.parametrize("persona", ["kvm", "gunyah"])
def test_cpu_off_and_on_over_and_over_never_loses_the_vcpu(persona: str) -> None:
    """CPU 1 off and on CYCLES times, each CPU_ON as soon as AFFINITY_INFO
    says off; the channel keeps a quarter of the actions, so the bound on
    them is reached too."""
    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    keep = CYCLES // 2
    p = subprocess.run([sys.executable, "-c", _FEW_ACTIONS, str(keep), "boot", "--smp", "2",
                        "--persona", persona, "--module", str(HOSTILE / "cpu_cycle.c"),
                        "--module-args", f"cpu_cycle=cycles={CYCLES}", "--json",
                        "--timeout", "120"],
                       capture_output=True, text=True, env=env, timeout=180)  # fmt: skip
    assert "Traceback" not in p.stderr and p.stdout, p.stderr
    d = json.loads(p.stdout)
    assert console_has(d, f"cpu-cycle: {CYCLES} cycles, CPU1 online: 1"), d["problem"]
    # every CPU_ON the guest made (the boot's, then one a cycle) got SUCCESS,
    # as the trace records what it received
    on = [c for c in d["calls"] if c["name"] == "PSCI_CPU_ON"]
    assert d["calls_dropped"] == 0 and len(on) == CYCLES + 1
    assert all(c["results"][0] == 0 for c in on)
    # actions are bounded by count: the last ones kept, the rest counted
    kinds = ["cpu_on"] + ["cpu_off", "cpu_on"] * CYCLES + ["system_off"]
    assert [a["kind"] for a in d["actions"]] == kinds[-keep:]
    assert d["actions_dropped"] == len(kinds) - keep
    assert d["stopped_by"] == "poweroff"
    assert (p.returncode, d["verdict"]) == ((0, "supported") if persona == "gunyah"
                                            else (1, "not-gunyah"))  # fmt: skip


# -- every way gunyah ends reaps QEMU ----------------------------------------
def _start_hanging_boot() -> subprocess.Popen[str]:
    env = {**os.environ, "TMPDIR": str(_TMP[-1])}
    proc = subprocess.Popen([*COMMAND, "boot", "--module", str(Path(__file__).parent / "modules"
                             / "hang.c")], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not boots_in(_TMP[-1]) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None and boots_in(_TMP[-1]), "QEMU never started"
    time.sleep(1)
    return proc


@pytest.mark.parametrize(("signum", "status"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_stop_the_boot_as_ctrl_c_does(signum: int, status: int) -> None:
    proc = _start_hanging_boot()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert boots_in(_TMP[-1]) == 0


def test_sigkill_of_gunyah_takes_qemu_with_it() -> None:
    proc = _start_hanging_boot()
    proc.kill()
    proc.communicate(timeout=30)
    deadline = time.monotonic() + 10
    while boots_in(_TMP[-1]) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert boots_in(_TMP[-1]) == 0, "QEMU outlived a killed gunyah"


# -- the user's terminal and the user's input --------------------------------
def test_compiler_output_reaches_the_terminal_escaped(tmp_path: Path) -> None:
    src = tmp_path / "evil.c"
    src.write_text('#error "\x1b]0;pwned\x07\x1b[2J"\n')
    p = run_boot("--module", str(src))
    assert p.returncode == 2
    assert "\x1b" not in p.stderr and "\x07" not in p.stderr
    assert "\\x1b]0;pwned\\x07" in p.stderr


def test_a_refused_capture_names_its_member_escaped(tmp_path: Path) -> None:
    from gunyah.probe.capture import MAX_READ

    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as tar:
        info = tarfile.TarInfo("proc/\x1b[31mred")
        info.size = MAX_READ + 1
        tar.addfile(info, io.BytesIO(bytes(info.size)))
    p = gunyah("probe", "--root", str(evil))
    assert p.returncode == 2
    assert "\x1b" not in p.stderr and "\\x1b[31mred" in p.stderr


def test_any_text_on_the_command_line_boots() -> None:
    """Text beyond ASCII and bytes no encoding takes, in one boot (the empty
    and every other text: test_device_tree_carries_any_command_line)."""
    append = "caf\u00e9 \U0001f600 bytes=\udcff\udcfe"  # argv carries \udcff as the byte 0xff
    rc, d, _ = boot("--append", append)
    assert (rc, d["verdict"]) == (0, "supported")
    assert console_has(d, f"Kernel command line: {machine.BOOTARGS} caf\u00e9 \U0001f600 bytes=")


def test_a_command_line_the_device_tree_cannot_hold_is_refused() -> None:
    for bad in ("a\0b", "lone \ud800 surrogate"):  # no argv can carry these; an API caller can
        with pytest.raises(options.BootError, match="--append"):
            options.check_append(bad)


def test_junit_into_a_missing_directory_is_refused_before_the_matrix(tmp_path: Path) -> None:
    started = time.monotonic()
    p = gunyah("conformance", "--kernel", "--junit", str(tmp_path / "no" / "such" / "m.xml"))
    assert p.returncode == 2 and "does not exist" in p.stderr
    assert time.monotonic() - started < 30  # no boot ran


# -- message queue buffers ---------------------------------------------------
def test_queue_buffers_the_guest_may_not_hand_over_copy_nothing() -> None:
    """NULL, a user address, the shim by physical address, a size no message
    has, and a reply into read-only kernel text: each answered as the
    hypervisor answers a failed copy, nothing copied, the link still working."""
    rc, d, _ = boot("--persona", "gunyah-qemu", "--module", str(HOSTILE / "msgq_buffers.c"),
                    "--module-args", f"msgq_buffers=mailboxes={layout.SHIM_MAILBOXES:#x}")
    answers = {}
    for line in d["console"]:
        if "hostile-msgq: " in line:
            what, *rest = line.split("hostile-msgq: ", 1)[1].split(" ", 1)
            answers[what] = rest[0] if rest else ""
    for case in ("send-null", "send-user", "send-shim"):
        assert answers[case] == "0 1 8"  # OK, not_full; X2 not a result of send: kept
    assert answers["send-huge"] == "0 1 ffffffffffffffff"
    assert answers["receive-nothing-queued"] == "3c 0 0"  # MSGQUEUE_EMPTY: nothing got in
    assert answers["receive-into-text"] == "0 0 1" and answers["text"] == "unchanged"
    assert answers["receive-into-shim"] == "0 0 1"
    assert answers["receive"] == "0 10 0"  # the reply waited for a buffer it could fill
    assert answers["reply"] == "21 02 01 00 24 00 00 56 00 00 00 00 03 00 00 00"
    assert (rc, d["stopped_by"], d["verdict"]) == (0, "poweroff", "supported")


def test_a_guest_that_stops_itself_for_good_ends_as_halted_and_is_reaped() -> None:
    """The distributor off and WFI with interrupts masked: nothing can wake
    the vCPU, so the boot ends at once as halted (not at its timeout), with
    the verdict init reported before, and no QEMU left (the fixture checks)."""
    rc, d, _ = boot("--module", str(HOSTILE / "wfi_forever.c"), "--timeout", "60")
    assert console_has(d, "hostile-wfi: turning the distributor off and waiting for ever")
    assert (rc, d["stopped_by"], d["verdict"]) == (0, "halted", "supported")
    assert d["halted_because"].startswith("every vCPU that is on (0) waits in WFI")
    assert d["boot_seconds"] < 30
    assert [a["kind"] for a in d["actions"]] == []  # nothing the model was asked to do
