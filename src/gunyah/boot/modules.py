"""Kernel modules for the guest: ours (module/gunyah_identify.c) and the
user's, built with kbuild against the kernel's own headers, and checked
before they go into the initramfs.

The numbers our module needs come from the project's ABI tables, written
into gunyah_abi.h at build time: the C side never spells a fact again.
Built modules are cached by the hash of what went into them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from .. import abi, smccc
from ..abi import hvc, msgqueue, rm, vm_manager
from ..abi.devicetree import RM_COMPATIBLE, RM_LINK
from ..abi.errors import ERRORS_BY_NAME
from ..abi.vm_manager import c_header as uapi_header
from ..guest.driver import TAKEN_UIDS
from ..model import vcpu_run
from .kernel import CROSS_COMPILE, SETUP_COMMAND, cache_dir

MODULE_DIR = Path(__file__).resolve().parent / "module"
IDENTIFY_SOURCE = MODULE_DIR / "gunyah_identify.c"
VM_MANAGER_SOURCE = MODULE_DIR / "gunyah_vm.c"  # /dev/gunyah, the series' v14 VM manager
BUILD_TIMEOUT = 300
MAX_MODULE = 64 << 20
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# A module's parameters as insmod takes them: words of name=value, nothing
# init's shell would expand (init passes them unquoted, to split the words).
_PARAMS = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*(=[A-Za-z0-9_.,:/+-]*)?"
                     r"( [A-Za-z_][A-Za-z0-9_.]*(=[A-Za-z0-9_.,:/+-]*)?){0,31}")  # fmt: skip


class ModuleError(Exception):
    """A module did not build, or cannot be loaded into this kernel."""


# what our VM manager asks the RM and hears from it (rm.MESSAGE_IDS' names)
_VM_MESSAGES = (
    "VM_ALLOCATE", "VM_DEALLOCATE", "VM_START", "VM_STOP", "VM_RESET", "VM_CONFIG_IMAGE",
    "VM_INIT", "VM_GET_HYP_RESOURCES", "MEM_SHARE", "MEM_LEND", "MEM_RECLAIM",
    "NOTIFY_VM_STATUS", "NOTIFY_VM_EXITED", "NOTIFY_MEM_RELEASED",
)  # fmt: skip
_RESOURCE = {name: code for code, name in rm.RESOURCE_TYPES.items()}
_RM_ERRORS = ("NOMEM", "NORESOURCE", "DENIED", "BUSY", "UNIMPLEMENTED")


def _hyp_resource_offset(name: str | None) -> int:
    """Where a field of VM_GET_HYP_RESOURCES' packed entry starts (None: its size)."""
    fields = [f for f, _ in rm.HYP_RESOURCE]
    upto = rm.HYP_RESOURCE[: fields.index(name)] if name is not None else rm.HYP_RESOURCE
    return struct.calcsize("<" + "".join(code for _, code in upto))


