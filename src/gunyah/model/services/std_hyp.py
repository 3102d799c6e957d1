"""The standard hypervisor service (owner 5) as Gunyah serves it: its
general queries CALL_UID and REVISION through the 32-bit dispatch
(quic/gunyah-hypervisor hyp/vm/smccc/src/smccc.c). CALL_UID is advertised
by SMCCC_ARCH_FEATURES, REVISION is not (measured)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import smccc
from .calling import fast32
from .registry import Route, declared_calls

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor


def _call_uid(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    uid = hyp.persona.uid
    if not uid or not f.fast or f.smc64:
        return None

    def call_uid(r: list[int]) -> None:
        r[0:4] = uid

    return hyp.dirty(fast32(call_uid))


def _revision(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    if not f.fast or f.smc64:
        return None

    def revision(r: list[int]) -> None:
        r[0], r[1] = 1, 0  # major 1, minor 0

    return hyp.dirty(fast32(revision))


STD_HYP = declared_calls(
    "std-hyp",
    {"STD_HYP_CALL_UID": _call_uid, "STD_HYP_REVISION": _revision},
    advertised=("STD_HYP_CALL_UID",),
)
