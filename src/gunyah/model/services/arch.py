"""The Arm architecture service (owner 0): SMCCC_VERSION and
SMCCC_ARCH_FEATURES, as Gunyah's 32-bit dispatch serves them
(quic/gunyah-hypervisor hyp/vm/smccc/src/smccc.c) and as KVM does
(Linux arch/arm64/kvm/hypercalls.c: only SMCCC_VERSION in this model).

SMCCC_ARCH_FEATURES answers 0 for the calls the VM's services advertise:
measured, SMCCC_VERSION, SMCCC_ARCH_FEATURES and the standard-hypervisor
CALL_UID, but not its REVISION, though the hypervisor answers that call
(docs/real-gunyah.md section 6, PSCI edge cases)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import smccc
from ...smccc import MASK32
from .calling import fast32, kvm_result
from .registry import Route, declared_calls

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor


def _version(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    if not f.fast or f.smc64:
        return None
    value = hyp.persona.smccc_version

    def version(r: list[int]) -> None:
        r[0] = value

    return hyp.dirty(fast32(version))


def _arch_features(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    if not f.fast or f.smc64:
        return None
    advertised = hyp.advertised

    def arch_features(r: list[int]) -> None:
        """SMCCC_ARCH_FEATURES(X1): 0 for a call it advertises, else -1 (32-bit)."""
        g = smccc.FunctionId.decode(r[1])
        ok = g.fast and g.valid and not g.smc64 and (g.owner, g.function) in advertised
        r[0] = 0 if ok else MASK32

    return hyp.dirty(fast32(arch_features))


ARCH = declared_calls(
    "arch",
    {"SMCCC_VERSION": _version, "SMCCC_ARCH_FEATURES": _arch_features},
    advertised=("SMCCC_VERSION", "SMCCC_ARCH_FEATURES"),
)


def _kvm_version(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    return kvm_result(hyp.persona.smccc_version) if f.raw == smccc.SMCCC_VERSION else None


ARCH_KVM = declared_calls("arch-kvm", {"SMCCC_VERSION": _kvm_version})
