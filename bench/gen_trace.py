"""Writes a synthetic arm64 KVM hypercall trace, as `trace-cmd`/ftrace prints it.

    python bench/gen_trace.py OUT [--mb N] [--seed S]

The mix looks like a guest's life: PSCI and SMCCC discovery, Gunyah's
identification over SMCCC and natively, hypercalls, other KVM events between
them, both the %08lx (older kernels) and %016lx formats, and a few
malformed lines. A block of lines is generated once and repeated to size.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

CALLS = [
    (0x84000000, 0), (0x80000000, 0), (0x80000001, 0), (0x8600FF01, 0), (0xC6008000, 0),
    (0xC4000003, 0), (0x84000002, 0), (0xC6008012, 0), (0xC600801B, 0), (0x86000000, 0),
    (0x0, 0x6000), (0x5, 0x6012), (0x84000008, 0), (0xC6003FFF, 0), (0x80FE0000, 0),
]  # fmt: skip
WEIGHTS = [40, 5, 10, 3, 3, 8, 8, 60, 60, 2, 2, 30, 1, 1, 1]


def block(rng: random.Random, lines: int = 20_000) -> bytes:
    out = []
    for i in range(lines):
        ts = f"{1000 + i * 0.000013:.6f}"
        cpu = rng.randrange(8)
        head = f"       CPU {cpu}/KVM-{4018 + cpu}    [{cpu:03d}] d..1. {ts}: "
        r = rng.random()
        if r < 0.25:
            out.append(head + "kvm_exit: TRAP: HSR_EC: 0x0016 (HVC64), PC: 0x0000000040080004")
            continue
        if r < 0.26:
            out.append(head + "kvm_hvc_arm64: HVC at 0x40080ff0 (r0: 0x8400zz00, imm: 0x0)")
            continue
        fid, imm = rng.choices(CALLS, WEIGHTS)[0]
        pc = 0x40080000 + 4 * rng.randrange(4096)
        kind = "SMC" if rng.random() < 0.1 else "HVC"
        event = "kvm_smc_arm64" if kind == "SMC" else "kvm_hvc_arm64"
        if rng.random() < 0.3:  # older kernels: %08lx
            out.append(head + f"{event}: {kind} at 0x{pc:08x} (r0: 0x{fid:08x}, imm: 0x{imm:x})")
        else:
            out.append(head + f"{event}: {kind} at 0x{pc:016x} (r0: 0x{fid:016x}, imm: 0x{imm:x})")
    return ("\n".join(out) + "\n").encode()


def write(path: Path, mb: int, seed: int = 1) -> Path:
    data = block(random.Random(seed))
    target = mb << 20
    with open(path, "wb") as f:
        f.write(b"# tracer: nop\n#\n")
        written = 0
        while written < target:
            f.write(data)
            written += len(data)
    return path


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--mb", type=int, default=1024, help="size in MiB (default 1024)")
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print(write(a.out, a.mb, a.seed))
