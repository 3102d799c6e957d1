"""Gunyah's vendor hypervisor service (owner 6; quic/gunyah-hypervisor
hyp/vm/smccc/src/smccc_hypercalls.c): class 0b10 (hypercall) only as fast
64-bit, the native call's SMCCC form; class 0b11 (service) only as fast
32-bit: CALL_UID writes X0..X3, REVISION the 64-bit API info word to X0;
CALL_COUNT is deprecated, platform calls are none in the public build:
both the dispatcher's default (-1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ... import abi, smccc
from .calling import write
from .registry import Route, owned_range

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor
    from ..personas import Persona

# The registers each service call writes for a persona, None where it has none
VENDOR_SERVICES: dict[int, Callable[[Persona], tuple[int, ...] | None]] = {
    abi.SERVICE_CALL_UID: lambda p: p.uid,  # X0..X3
    abi.SERVICE_REVISION: lambda p: (p.api_info,),  # the 64-bit API info word in X0
}


def _vendor(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    call = abi.VendorHypCall.decode(f.function)
    if call.call_class == abi.CLASS_HYPERCALL:
        if not (f.fast and f.smc64) or hyp.native is None:
            return None
        return hyp.native.smccc_route(call.number)
    if call.call_class == abi.CLASS_SERVICE and f.fast and not f.smc64:
        service = VENDOR_SERVICES.get(call.number)
        values = service(hyp.persona) if service is not None else None
        if values is not None:
            return hyp.dirty(write(values))
    return None


VENDOR_HYP = owned_range("vendor-hyp", smccc.OWNER_VENDOR_HYP, range(0x10000), _vendor)
