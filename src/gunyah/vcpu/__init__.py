"""The vCPU: real AArch64 guest code, its HVC and SMC trapped into the model.

`loader` reads a guest (ELF or raw) into segments, bounded and without the
emulator; `engine` runs it on Unicorn at EL1 and hands every trap to the
model; `semihosting` serves the guest's console and exit.
"""

from .engine import (
    DEFAULT_STACK_SIZE,
    EXCP_BKPT,
    MAX_CALLS,
    RECENT_CALLS,
    Fault,
    RunResult,
    VCpu,
    make_engine,
)
from .loader import GuestError, Image, Segment, load_elf, load_raw

__all__ = [
    "DEFAULT_STACK_SIZE", "EXCP_BKPT", "MAX_CALLS", "RECENT_CALLS", "Fault", "GuestError",
    "Image", "RunResult", "Segment", "VCpu", "load_elf", "load_raw", "make_engine",
]  # fmt: skip
