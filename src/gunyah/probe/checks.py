"""The probe's checks: each looks at one place and adds its evidence.

A Python process cannot issue HVC, but a Linux or Android system shows what
its kernel found. Every check here only reads (files, directory listings,
stat); nothing is written, no ioctl is issued, no VM is created (but for
`--active`, whose answers, read by active.py, arrive here as the text the
active check printed). A missing, unreadable or garbled file is itself
evidence, noted as such.

Where the names come from:
- the device tree's /hypervisor node: `gunyah-hypervisor` in the upstream
  binding (Documentation/devicetree/bindings/firmware/gunyah-hypervisor.yaml,
  earlier also `gunyah-hypervisor-1.0`), `qcom,gunyah-hypervisor-1.0` and
  `qcom,gunyah-hypervisor` as quic/gunyah-resource-manager writes it
  (src/vm_creation/dto_construct.c), with `qcom,resource-manager-rpc@<cap>`
  children (`qcom,resource-manager-1-0`, `qcom,resource-manager`) and, in
  the upstream proposals, `gunyah-resource-mgr@<n>` (`gunyah-resource-manager-1-0`);
- `linux,kvm` and `xen,xen` are the /hypervisor compatibles systemd's
  detect-virt checks (src/basic/virt.c), which reports anything else there as
  `vm-other`;
- the kernel log lines, and why only those count: `kernel_log.py`;
- /dev/gunyah is the VM manager's misc device in both the upstream proposals
  and the Qualcomm vendor kernel (whose ioctls differ: type 0xB2 vs 'G');
  the kernel logs it as `misc gunyah: ...`; the resource-manager driver binds
  as `gunyah_rsc_mgr` (upstream) or `gh_rsc_mgr` (vendor);
- CPU implementer 0x51 (/proc/cpuinfo) is Qualcomm: a hint about the platform,
  never evidence of the hypervisor.
"""

from __future__ import annotations

import re
from typing import Any

from .. import triage
from ..abi.devicetree import GUNYAH_COMPATIBLES, RM_COMPATIBLES
from . import active as active_check
from . import kernel_log
from .report import (
    GUNYAH_VERDICTS,
    UNKNOWN,
    VERDICT_GUEST,
    VERDICT_HOST,
    VERDICT_OTHER,
    Evidence,
    Report,
)
from .views import NodeInfo, View

DT_BASES = ("proc/device-tree", "sys/firmware/devicetree/base")
OTHER_DT_COMPATIBLES = {"linux,kvm": "KVM", "xen,xen": "Xen"}
GUNYAH_NAME = re.compile(r"gunyah|gh_")  # at the start of a module's or driver's name
MAX_LOG_LINES = 5
CPU_IMPLEMENTERS = {
    0x41: "Arm",
    0x42: "Broadcom",
    0x43: "Cavium",
    0x46: "Fujitsu",
    0x48: "HiSilicon",
    0x4E: "NVIDIA",
    0x50: "Applied Micro",
    0x51: "Qualcomm",
    0x53: "Samsung",
    0x56: "Marvell",
    0x61: "Apple",
    0x69: "Intel",
    0xC0: "Ampere",
}
DMI_HYPERVISORS = (
    ("KVM", "KVM"),
    ("QEMU", "QEMU"),
    ("VMware", "VMware"),
    ("VirtualBox", "VirtualBox"),
    ("innotek", "VirtualBox"),
    ("Xen", "Xen"),
    ("Microsoft Corporation", "Hyper-V"),
    ("Amazon EC2", "Amazon EC2 (Nitro/KVM)"),
    ("Google Compute Engine", "Google Compute Engine (KVM)"),
    ("Parallels", "Parallels"),
    ("Bochs", "Bochs"),
)
_DIR = NodeInfo("dir", 0o755, 0, 0, None)  # a directory a capture keeps by name only


