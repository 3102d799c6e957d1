"""The read-only probe on system trees that look like the real ones."""

from __future__ import annotations

import json
import os
import stat
import tarfile
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah
from hypothesis import given
from hypothesis import strategies as st

from gunyah import probe

ROOT_ONLY = pytest.mark.skipif(os.geteuid() != 0, reason="making a device node needs root")


def tree(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if name.endswith("/"):
            p.mkdir(exist_ok=True)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content)
    return root


def char_device(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.mknod(path, 0o660 | stat.S_IFCHR, os.makedev(10, 125))


ARM_CPUINFO = "processor\t: 0\nBogoMIPS\t: 38.40\nCPU implementer\t: {imp}\nCPU part\t: 0xd44\n"
ANDROID_HOST = {
    "proc/device-tree/hypervisor/compatible":
        b"qcom,gunyah-hypervisor-1.0\0qcom,gunyah-hypervisor\0simple-bus\0",
    "proc/device-tree/hypervisor/qcom,resource-manager-rpc@940e2b5e1215cfb9/compatible":
        b"qcom,resource-manager-1-0\0qcom,resource-manager\0qcom,gunyah-message-queue\0",
    "proc/device-tree/hypervisor/qcom,gunyah-vm/compatible":
        b"qcom,gunyah-vm-id-1.0\0qcom,gunyah-vm-id\0",
    "proc/modules": "gunyah 45056 3 - Live 0x0000000000000000\n"
                    "gh_virt_wdt 16384 0 - Live 0x0000000000000000\n"
                    "zram 36864 2 - Live 0x0000000000000000\n",
    "dev/kmsg": "6,301,1021,-;gunyah: Running under Gunyah hypervisor 51/v1\n"
                "6,302,1024,-;misc gunyah: VM manager ready\n",
    "proc/cpuinfo": ARM_CPUINFO.format(imp="0x51"),
    "proc/sys/kernel/osrelease": "6.1.75-android14-11-gaa1bc2e8a4e1\n",
    "sys/bus/platform/drivers/gunyah_rsc_mgr/": "",
}  # fmt: skip
LINUX_GUEST = {
    "proc/device-tree/hypervisor/compatible": b"gunyah-hypervisor\0",
    "proc/device-tree/hypervisor/gunyah-resource-mgr@0/compatible":
        b"gunyah-resource-manager-1-0\0gunyah-resource-manager\0",
    "sys/firmware/devicetree/base/hypervisor/compatible": b"gunyah-hypervisor\0",
    "var/log/kern.log": "Jan 10 09:56:11 vm kernel: [    0.000000] Booting Linux\n"
                        "Jan 10 09:56:11 vm kernel: [    0.010000] "
                        "Running under Gunyah hypervisor 48/v1\n",
    "proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"),
    "proc/modules": "",
    "sys/bus/platform/drivers/gunyah_rsc_mgr/": "",
    "proc/sys/kernel/osrelease": "6.8.0\n",
}  # fmt: skip
KVM_GUEST = {
    "proc/device-tree/hypervisor/compatible": b"linux,kvm\0",
    "sys/class/dmi/id/sys_vendor": "QEMU\n",
    "sys/class/dmi/id/product_name": "KVM Virtual Machine\n",
    "proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"),
    "proc/sys/kernel/osrelease": "6.1.0-18-arm64\n",
}
X86_SERVER = {
    "proc/cpuinfo": "processor\t: 0\nvendor_id\t: GenuineIntel\n"
    "flags\t\t: fpu vme de pse tsc msr\n",
    "sys/class/dmi/id/sys_vendor": "Dell Inc.\n",
    "sys/class/dmi/id/product_name": "PowerEdge R740\n",
    "proc/modules": "kvm_intel 380928 0 - Live 0x0000000000000000\n",
    "proc/sys/kernel/osrelease": "5.15.0-91-generic\n",
}
BROKEN = {
    "proc/device-tree/hypervisor/compatible": b"\xff\xfegunyah-hypervisor",  # no NUL
    "sys/firmware/devicetree/base/hypervisor/compatible": b"",
    "proc/modules/": "",  # a directory where a file should be
    "dev/kmsg/": "",
    "dev/gunyah": "not a device",
    "proc/cpuinfo": "CPU implementer\t: zz\n\x00\x01garbage",
    "sys/hypervisor/type": "",
    "sys/class/dmi/id/sys_vendor": b"\xff\xff",
    "proc/sys/kernel/osrelease/": "",
    "proc/version": "Linux version 6.6.0\n",
}


