"""KVM's vendor hypervisor service (owner 6) in KVM's convention (every
answer sets X0..X3): its CALL_UID, KVM_FEATURES listing the calls of the
persona's bitmap (include/linux/arm-smccc.h ARM_SMCCC_KVM_FUNC_*), and
pKVM's HYP_MEMINFO: the granule of memory sharing, PAGE_SIZE, when X1..X3
are zero (Linux arch/arm64/kvm/hyp/nvhe/pkvm.c, kvm_handle_pvm_hvc64)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import smccc
from ...smccc import MASK64
from .calling import kvm_result
from .registry import Route, owned_range

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor

KVM_HYP_MEMINFO = smccc.fast64(smccc.OWNER_VENDOR_HYP, 2)  # 0xC6000002
PKVM_GRANULE = 4096


def _hyp_meminfo(regs: list[int]) -> None:
    bad = regs[1] or regs[2] or regs[3]
    regs[0:4] = [MASK64 - 2 if bad else PKVM_GRANULE, 0, 0, 0]  # -3: INVALID_PARAMETER


def _kvm(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    p, fid = hyp.persona, f.raw
    if fid == smccc.VENDOR_HYP_CALL_UID and p.uid is not None:
        return kvm_result(*p.uid)
    if fid == smccc.KVM_FEATURES and p.kvm_features is not None:
        return kvm_result(p.kvm_features)
    if fid == KVM_HYP_MEMINFO and p.kvm_features is not None and p.kvm_features >> 2 & 1:
        return _hyp_meminfo
    return None


KVM = owned_range("kvm", smccc.OWNER_VENDOR_HYP, range(0x10000), _kvm)