def abi_header() -> str:
    """gunyah_abi.h: the identification ABI's numbers, from the ABI tables."""
    info = abi.API_INFO
    lines = [
        "/* Written by gunyah's module builder from its ABI tables; do not edit. */",
        "#ifndef GUNYAH_ABI_H",
        "#define GUNYAH_ABI_H",
        f"#define GUNYAH_VENDOR_HYP_CALL_UID {smccc.VENDOR_HYP_CALL_UID:#x}U",
        f"#define GUNYAH_HYP_IDENTIFY {abi.HYP_IDENTIFY:#x}U",
        f"#define GUNYAH_API_V1 {abi.API_V1}",
    ]
    for name in ("api_version", "big_endian", "is_64bit", "variant"):
        f = info[name]
        lines.append(f"#define GUNYAH_{name.upper()}_LSB {f.lsb}")
        lines.append(f"#define GUNYAH_{name.upper()}_WIDTH {f.width}")
    gunyah = [abi.UIDS_BY_KEY[k] for k in sorted(TAKEN_UIDS)]  # as the Linux driver takes them
    words = ", ".join("{" + ", ".join(f"{w:#010x}" for w in k.words) + "}" for k in gunyah)
    names = ", ".join(json.dumps(k.name) for k in gunyah)  # ASCII: a valid C string
    send, receive = (abi.hypercall_id(hvc.BY_NAME[n].number)
                     for n in ("msgqueue_send", "msgqueue_receive"))  # fmt: skip
    lines += [
        f"#define GUNYAH_KNOWN_UIDS {{{words}}}",
        f"#define GUNYAH_KNOWN_UID_NAMES {{{names}}}",
        f"#define GUNYAH_MSGQ_SEND {send:#x}U",
        f"#define GUNYAH_MSGQ_RECV {receive:#x}U",
        f"#define GUNYAH_MSGQ_PUSH {msgqueue.PUSH}",
        f"#define GUNYAH_ERROR_MSGQUEUE_EMPTY {ERRORS_BY_NAME['MSGQUEUE_EMPTY'].code}",
        f"#define GUNYAH_RM_TX_CAP {RM_LINK.tx_cap}",
        f"#define GUNYAH_RM_RX_CAP {RM_LINK.rx_cap}",
        f"#define GUNYAH_RM_MESSAGE_SIZE {rm.MESSAGE_SIZE}",
        f"#define GUNYAH_RM_HEADER_SIZE {rm.HEADER_SIZE}",
        f"#define GUNYAH_RM_VERSION_BYTE {rm.Header(0, 0, 0, 0).encode()[0]:#x}",
        f"#define GUNYAH_RM_TYPE_REQUEST {rm.TYPE_REQUEST}",
        f"#define GUNYAH_RM_TYPE_REPLY {rm.TYPE_REPLY}",
        f"#define GUNYAH_RM_VM_GET_VMID {rm.MESSAGE_IDS['VM_GET_VMID']:#x}U",
        f"#define GUNYAH_RM_TYPE_CONTINUATION {rm.TYPE_CONTINUATION}",
        f"#define GUNYAH_RM_TYPE_NOTIFICATION {rm.TYPE_NOTIFICATION}",
        f"#define GUNYAH_RM_MAX_FRAGMENTS {rm.MAX_FRAGMENTS}",
        f"#define GUNYAH_VCPU_RUN {abi.hypercall_id(hvc.BY_NAME['vcpu_run'].number):#x}U",
    ]
    lines += [f"#define GUNYAH_RM_{name} {rm.MESSAGE_IDS[name]:#x}U" for name in _VM_MESSAGES]
    lines += [f"#define GUNYAH_RM_ERROR_{name} {rm.ERROR_CODES[name]:#x}U" for name in _RM_ERRORS]
    lines += [f"#define GUNYAH_VM_STATE_{name.upper()} {code}"
              for code, name in rm.VM_STATES.items()]  # fmt: skip
    lines += [f"#define GUNYAH_EXIT_{name.upper()} {code}" for code, name in rm.EXIT_TYPES.items()]
    lines += [f"#define GUNYAH_VCPU_STATE_{name.upper()} {code:#x}"
              for code, name in vcpu_run.STATES.items()]  # fmt: skip
    lines += [
        f"#define GUNYAH_VCPU_POWEROFF_EXITED {vcpu_run.POWEROFF_EXITED}",
        f"#define GUNYAH_ERROR_BUSY {ERRORS_BY_NAME['BUSY'].code}",
        f"#define GUNYAH_ERROR_MSGQUEUE_FULL {ERRORS_BY_NAME['MSGQUEUE_FULL'].code}",
        f"#define GUNYAH_RESOURCE_VCPU {_RESOURCE['VIRTUAL_CPU']}",
        f"#define GUNYAH_RESOURCE_BELL_TX {_RESOURCE['DOORBELL_SRC']}",
        f"#define GUNYAH_BELL_SEND {abi.hypercall_id(hvc.BY_NAME['doorbell_send'].number):#x}U",
        f"#define GUNYAH_BELL_MASK {abi.hypercall_id(hvc.BY_NAME['doorbell_mask'].number):#x}U",
        f"#define GUNYAH_BELL_NONBLOCK {vm_manager.BELL_NONBLOCK:#x}ULL",
        f"#define GUNYAH_RM_HYP_RESOURCE_SIZE {_hyp_resource_offset(None)}",
        f"#define GUNYAH_RM_HYP_RESOURCE_TYPE {_hyp_resource_offset('resource_type')}",
        f"#define GUNYAH_RM_HYP_RESOURCE_LABEL {_hyp_resource_offset('label')}",
        f"#define GUNYAH_RM_HYP_RESOURCE_CAP_ID {_hyp_resource_offset('cap_id')}",
        f"#define GUNYAH_RM_HYP_RESOURCE_VIRQ {_hyp_resource_offset('virq')}",
        f"#define GUNYAH_RM_COMPATIBLE {json.dumps(RM_COMPATIBLE[0])}",
        f"#define GUNYAH_ERROR_RETRY ({ERRORS_BY_NAME['RETRY'].code})",
        "#endif",
        "",
    ]
    return "\n".join(lines)