def by_source(report: probe.Report) -> dict[str, list[probe.Evidence]]:
    out: dict[str, list[probe.Evidence]] = {}
    for e in report.evidence:
        out.setdefault(e.source, []).append(e)
    return out


@ROOT_ONLY
def test_android_phone_hosting_gunyah(tmp_path: Path) -> None:
    root = tree(tmp_path, ANDROID_HOST)
    char_device(root / "dev/gunyah")
    r = probe.probe(str(root))
    assert r.verdict == "gunyah-host"
    assert (r.variant, r.api_version) == (0x51, 1)
    ev = by_source(r)
    assert ev["/dev/gunyah"][0].status == "found"
    assert ev["/dev/gunyah"][0].value["type"] == "char"
    assert "qcom,gunyah-hypervisor-1.0" in ev["/proc/device-tree/hypervisor/compatible"][0].value
    rm = ev["/proc/device-tree/hypervisor/qcom,resource-manager-rpc@940e2b5e1215cfb9"][0]
    assert rm.supports == "gunyah-guest" and "resource manager" in rm.meaning
    assert ev["/proc/modules"][0].value == ["gunyah", "gh_virt_wdt"]
    assert any("hint about the platform" in e.meaning for e in ev["/proc/cpuinfo"])
    assert ev["/sys/bus/*/drivers"][0].value == ["platform/gunyah_rsc_mgr"]


def test_linux_guest_of_gunyah(tmp_path: Path) -> None:
    r = probe.probe(str(tree(tmp_path, LINUX_GUEST)))
    assert r.verdict == "gunyah-guest"
    assert (r.variant, r.api_version) == (0x48, 1)
    assert "variant 48, API v1" in r.summary
    ev = by_source(r)
    assert ev["/dev/gunyah"][0].status == "absent"
    assert ev["/sys/firmware/devicetree/base/hypervisor/compatible"][0].supports == "gunyah-guest"


def test_kvm_guest(tmp_path: Path) -> None:
    r = probe.probe(str(tree(tmp_path, KVM_GUEST)))
    assert r.verdict == "other-hypervisor"
    assert "KVM" in r.to_dict()["hypervisors"]
    assert "KVM" in r.summary


def test_x86_server_without_hypervisor(tmp_path: Path) -> None:
    r = probe.probe(str(tree(tmp_path, X86_SERVER)))
    assert r.verdict == "no-evidence"
    assert "no evidence of Gunyah" in r.summary


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    r = probe.probe(str(tree(tmp_path, BROKEN)))
    ev = by_source(r)
    assert ev["/proc/device-tree/hypervisor/compatible"][0].status == "malformed"
    assert ev["/sys/firmware/devicetree/base/hypervisor/compatible"][0].status == "malformed"
    assert ev["/proc/modules"][0].status == "unreadable"
    assert ev["/dev/kmsg"][0].status == "unreadable"
    assert ev["/dev/gunyah"][0].status == "malformed"
    assert ev["/proc/cpuinfo"][0].status == "malformed"
    assert r.verdict == "no-evidence"


def test_this_machine() -> None:
    p = gunyah("probe", "--json")
    assert p.returncode in (0, 1) and "Traceback" not in p.stderr
    d = json.loads(p.stdout)
    assert d["verdict"] in ("gunyah-guest", "gunyah-host", "other-hypervisor", "no-evidence")
    assert d["evidence"], "the probe always says what it looked at"
    assert (p.returncode == 0) == d["verdict"].startswith("gunyah")


@ROOT_ONLY
def test_capture_round_trip(tmp_path: Path) -> None:
    root = tree(tmp_path / "phone", {**ANDROID_HOST, "data/secret.txt": "not evidence"})
    char_device(root / "dev/gunyah")
    capture = tmp_path / "evidence.tar.gz"
    p = gunyah("probe", "--root", str(root), "--capture", str(capture))
    assert p.returncode == 0, p.stderr
    q = gunyah("probe", "--root", str(capture), "--json")
    assert q.returncode == 0, q.stderr
    again = json.loads(q.stdout)
    first = json.loads(gunyah("probe", "--root", str(root), "--json").stdout)

    def strip(d: dict) -> list:  # type: ignore[type-arg]
        return [(e["source"], e["status"], e["supports"]) for e in d["evidence"]]

    assert strip(again) == strip(first)
    assert again["verdict"] == "gunyah-host" and again["api_version"] == 1
    with tarfile.open(capture) as tar:
        names = tar.getnames()
    assert "data/secret.txt" not in names  # only what the probe read
    assert "dev/gunyah" in names


