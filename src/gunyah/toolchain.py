"""Builds AArch64 guest programs from C with `ziglang`, a pip-installable clang.

Used by the tests and to rebuild the built-in guest that ships in the
package (`python -m gunyah.toolchain`). Users of `gunyah run` need no
compiler: any static AArch64 ELF will do.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

GUESTS_DIR = Path(__file__).resolve().parent / "guests"
BUILTIN_SOURCE = GUESTS_DIR / "identify.c"
BUILTIN_ELF = GUESTS_DIR / "identify.elf"
SHIM_DIR = Path(__file__).resolve().parent / "boot" / "shim"
SHIM_ELF = SHIM_DIR / "shim.elf"
PROBE_DIR = Path(__file__).resolve().parent / "probe"
ACTIVE_ELF = PROBE_DIR / "active.elf"
VMM_DIR = Path(__file__).resolve().parent / "vmm"
VMM_ELF = VMM_DIR / "vmm.elf"
VMM_UAPI_HEADER = VMM_DIR / "gunyah_uapi.h"  # written from gunyah.abi.vm_manager
VM_INIT_ELF = VMM_DIR / "vm_init.elf"  # a Linux secondary's /init (gunyah boot --vm)
# Code that must not touch FP/SIMD registers (they are the guest's, and it
# saves none): the features off, since zig's clang ignores -mgeneral-regs-only.
NO_FP = "-neon-fp_armv8"
# The EL2 shim: EL2/EL3 system registers and instructions, no FP state, no
# unaligned accesses (its MMU is off), at its own address.
SHIM_FLAGS = (
    f"-mcpu=generic+el2vmsa+el3{NO_FP}", "-mstrict-align",
    f"-Wl,-T,{SHIM_DIR / 'shim.ld'}",
)  # fmt: skip

CFLAGS = (
    "-target", "aarch64-freestanding-none",
    "-nostdlib", "-ffreestanding", "-static",
    "-O2", "-g0", "-fno-ident", "-fno-sanitize=all",
    "-Wall", "-Werror",
    "-Wl,--build-id=none",
)  # fmt: skip


class BuildError(Exception):
    """The compiler refused a guest; the message carries what it said."""


def build(
    sources: list[Path], output: Path, extra: tuple[str, ...] = (), cwd: Path | None = None
) -> Path:
    """Compile and link a freestanding static AArch64 ELF; returns its path.
    `cwd`: where the linker looks for a script's INCLUDE (zig's cc takes no -L)."""
    if importlib.util.find_spec("ziglang") is None:
        raise BuildError(
            "the AArch64 compiler (ziglang) is not installed: "
            "pip install -e '.[test]' installs it with the other test tools"
        )
    cmd = [sys.executable, "-m", "ziglang", "cc", *CFLAGS, *extra, f"-I{GUESTS_DIR}",
           "-o", str(output), *map(str, sources)]  # fmt: skip
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=cwd)
    except FileNotFoundError as e:
        raise BuildError(f"cannot run the compiler: {e}") from None
    if p.returncode != 0:
        raise BuildError(f"building {output.name} failed:\n{p.stderr.strip()}")
    return output


def flat_binary(elf: Path) -> bytes:
    """An ELF's loadable bytes laid out from its lowest physical address: the
    raw image a VM's memory holds at its base (`gunyah boot --vm` takes it)."""
    from elftools.elf.elffile import ELFFile

    with elf.open("rb") as f:
        segs = [s for s in ELFFile(f).iter_segments() if s["p_type"] == "PT_LOAD"]
        base = min(s["p_paddr"] for s in segs)
        image = bytearray(max(s["p_paddr"] + s["p_filesz"] for s in segs) - base)
        for s in segs:
            image[s["p_paddr"] - base : s["p_paddr"] - base + s["p_filesz"]] = s.data()
    return bytes(image)


def build_builtin(output: Path = BUILTIN_ELF) -> Path:
    """(Re)build the guest that `gunyah identify --vcpu` runs."""
    return build([BUILTIN_SOURCE], output, ("-Wl,-e,_start",))


def build_shim(output: Path = SHIM_ELF) -> Path:
    """(Re)build the EL2 shim that `gunyah boot` loads, from its sources and
    the layout they include (shim/layout.h, shim/layout.ld: boot/layout.py)."""
    sources = [SHIM_DIR / "start.S", SHIM_DIR / "shim.c"]
    return build(sources, output.resolve(), SHIM_FLAGS, cwd=SHIM_DIR)  # shim.ld: INCLUDE layout.ld


def build_active(output: Path = ACTIVE_ELF) -> Path:
    """(Re)build the program `gunyah probe --active` runs on the device (a
    static Linux executable: freestanding, it makes its own system calls)."""
    from .probe.active import c_defines

    return build([PROBE_DIR / "active.c"], output, ("-Wl,-e,_start", "-Os", *c_defines()))


def write_uapi_header(output: Path = VMM_UAPI_HEADER) -> Path:
    """(Re)write the /dev/gunyah UAPI header our VMM and our module include."""
    from .abi.vm_manager import c_header

    output.write_text(c_header())
    return output


def build_vmm(output: Path = VMM_ELF) -> Path:
    """(Re)build our VMM (`vmm IMAGE DTB [MEM_SIZE]`), a static Linux
    executable that runs a VM through /dev/gunyah in a booted primary."""
    return build([VMM_DIR / "vmm.c"], output, ("-Wl,-e,_start", "-Os", f"-I{VMM_DIR}"))


def build_vm_init(output: Path = VM_INIT_ELF) -> Path:
    """(Re)build the /init `gunyah boot --vm` gives a Linux secondary: it
    reports its uptime and powers the VM off."""
    return build([VMM_DIR / "vm_init.c"], output, ("-Wl,-e,_start", "-Os"))


if __name__ == "__main__":
    from .boot.layout import write_generated

    print(*write_generated(), sep="\n")
    print(build_builtin())
    print(build_shim())
    print(build_active())
    print(write_uapi_header())
    print(build_vmm())
    print(build_vm_init())