def ko_name(source: Path) -> str:
    """The file name a --module has in the guest: FILE.c builds to its C
    identifier's .ko (a hyphen becomes _), a .ko keeps its own."""
    return f"{source.stem.replace('-', '_')}.ko" if source.suffix == ".c" else source.name


def module_args(text: str) -> tuple[str, str]:
    """NAME=PARAMS (`--module-args`): the module's name (its file's, without
    .c or .ko) and its parameters; ModuleError when they are not plain."""
    name, sep, params = text.partition("=")
    name = name.removesuffix(".c").removesuffix(".ko")
    if not (sep and re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name) and _PARAMS.fullmatch(params)):
        raise ModuleError(f"--module-args {text!r}: give NAME=PARAMS, such as 'mymod=count=3 "
                          "mode=fast' (letters, digits and _.,:/+- only)")  # fmt: skip
    return name, params


def _first_errors(output: str, limit: int = 5) -> str:
    errors = [ln for ln in output.splitlines() if "error" in ln.lower()]
    return "\n".join((errors or output.strip().splitlines()[-limit:])[:limit])


@dataclass(frozen=True)
class _Job:
    """One module to build: its name, its code and where its .ko is cached."""

    source: Path
    name: str
    code: bytes
    cached: Path


def _job(source: Path, headers: Path | None) -> _Job:
    """What building `source` against `headers` takes, checked; ModuleError
    for what no build could mend."""
    if headers is None:
        raise ModuleError(
            f"no kernel headers to build {source.name} against: run `{SETUP_COMMAND}`, "
            "give your kernel's headers with --headers DIR, or boot without our module "
            "(--no-identify)"
        )
    name = ko_name(source).removesuffix(".ko")
    if not _NAME.match(name):
        raise ModuleError(f"{source.name}: a module's file name must be a C identifier")
    try:
        code = source.read_bytes()
    except OSError as e:
        raise ModuleError(f"cannot read {source}: {e.strerror}") from None
    if (
        shutil.which(f"{CROSS_COMPILE}gcc-12") is None
        and shutil.which(f"{CROSS_COMPILE}gcc") is None
    ):
        raise ModuleError(f"the arm64 cross compiler is not installed: run `{SETUP_COMMAND}`")
    parts = [code, abi_header().encode(), uapi_header().encode(),
             str(headers.resolve()).encode(), name.encode()]  # fmt: skip
    key = hashlib.sha256(b"\0".join(parts)).hexdigest()[:24]
    return _Job(source, name, code, cache_dir() / "modules" / key / f"{name}.ko")