def test_capture_keeps_unreadable_notes(tmp_path: Path) -> None:
    root = tree(tmp_path / "broken", BROKEN)
    capture = tmp_path / "c.tar"
    assert gunyah("probe", "--root", str(root), "--capture", str(capture)).returncode == 1
    d = json.loads(gunyah("probe", "--root", str(capture), "--json").stdout)
    statuses = {(e["source"], e["status"]) for e in d["evidence"]}
    assert ("/proc/modules", "unreadable") in statuses


def test_text_output(tmp_path: Path) -> None:
    p = gunyah("probe", "--root", str(tree(tmp_path, LINUX_GUEST)))
    assert p.returncode == 0
    assert p.stdout.startswith("Verdict: gunyah-guest: running as a guest of Gunyah")
    assert "+ /proc/device-tree/hypervisor/compatible" in p.stdout


def test_bad_usage(tmp_path: Path) -> None:
    assert_usage_error(gunyah("probe", "--root", str(tmp_path / "nope")), "no such directory")
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00" * 10)
    assert_usage_error(gunyah("probe", "--root", str(junk)), "not a probe capture")
    assert_usage_error(
        gunyah("probe", "--root", str(tmp_path), "--capture", str(tmp_path / "no/such/dir.tar")),
        "cannot write the capture",
    )


def test_dt_strings() -> None:
    assert probe._dt_strings(b"a\0b\0") == ["a", "b"]
    assert probe._dt_strings(b"a") is None
    assert probe._dt_strings(b"\0") is None
    assert probe._dt_strings(b"a\0\0") is None


@given(st.binary(max_size=200))
def test_dt_strings_never_crash(blob: bytes) -> None:
    out = probe._dt_strings(blob)
    if out is not None:
        assert b"\0".join(s.encode() for s in out) + b"\0" == blob


# Captures a real kernel made of itself: `gunyah boot --persona P
# --capture-probe FILE` with bookworm's 6.1 and our identification module.
CAPTURES = Path(__file__).resolve().parent / "captures"


@pytest.mark.parametrize(
    ("persona", "verdict", "evidence"),
    [
        (
            "gunyah",
            "gunyah-guest",
            "the Gunyah driver's banner: Running under Gunyah hypervisor 51/v1",
        ),
        ("kvm", "other-hypervisor", "the kernel names the hypervisor: KVM"),
        ("none", "no-evidence", None),
    ],
)
def test_real_kernel_captures(persona: str, verdict: str, evidence: str | None) -> None:
    from gunyah.probe import probe

    report = probe(str(CAPTURES / f"kernel-6.1-{persona}.tar.gz"))
    assert report.verdict == verdict
    found = [e.meaning for e in report.evidence if e.status == "found"]
    if evidence is not None:
        assert evidence in found
    if persona == "gunyah":
        assert any("a Gunyah hypervisor node" in t for t in found)
    # our module is loaded under every persona: its name is no evidence of Gunyah
    infos = [e.meaning for e in report.evidence if e.status == "info"]
    assert any("modules with Gunyah names loaded: gunyah_identify" in t for t in infos)


# -- other hypervisors, and detect-virt ----------------------------------------
PKVM_HOST = {
    "dev/kmsg": "6,101,900,-;kvm [1]: Protected nVHE mode initialized successfully\n",
    "proc/cpuinfo": ARM_CPUINFO.format(imp="0x41"),
}


@ROOT_ONLY
def test_a_pkvm_host_is_named_and_detect_virt_says_pkvm(tmp_path: Path) -> None:
    root = tree(tmp_path, PKVM_HOST)
    os.mknod(root / "dev/kvm", 0o660 | stat.S_IFCHR, os.makedev(10, 232))
    r = probe.probe(str(root))
    assert (r.verdict, r.hypervisors, r.detect_virt) == ("other-hypervisor", ["pKVM"], "pkvm")
    assert any(e.source == "/dev/kvm" and "can run KVM VMs" in e.meaning for e in r.evidence)
    p = gunyah("probe", "--root", str(root), "--detect-virt")
    assert (p.returncode, p.stdout) == (0, "pkvm\n")


