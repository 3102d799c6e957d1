"""The vCPU: real AArch64 guest code, its HVC and SMC trapped into the model.

`loader` reads a guest (ELF or raw) into segments, bounded and without the
emulator; `engine` runs it on Unicorn at EL1 and hands every trap to the
model; `semihosting` serves the guest's console and exit; `secondary` runs a
secondary VM's vCPU for the model's vcpu_run.
"""

from .engine import (
    DEFAULT_STACK_SIZE,
    EXCP_BKPT,
    MAX_CALLS,
    RECENT_CALLS,
    Fault,
    RunResult,
    VCpu,
    el1_engine,
    make_engine,
)
from .loader import GuestError, Image, Segment, load_elf, load_raw
from .secondary import Region, RegionError, UnicornSecondary

__all__ = [
    "DEFAULT_STACK_SIZE", "EXCP_BKPT", "MAX_CALLS", "RECENT_CALLS", "Fault", "GuestError",
    "Image", "Region", "RegionError", "RunResult", "Segment", "UnicornSecondary", "VCpu",
    "el1_engine", "load_elf", "load_raw", "make_engine",
]  # fmt: skip
