"""Everything known about a function ID, and what a call's results say:
the decoders behind `gunyah decode` and `gunyah call`."""

from __future__ import annotations

from typing import Any

from .. import smccc
from .calls import HYP_IDENTIFY_NUMBER, VendorHypCall, native_number
from .identify import HypIdentify
from .uids import CallUid


def describe_function_id(value: int) -> dict[str, Any]:
    """Everything known about a function ID, SMCCC fields plus Gunyah's reading."""
    fid = smccc.FunctionId.decode(value)
    out = smccc.function_id_dict(fid)
    name = smccc.generic_name(fid)
    if fid.owner == smccc.OWNER_VENDOR_HYP:
        # vendor-specific: each hypervisor's reading, Gunyah's first
        call = VendorHypCall.decode(fid.function)
        out["gunyah"] = {
            **call.to_dict(),
            "accepted": call.accepted(fid.fast, fid.smc64),
            "accepted_form": call.accepted_form,
        }
        kvm = smccc.KVM_VENDOR_CALLS.get(fid.function)
        out["kvm"] = kvm
        if name is None and call.name is not None:
            name = call.name
        elif name is None and kvm is not None:
            name = kvm
    out["name"] = name
    return out


def describe_results(function_id: int | None, imm: int, results: list[int]) -> dict[str, Any]:
    """What X0..X3 (already at the call's width) say, for the calls whose results
    this ABI defines: a call UID query, and hypervisor_identify by either path."""
    out: dict[str, Any] = {}
    if function_id is None:
        number = native_number(imm)
        if number == HYP_IDENTIFY_NUMBER and results[0] != smccc.MASK64:
            out["identify"] = HypIdentify.decode(*results[:4]).to_dict()
        return out
    fid = smccc.FunctionId.decode(function_id)
    if fid.function == smccc.FUNC_CALL_UID and not fid.smc64:
        if not smccc.uid_is_unknown(results) and all(r <= smccc.MASK32 for r in results[:4]):
            out["uid"] = CallUid.decode(*results[:4]).to_dict()
    elif fid.owner == smccc.OWNER_VENDOR_HYP and fid.fast and fid.smc64:
        call = VendorHypCall.decode(fid.function)
        if call.name == "hypervisor_identify" and results[0] != smccc.MASK64:
            out["identify"] = HypIdentify.decode(*results[:4]).to_dict()
    return out