@ROOT_ONLY
def test_a_geniezone_host_is_not_taken_for_gunyah(tmp_path: Path) -> None:
    root = tree(tmp_path, {"proc/cpuinfo": ARM_CPUINFO.format(imp="0x41")})
    char_device(root / "dev/gzvm")
    r = probe.probe(str(root))
    assert (r.verdict, r.detect_virt) == ("other-hypervisor", "geniezone")


def test_detect_virt_for_gunyah_and_for_nothing(tmp_path: Path) -> None:
    guest = tree(tmp_path / "guest", LINUX_GUEST)
    p = gunyah("probe", "--root", str(guest), "--detect-virt")
    assert (p.returncode, p.stdout) == (0, "gunyah\n")
    bare = tree(tmp_path / "bare", {"proc/cpuinfo": ARM_CPUINFO.format(imp="0x41")})
    p = gunyah("probe", "--root", str(bare), "--detect-virt")
    assert (p.returncode, p.stdout) == (1, "none\n")  # systemd-detect-virt's convention
    assert probe.detect(str(guest)) == json.loads(gunyah("probe", "--root", str(guest),
                                                         "--json").stdout)  # fmt: skip


# -- an Android device's readiness ------------------------------------------------
ANDROID_READY = {
    "proc/device-tree/hypervisor/compatible":
        b"qcom,gunyah-hypervisor-1.0\0qcom,gunyah-hypervisor\0simple-bus\0",
    "proc/bootconfig": 'androidboot.hardware = "qcom"\n'
                       'androidboot.hypervisor.vm.supported = "1"\n'
                       'androidboot.hypervisor.protected_vm.supported = "1"\n'
                       'androidboot.hypervisor.version = "gunyah-1.0"\n',
    "gunyah-collector/getprop": "[ro.boot.hypervisor.vm.supported]: [1]\n"
                                "[ro.product.model]: [not evidence]\n",
    "proc/device-tree/reserved-memory/gunyah_hyp_region@80000000/": "",
    "proc/device-tree/reserved-memory/framebuffer@9c000000/": "",
    "dev/block/by-name/": "",
    "proc/modules": "gh_rm_drv 45056 3 - Live 0x0000000000000000\n"
                    "gh_virt_wdt 16384 0 - Live 0x0000000000000000\n",
    "proc/cpuinfo": ARM_CPUINFO.format(imp="0x51"),
}  # fmt: skip


@ROOT_ONLY
def test_an_android_phone_ready_for_vms(tmp_path: Path) -> None:
    root = tree(tmp_path / "phone", ANDROID_READY)
    char_device(root / "dev/gunyah")
    for name in ("hyp_a", "hyp_b", "pvmfw_a", "boot_a"):
        (root / "dev/block/by-name" / name).symlink_to(f"/dev/block/sda{len(name)}")
    r = probe.probe(str(root))
    assert r.android == {"vm.supported": "1", "protected_vm.supported": "1",
                         "version": "gunyah-1.0"}  # fmt: skip
    assert r.driver == "vendor"
    assert r.can_create[0].startswith("Gunyah VMs through /dev/gunyah, with a VMM that speaks "
                                      "the vendor ioctls")  # fmt: skip
    assert "protected VMs" in r.can_create[-1]
    ev = by_source(r)
    assert ev["/proc/device-tree/reserved-memory"][0].value == ["gunyah_hyp_region@80000000"]
    assert ev["/dev/block/by-name"][0].value == ["hyp_a", "hyp_b", "pvmfw_a"]
    assert "ro.product.model" not in str(r.to_dict())  # only the hypervisor's properties
    capture = tmp_path / "phone.tar.gz"
    assert gunyah("probe", "--root", str(root), "--capture", str(capture)).returncode == 0
    again = json.loads(gunyah("probe", "--root", str(capture), "--json").stdout)
    assert (again["android"], again["driver_generation"]) == (r.android, "vendor")
    assert again["can_create"] == r.can_create
    text = gunyah("probe", "--root", str(root)).stdout
    assert "VMs here: Gunyah VMs through /dev/gunyah" in text


def test_the_upstream_driver_generation(tmp_path: Path) -> None:
    root = tree(tmp_path, {**LINUX_GUEST, "proc/modules":
                           "gunyah_rsc_mgr 45056 3 - Live 0x0000000000000000\n"})  # fmt: skip
    r = probe.probe(str(root))
    assert r.driver == "upstream"
    assert r.in_the_way == ["this kernel is a Gunyah guest without /dev/gunyah: the VM "
                            "manager driver is not loaded or not built"]  # fmt: skip