class _Prober:
    def __init__(self, view: View, active: bytes | None = None) -> None:
        self.view = view
        self.report = Report(view.name)
        self.active_output = active  # what --active printed on this system, if it ran

    def add(self, *args: Any, **kw: Any) -> None:
        self.report.evidence.append(Evidence(*args, **kw))

    def read(self, path: str, tail: bool = False) -> bytes | None:
        """Contents, or None (absent); unreadable files are noted as evidence."""
        try:
            data = self.view.read(path, tail=tail)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as e:
            why = e.strerror or str(e)
            self.report.unreadable[path] = why
            self.add("/" + path, "unreadable", f"cannot read: {why}")
            return None
        self.report.read[path] = data
        return data

    def listdir(self, path: str) -> list[str]:
        try:
            return self.view.listdir(path)
        except (FileNotFoundError, NotADirectoryError):
            return []
        except OSError as e:
            self.add("/" + path, "unreadable", f"cannot list: {e.strerror or e}")
            return []

    def text(self, path: str, tail: bool = False) -> str | None:
        data = self.read(path, tail)
        return None if data is None else data.decode("utf-8", "replace")

    # -- the checks ---------------------------------------------------------
    def run(self) -> Report:
        self.device_tree()
        self.sys_hypervisor()
        self.dev_gunyah()
        self.dev_gzvm()
        self.dev_kvm()
        self.modules()
        self.drivers()
        self.kernel_log()
        self.cpuinfo()
        self.dmi()
        self.kernel_version()
        self.android()
        self.reserved_memory()
        self.partitions()
        self.driver_generation()
        self.active()
        self.readiness()
        if self.report.x86 and any(e.supports in GUNYAH_VERDICTS for e in self.report.evidence):
            self.add("/proc/cpuinfo", "info", "an x86 CPU: Gunyah runs only on arm64, so the "
                     "Gunyah evidence above is not taken")  # fmt: skip
        return self.report

    def device_tree(self) -> None:
        for base in DT_BASES:
            path = f"{base}/hypervisor/compatible"
            data = self.read(path)
            if data is None:
                if path not in self.report.unreadable:
                    self.add("/" + path, "absent", "no /hypervisor node in this device tree")
                continue
            strings = _dt_strings(data)
            if strings is None:
                self.add("/" + path, "malformed",
                         "not a list of NUL-terminated strings", value=data[:64].hex())  # fmt: skip
                continue
            gunyah = [s for s in strings if s in GUNYAH_COMPATIBLES]
            other = [OTHER_DT_COMPATIBLES[s] for s in strings if s in OTHER_DT_COMPATIBLES]
            if gunyah:
                self.add("/" + path, "found", f"a Gunyah hypervisor node ({', '.join(gunyah)})",
                         VERDICT_GUEST, strings)  # fmt: skip
            elif other:
                self.report.other.extend(other)
                self.add("/" + path, "found", f"a {other[0]} hypervisor node", VERDICT_OTHER,
                         strings)  # fmt: skip
            else:
                self.add("/" + path, "found",
                         "a hypervisor node of an unknown kind (systemd-detect-virt says "
                         "vm-other)", VERDICT_OTHER, strings)  # fmt: skip
                self.report.other.append(f"{UNKNOWN} (device-tree /hypervisor)")
            self.hypervisor_children(f"{base}/hypervisor")

    def hypervisor_children(self, node: str) -> None:
        for child in self.listdir(node):
            data = self.read(f"{node}/{child}/compatible")
            if data is None:
                continue
            strings = _dt_strings(data) or []
            rm = [s for s in strings if s in RM_COMPATIBLES]
            if rm:
                self.add(f"/{node}/{child}", "found",
                         f"the Gunyah resource manager's message queue ({', '.join(rm)})",
                         VERDICT_GUEST, strings)  # fmt: skip
            elif any("gunyah" in s for s in strings):
                self.add(f"/{node}/{child}", "found", "a Gunyah device-tree node",
                         VERDICT_GUEST, strings)  # fmt: skip

    def sys_hypervisor(self) -> None:
        text = self.text("sys/hypervisor/type")
        if text is not None and text.strip():
            name = text.strip()
            self.report.other.append(name.capitalize() if name == "xen" else name)
            self.add("/sys/hypervisor/type", "found", f"the kernel names the hypervisor: {name}",
                     VERDICT_OTHER, name)  # fmt: skip
        if self.view.info("proc/xen") is not None:
            self.report.nodes["proc/xen"] = _DIR
            self.report.other.append("Xen")
            self.add("/proc/xen", "found", "Xen's interface directory", VERDICT_OTHER)

    def device(self, path: str) -> NodeInfo | None:
        """A node under /dev, kept for the capture where it is there."""
        info = self.view.info(path)
        if info is not None:
            self.report.nodes[path] = info
        return info

    def dev_kvm(self) -> None:
        """KVM's device: this kernel runs KVM VMs (it owns EL2, or pKVM does)."""
        info = self.device("dev/kvm")
        if info is None:
            self.add("/dev/kvm", "absent", "no KVM device: this kernel cannot run KVM VMs")
            return
        value = _node_value(info)
        if info.kind == "char":
            self.add("/dev/kvm", "info", "KVM's device: this kernel can run KVM VMs",
                     value=value)  # fmt: skip
        else:
            self.add("/dev/kvm", "malformed", f"present but a {info.kind}", value=value)

    def dev_gzvm(self) -> None:
        """GenieZone's VM manager (what QEMU's and crosvm's gzvm backends open)."""
        info = self.device("dev/gzvm")
        if info is not None and info.kind == "char":
            self.report.other.append("GenieZone")
            self.add("/dev/gzvm", "found", "GenieZone's VM manager: MediaTek's hypervisor, "
                     "not Gunyah", VERDICT_OTHER, f"{info.mode:04o}")  # fmt: skip

    def dev_gunyah(self) -> None:
        info = self.device("dev/gunyah")
        if info is None:
            self.add("/dev/gunyah", "absent", "no Gunyah VM manager node")
            return
        value = _node_value(info)
        if info.kind == "char":
            access = {
                True: "readable by this user",
                False: "not readable by this user (root only on Qualcomm Android)",
                None: "access not known",
            }[info.readable]
            self.add("/dev/gunyah", "found", f"the Gunyah VM manager: VMs can be created; {access}",
                     VERDICT_HOST, value)  # fmt: skip
        else:
            self.add("/dev/gunyah", "malformed", f"present but a {info.kind}, not a character "
                     "device: no VM manager behind it", value=value)  # fmt: skip

    def modules(self) -> None:
        text = self.text("proc/modules")
        if text is None:
            return
        names = []
        for line in text.splitlines():
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 3:
                self.add("/proc/modules", "malformed", f"unexpected line: {line[:80]!r}")
                continue
            if GUNYAH_NAME.match(parts[0]):
                names.append(parts[0])
        if names:
            # a hint, not evidence: any module may take such a name (a test
            # module under KVM did), so only the kernel's own lines decide
            self.add("/proc/modules", "info", f"modules with Gunyah names loaded: "
                     f"{' '.join(names)} (a name alone is not evidence)", value=names)  # fmt: skip
        else:
            self.add("/proc/modules", "info", "no Gunyah module loaded (it may be built in)")

    def drivers(self) -> None:
        found = []
        for bus in self.listdir("sys/bus"):
            for drv in self.listdir(f"sys/bus/{bus}/drivers"):
                if GUNYAH_NAME.match(drv):
                    found.append(f"{bus}/{drv}")
                    self.report.nodes[f"sys/bus/{bus}/drivers/{drv}"] = _DIR
        if found:
            self.add("/sys/bus/*/drivers", "found", f"Gunyah drivers registered: {' '.join(found)}",
                     VERDICT_GUEST, found)  # fmt: skip

    def kernel_log(self) -> None:
        for path in kernel_log.LOG_FILES:
            text = self.text(path, tail=True)
            if text is None:
                continue
            log = kernel_log.read_log(text, path)
            known = triage.scan(text.splitlines())
            # a capture keeps only the lines that are evidence
            kept = log.gunyah_lines + log.other_lines
            kept += [k["line"] for k in known if k["line"] not in kept]
            self.report.read[path] = "\n".join(kept).encode()
            for k in known:
                self.report.known.append(k)
                self.add("/" + path, "found", f"a known problem: {k['title']} "
                         f"(gunyah explain says more)", value=k["line"])  # fmt: skip
            if log.banner is not None:
                if self.report.variant is None:
                    self.report.variant, self.report.api_version = log.variant, log.api_version
                self.add("/" + path, "found", f"the Gunyah driver's banner: {log.banner}",
                         VERDICT_GUEST, log.gunyah_lines[:MAX_LOG_LINES])  # fmt: skip
            elif log.gunyah_lines:
                self.add("/" + path, "info", "kernel log lines with a Gunyah driver's prefix "
                         "but no banner (a prefix alone is not evidence)",
                         value=log.gunyah_lines[:MAX_LOG_LINES])  # fmt: skip
            if log.hypervisors:
                self.report.other.extend(log.hypervisors)
                names = ", ".join(dict.fromkeys(log.hypervisors))
                self.add("/" + path, "found", f"the kernel names the hypervisor: {names}",
                         VERDICT_OTHER, log.other_lines[:MAX_LOG_LINES])  # fmt: skip
            if not (log.gunyah_lines or log.hypervisors):
                self.add("/" + path, "info",
                         "no kernel line of a Gunyah driver or naming a hypervisor")  # fmt: skip

    def cpuinfo(self) -> None:
        text = self.text("proc/cpuinfo")
        if text is None:
            return
        implementers = set()
        hypervisor_flag = x86 = False
        for line in text.splitlines():
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "CPU implementer":
                try:
                    implementers.add(int(value, 16))
                except ValueError:
                    self.add("/proc/cpuinfo", "malformed", f"CPU implementer {value!r}")
            elif key == "vendor_id":
                x86 = True  # arm64 has no such key; every x86 CPU has one
            elif key == "flags" and "hypervisor" in value.split():
                hypervisor_flag = True
        for imp in sorted(implementers):
            name = CPU_IMPLEMENTERS.get(imp, "unknown")
            hint = " (a Qualcomm core: a hint about the platform, not evidence of Gunyah)"
            self.add("/proc/cpuinfo", "info",
                     f"CPU implementer {imp:#04x} {name}" + (hint if imp == 0x51 else ""),
                     value=imp)  # fmt: skip
        self.report.x86 = x86
        if hypervisor_flag:
            self.report.other.append(f"{UNKNOWN} (x86 CPUID hypervisor bit)")
            self.add("/proc/cpuinfo", "found", "the x86 CPUID hypervisor bit is set",
                     VERDICT_OTHER)  # fmt: skip

    def dmi(self) -> None:
        for path in ("sys/class/dmi/id/sys_vendor", "sys/class/dmi/id/product_name"):
            text = self.text(path)
            if not text:
                continue
            for needle, name in DMI_HYPERVISORS:
                if needle in text:
                    self.report.other.append(name)
                    self.add("/" + path, "found", f"firmware names a virtual machine: {name}",
                             VERDICT_OTHER, text.strip())  # fmt: skip
                    break

    # -- an Android device's readiness to run VMs ------------------------------
    def android(self) -> None:
        """The hypervisor properties Android sets at boot: /proc/bootconfig's
        androidboot.hypervisor.*, and ro.boot.hypervisor.* as `getprop` lists them."""
        props: dict[str, str] = {}
        for path, line in (("proc/bootconfig", _BOOTCONFIG), (GETPROP_FILE, _GETPROP)):
            text = self.text(path)
            if text is None:
                continue
            found = _android_properties(text, line)
            self.report.read[path] = "\n".join(
                f"{k} = \"{v}\"" if path == "proc/bootconfig" else f"[{k}]: [{v}]"
                for k, v in found.items()).encode()  # fmt: skip
            if found:
                self.add("/" + path, "found", "Android's hypervisor properties: " + ", ".join(
                    f"{k}={v}" for k, v in found.items()), value=found)  # fmt: skip
            for key, value in found.items():
                m = ANDROID_HYP_KEY.fullmatch(key)
                if m:
                    props[m[1]] = value
        self.report.android = props

    def reserved_memory(self) -> None:
        for base in DT_BASES:
            names = [n for n in self.listdir(f"{base}/reserved-memory") if HYP_REGION.search(n)]
            for n in names:
                self.report.nodes[f"{base}/reserved-memory/{n}"] = _DIR
            if names:
                self.add(f"/{base}/reserved-memory", "info", "memory the firmware keeps for a "
                         f"hypervisor or its VMs: {' '.join(names)}", value=names)  # fmt: skip
                return

    def partitions(self) -> None:
        names = [n for n in self.listdir("dev/block/by-name") if HYP_PARTITIONS.fullmatch(n)]
        for n in names:
            self.device(f"dev/block/by-name/{n}")
        if names:
            self.add("/dev/block/by-name", "info", "partitions of the hypervisor (hyp) and the "
                     f"protected VM firmware (pvmfw): {' '.join(names)}", value=names)  # fmt: skip

    def driver_generation(self) -> None:
        """Which Gunyah driver family the kernel runs decides which ioctls a VMM
        must use on /dev/gunyah: the vendor gh_* drivers (type 0xB2) or the
        upstream-style gunyah_* ones (type 'G')."""
        names = [e.value for e in self.report.evidence
                 if e.source in ("/proc/modules", "/sys/bus/*/drivers") and e.value]  # fmt: skip
        flat = [n.rsplit("/", 1)[-1] for v in names for n in v]
        vendor = any(n.startswith("gh_") for n in flat)
        upstream = any(n == "gunyah" or n.startswith("gunyah_") for n in flat)
        if vendor == upstream:
            return
        self.report.driver = "vendor" if vendor else "upstream"
        what = ("the vendor drivers (gh_*): a VMM must use their ioctls (type 0xB2)" if vendor
                else "the upstream-style drivers (gunyah_*): a VMM must use their ioctls "
                "(type 'G')")  # fmt: skip
        self.add("/proc/modules", "info", f"Gunyah driver generation: {what}",
                 value=self.report.driver)

    def active(self) -> None:
        """What the active check answered: run here (--active) or by the
        collector, whose capture keeps it."""
        path = active_check.RESULT_FILE
        data = self.active_output
        if data is not None:
            self.report.read[path] = data
        elif (data := self.read(path)) is None:
            return
        result = self.report.active = active_check.parse(data)
        created = [a for a in result["answers"] if a.get("created")]
        self.add("/dev/gunyah", "found" if created else "info", active_check.summary(result),
                 VERDICT_HOST if created else None, result)  # fmt: skip
        if len(created) == 1:  # an answer outweighs module names
            if self.report.driver not in (None, created[0]["abi"]):
                self.add("/dev/gunyah", "info", f"the module names suggested the "
                         f"{self.report.driver} drivers, but the {created[0]['abi']} ioctl "
                         "is the one that created a VM")  # fmt: skip
            self.report.driver = created[0]["abi"]

    def readiness(self) -> None:
        """What could create VMs here, and what stands in the way."""
        r, nodes = self.report, self.report.nodes
        can: list[str] = []
        block: list[str] = []
        gunyah, kvm = nodes.get("dev/gunyah"), nodes.get("dev/kvm")
        closed = None  # why this user cannot open /dev/gunyah, where its mode says so
        if gunyah is not None and gunyah.kind == "char" and gunyah.readable is False:
            closed = (f"/dev/gunyah (mode {gunyah.mode:04o}) is not open to this user: it "
                      "needs root (adb root, or a rooted device)")
        if r.active is not None:  # its answers replace guesses about /dev/gunyah
            self._active_readiness(can, block, closed)
        elif gunyah is not None and gunyah.kind == "char":
            gen = {"vendor": "the vendor ioctls", "upstream": "the upstream ioctls"}.get(
                r.driver or "", "the ioctls of this kernel's driver")
            can.append(f"Gunyah VMs through /dev/gunyah, with a VMM that speaks {gen} "
                       "(crosvm --hypervisor gunyah; Android's virtualization service)")
            if closed:
                block.append(closed)
        if kvm is not None and kvm.kind == "char":
            can.append("KVM VMs through /dev/kvm (crosvm, QEMU with -accel kvm)")
            if kvm.readable is False:
                block.append(f"/dev/kvm (mode {kvm.mode:04o}) is not open to this user")
        if r.android.get("vm.supported") == "1" and not can:
            block.append("Android says VMs are supported, but no VM device is visible here "
                         "(look again as root)")
        if r.android.get("protected_vm.supported") == "1":
            can.append("protected VMs (Android: protected_vm.supported=1)")
        if not can and r.verdict == VERDICT_GUEST:
            block.append("this kernel is a Gunyah guest without /dev/gunyah: the VM manager "
                         "driver is not loaded or not built")
        block.extend(triage.in_the_way(r.known))  # known failures its log shows, with their fix
        r.can_create, r.in_the_way = can, block

    def _active_readiness(self, can: list[str], block: list[str], closed: str | None) -> None:
        """What /dev/gunyah's answers to the active check say about VMs here;
        `closed`: why its mode keeps this user out, if it does."""
        result = self.report.active or {}
        created = [a for a in result.get("answers", []) if a.get("created")]
        if created:  # whoever asked could open it
            names = " or ".join(f"{a['abi']} ({a['ioctl']})" for a in created)
            can.append(f"Gunyah VMs through /dev/gunyah: it created one with the {names} "
                       "ioctl just now, so a VMM that speaks that ABI can")  # fmt: skip
            return
        if closed:
            block.append(closed)
        if result.get("opened") is False:
            block.append(f"the active check: {result['open_error']['meaning']}")
        else:
            why = "; ".join(f"{a['abi']} {a.get('errno_name', '')}: {a['meaning']}"
                            for a in result.get("answers", []))  # fmt: skip
            block.append(f"/dev/gunyah created no VM with either ABI ({why or 'no answer'})")

    def kernel_version(self) -> None:
        for path in ("proc/sys/kernel/osrelease", "proc/version"):
            text = self.text(path)
            if text:
                self.add("/" + path, "info", f"kernel {text.strip()}", value=text.strip())
                return