def _kbuild(jobs: list[_Job], headers: Path) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One kbuild run for every job, in a directory of its own (the caller's
    to remove): kbuild's own start costs more than a small module's build."""
    work = Path(tempfile.mkdtemp(prefix="gunyah-module-"))
    for j in jobs:
        (work / f"{j.name}.c").write_bytes(j.code)
    (work / "gunyah_abi.h").write_text(abi_header())
    (work / "gunyah_uapi.h").write_text(uapi_header())
    objects = " ".join(f"{j.name}.o" for j in jobs)
    (work / "Kbuild").write_text(f"obj-m := {objects}\nccflags-y := -I$(src)\n")
    cmd = ["make", "-s", "-k", f"-j{os.cpu_count() or 1}", "-C", str(headers), f"M={work}",
           "ARCH=arm64", f"CROSS_COMPILE={CROSS_COMPILE}", "modules"]  # fmt: skip
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                           stdin=subprocess.DEVNULL)  # fmt: skip
    except subprocess.TimeoutExpired:
        shutil.rmtree(work, ignore_errors=True)
        raise ModuleError(f"building {jobs[0].source.name} took over {BUILD_TIMEOUT} s") from None
    except FileNotFoundError:
        shutil.rmtree(work, ignore_errors=True)
        raise ModuleError(f"make is not installed: run `{SETUP_COMMAND}`") from None
    return work, p


def _keep(built: Path, cached: Path) -> None:
    """`built` into the cache, through a file of this build's own renamed into
    place: two builds of one module at once (parallel boots) never read each
    other's half."""
    cached.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=cached.parent, suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(built, partial)
        os.replace(partial, cached)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)


def build(source: Path, headers: Path | None) -> Path:
    """A .ko from one C file, built against `headers`; cached. ModuleError
    with the compiler's first errors when it does not build."""
    job = _job(source, headers)
    if job.cached.is_file():
        return job.cached
    assert headers is not None  # _job refuses None
    work, p = _kbuild([job], headers)
    try:
        built = work / f"{job.name}.ko"
        if p.returncode != 0 or not built.is_file():
            why = _first_errors(p.stderr + p.stdout)
            raise ModuleError(f"{source} does not build against {headers}:\n{why}")
        _keep(built, job.cached)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return job.cached


def build_all(sources: list[Path], headers: Path | None) -> None:
    """Every one of `sources` that is not cached yet, built in one kbuild run
    and cached; one that does not build is left out (`build` says why)."""
    jobs: dict[str, _Job] = {}
    for source in sources:
        with contextlib.suppress(ModuleError):
            job = _job(source, headers)
            if not job.cached.is_file():
                jobs.setdefault(job.name, job)  # one of each name in a kbuild directory
    if not jobs or headers is None:
        return
    work, _ = _kbuild(list(jobs.values()), headers)
    left = []
    try:
        for job in jobs.values():
            if (work / f"{job.name}.ko").is_file():
                _keep(work / f"{job.name}.ko", job.cached)
            else:
                left.append(job)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(left) < len(jobs):
        return
    for job in left if len(left) > 1 else []:  # one that fails stops kbuild's modpost for all
        with contextlib.suppress(ModuleError):
            build(job.source, headers)


def vermagic(path: Path) -> str:
    """The module's vermagic (.modinfo); ModuleError if it is not an arm64 module."""
    try:
        if not path.is_file():
            raise ModuleError(f"{path} is not a regular file")
        if path.stat().st_size > MAX_MODULE:
            raise ModuleError(f"{path} is over {MAX_MODULE >> 20} MiB: not a kernel module")
        with path.open("rb") as f:
            elf = ELFFile(f)
            if elf["e_machine"] != "EM_AARCH64" or elf["e_type"] != "ET_REL":
                raise ModuleError(f"{path} is not an arm64 kernel module")
            info = elf.get_section_by_name(".modinfo")
            if info is None:
                raise ModuleError(f"{path} has no .modinfo: not a kernel module")
            data = info.data()
    except (ELFError, OSError, ValueError, KeyError) as e:
        raise ModuleError(f"{path} is not a kernel module: {e}") from None
    for entry in data.split(b"\0"):
        if entry.startswith(b"vermagic="):
            return entry[len(b"vermagic=") :].decode("utf-8", "replace")
    raise ModuleError(f"{path} has no vermagic: not a kernel module")


def check(path: Path, expected_vermagic: str | None) -> None:
    """ModuleError unless the module is arm64 with the kernel's vermagic."""
    found = vermagic(path)
    if expected_vermagic is not None and found != expected_vermagic:
        raise ModuleError(
            f"{path.name} was built for another kernel: vermagic {found!r}, "
            f"this kernel's is {expected_vermagic!r}"
        )
