"""Everything known about a function ID, and what a call's results say:
the decoders behind `gunyah decode` and `gunyah call`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .. import smccc
from .calls import CLASS_HYPERCALL, HYP_IDENTIFY_NUMBER, VendorHypCall, native_number
from .errors import error_name
from .hvc import DECLARED
from .identify import HypIdentify
from .uids import CallUid


@dataclass(frozen=True)
class FunctionDescription:
    """Everything known about a function ID: its SMCCC fields, the name SMCCC
    gives it, and for the vendor-hypervisor owner each hypervisor's reading
    (Gunyah's first), which decide the name where SMCCC gives none."""

    fid: smccc.FunctionId
    gunyah: VendorHypCall | None  # vendor-hypervisor owner only
    kvm: str | None

    @property
    def name(self) -> str | None:
        name = smccc.generic_name(self.fid)
        if name is None and self.gunyah is not None:
            name = self.gunyah.name if self.gunyah.name is not None else self.kvm
        return name

    def to_dict(self) -> dict[str, Any]:
        out = smccc.function_id_dict(self.fid)
        if self.gunyah is not None:
            fid, call = self.fid, self.gunyah
            out["gunyah"] = {
                **call.to_dict(),
                "accepted": call.accepted(fid.fast, fid.smc64),
                "accepted_form": call.accepted_form,
            }
            out["kvm"] = self.kvm
        out["name"] = self.name
        return out


def describe_function(value: int) -> FunctionDescription:
    """A function ID described (`gunyah decode`)."""
    fid = smccc.FunctionId.decode(value)
    if fid.owner != smccc.OWNER_VENDOR_HYP:
        return FunctionDescription(fid, None, None)
    return FunctionDescription(
        fid, VendorHypCall.decode(fid.function), smccc.KVM_VENDOR_CALLS.get(fid.function)
    )


def describe_function_id(value: int) -> dict[str, Any]:
    """`describe_function(value).to_dict()`: the JSON form."""
    return describe_function(value).to_dict()


@dataclass(frozen=True)
class UidDescription:
    """A call UID described (`gunyah decode --uid`): the decoded UID and
    whether it is one of Gunyah's."""

    uid: CallUid

    def to_dict(self) -> dict[str, Any]:
        return {**self.uid.to_dict(), "is_gunyah": self.uid.is_gunyah}


def describe_uid(words: list[int]) -> UidDescription:
    """ValueError unless there are four 32-bit words."""
    if len(words) != 4:
        raise ValueError(f"a call UID is 4 words W0 W1 W2 W3, got {len(words)}")
    return UidDescription(CallUid.decode(*words))


def describe_results(function_id: int | None, imm: int, results: list[int]) -> dict[str, Any]:
    """What X0..X3 (already at the call's width) say, for the calls whose results
    this ABI defines: a call UID query, and hypervisor_identify by either path."""
    out: dict[str, Any] = {}
    if function_id is None:
        number = native_number(imm)
        if number == HYP_IDENTIFY_NUMBER and results[0] != smccc.MASK64:
            out["identify"] = HypIdentify.decode(*results[:4]).to_dict()
        elif number is not None:
            out.update(_error(number, results[0], 32))
        return out
    fid = smccc.FunctionId.decode(function_id)
    if fid.function == smccc.FUNC_CALL_UID and not fid.smc64:
        if not smccc.uid_is_unknown(results) and all(r <= smccc.MASK32 for r in results[:4]):
            out["uid"] = CallUid.decode(*results[:4]).to_dict()
    elif fid.owner == smccc.OWNER_VENDOR_HYP and fid.fast and fid.smc64:
        call = VendorHypCall.decode(fid.function)
        if call.name == "hypervisor_identify" and results[0] != smccc.MASK64:
            out["identify"] = HypIdentify.decode(*results[:4]).to_dict()
        elif call.call_class == CLASS_HYPERCALL:
            out.update(_error(call.number, results[0], 64))
    return out


def _error(number: int, x0: int, bits: int) -> dict[str, Any]:
    """X0 as the Gunyah error a declared call returns there: 32 bits in the
    native form, the whole register (sign-extended) in the SMCCC form."""
    call = DECLARED.get(number)
    if call is None or not call.outputs or call.outputs[0].ctype != "error":
        return {}
    code = smccc.to_signed(x0 & ((1 << bits) - 1), bits)
    return {"error": {"code": code, "name": error_name(code)}}