ANDROID_HYP_KEY = re.compile(r"(?:androidboot|ro\.boot)\.hypervisor\.([\w.]{1,64})")
_BOOTCONFIG = re.compile(r'\s*(androidboot\.hypervisor\.[\w.]{1,64})\s*=\s*"([^"]{0,128})"\s*')
_GETPROP = re.compile(r"\[(ro\.boot\.hypervisor\.[\w.]{1,64})\]: \[([^\]]{0,128})\]")
GETPROP_FILE = "gunyah-collector/getprop"  # what the collector saved of `getprop`
HYP_REGION = re.compile(r"hyp|gunyah|pvmfw|gzvm|geniezone", re.I)
HYP_PARTITIONS = re.compile(r"(hyp|pvmfw)(_[ab])?")


def _node_value(info: NodeInfo) -> dict[str, Any]:
    """A device node as evidence shows it."""
    return {"type": info.kind, "mode": f"{info.mode:04o}", "uid": info.uid, "gid": info.gid,
            "readable": info.readable}  # fmt: skip


def _android_properties(text: str, line: re.Pattern[str]) -> dict[str, str]:
    found = {}
    for raw in text.splitlines()[:4096]:
        m = line.fullmatch(raw)
        if m:
            found[m[1]] = m[2]
    return found


def _dt_strings(data: bytes) -> list[str] | None:
    """A device-tree string list (NUL-terminated strings), or None if it is not one."""
    if not data or not data.endswith(b"\0"):
        return None
    try:
        parts = data[:-1].decode("ascii").split("\0")
    except UnicodeDecodeError:
        return None
    if any(not p or not p.isprintable() for p in parts):
        return None
    return parts


def run(view: View, active: bytes | None = None) -> Report:
    return _Prober(view, active).run()
