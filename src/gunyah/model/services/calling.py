"""How a service's answer goes back to the guest's registers: Gunyah's
32-bit and 64-bit dispatch (quic/gunyah-hypervisor 36ca3a2:
hyp/vm/smccc/aarch64/src/smccc_64.c, src/smccc.c) and KVM's (Linux
arch/arm64/kvm/hypercalls.c, smccc_set_retval). A service builds its routes
from these so that each convention is written once."""

from __future__ import annotations

from collections.abc import Callable

from ...smccc import MASK32, MASK64
from .registry import Route

Fast32 = Callable[[list[int]], None]  # writes 32-bit ret0..ret3 in place


def fast32(handler: Fast32) -> Route:
    """Gunyah's 32-bit dispatch: ret0..ret3 start as X0..X3 truncated, and
    all four go back zero-extended, whatever the handler wrote."""

    def route(regs: list[int]) -> None:
        r = [regs[0] & MASK32, regs[1] & MASK32, regs[2] & MASK32, regs[3] & MASK32]
        handler(r)
        regs[0:4] = [v & MASK32 for v in r]

    return route


def write(values: tuple[int, ...]) -> Route:
    """A constant answer: these values into X0 upwards, nothing else."""
    n = len(values)
    vals = list(values)

    def route(regs: list[int]) -> None:
        regs[0:n] = vals

    return route


def kvm_result(*values: int) -> Route:
    """KVM sets X0..X3 on every call it answers, zero where it has nothing."""
    out = [*values, 0, 0, 0][:4]

    def route(regs: list[int]) -> None:
        regs[0:4] = out

    return route


def unknown(regs: list[int]) -> None:
    """Gunyah's default for a call nobody handles: X0 = -1, nothing else."""
    regs[0] = MASK64


KVM_UNKNOWN = kvm_result(MASK64)
