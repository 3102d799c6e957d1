"""PSCI (owner 4, functions 0x00..0x1f) as services: each set of
`model.psci` (Gunyah's hyp/vm/psci, the QEMU build's psci_pc, KVM's) in the
convention of the hypervisor that registers it.

Gunyah: fast calls only; a 32-bit call through the 32-bit dispatch (X0..X3
in and out at 32 bits), a 64-bit one through the 64-bit dispatch. KVM: the
whole ID must be the call's (no SVE hint); a 32-bit call's arguments
narrowed to 32 bits; X0 the answer in 64 bits (a negative code
sign-extended), X1..X3 zero; calls that do not return leave the registers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import smccc
from ...conduit import Action
from ...smccc import MASK32, MASK64
from ..psci import GUNYAH, GUNYAH_PC, KVM, Handler, PsciSet, handler_for
from .registry import MakeRoute, Route, owned_range

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor

FUNCTIONS = range(0x00, 0x20)  # DEN0022: PSCI's part of the standard service range
_NO_RETURN = ("system_off", "system_reset", "cpu_off")


def _psci32(hyp: Hypervisor, handler: Handler) -> Route:
    def route(regs: list[int]) -> Action | None:
        r = [regs[0] & MASK32, regs[1] & MASK32, regs[2] & MASK32, regs[3] & MASK32]
        action = handler(hyp.power, r, hyp.cpu)
        regs[0:4] = [v & MASK32 for v in r]
        return action

    return route


def _psci64(hyp: Hypervisor, handler: Handler) -> Route:
    def route(regs: list[int]) -> Action | None:
        r = regs[0:4]
        action = handler(hyp.power, r, hyp.cpu)
        regs[0:4] = [v & MASK64 for v in r]
        return action

    return route


def _gunyah(psci_set: PsciSet) -> MakeRoute:
    def make(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
        handler = handler_for(psci_set, f.function, f.smc64) if f.fast else None
        if handler is None:
            return None
        return _psci64(hyp, handler) if f.smc64 else hyp.dirty(_psci32(hyp, handler))

    return make


def _kvm(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    handler = handler_for(KVM, f.function, f.smc64) if f.raw == f.canonical else None
    if handler is None:
        return None
    width = MASK64 if f.smc64 else MASK32

    def route(regs: list[int]) -> Action | None:
        r = [regs[0], regs[1] & width, regs[2] & width, regs[3] & width]
        action = handler(hyp.power, r, hyp.cpu)
        if action is not None and action.kind in _NO_RETURN:
            return action  # no return to the guest
        regs[0:4] = [r[0] & MASK64, 0, 0, 0]
        return action

    return route


PSCI = owned_range("psci", smccc.OWNER_STANDARD, FUNCTIONS, _gunyah(GUNYAH))
PSCI_PC = owned_range("psci-pc", smccc.OWNER_STANDARD, FUNCTIONS, _gunyah(GUNYAH_PC))
PSCI_KVM = owned_range("psci-kvm", smccc.OWNER_STANDARD, FUNCTIONS, _kvm)
