"""Arm's TRNG interface (DEN0098; owner 4, functions 0x50..0x5f) as a
service: `model.trng` with the UUID the persona gives (quic/gunyah-hypervisor
hyp/platform/arm_trng_fi). Fast calls only."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ... import smccc
from .. import trng
from .registry import Route, owned_range

if TYPE_CHECKING:
    from ..hypervisor import Hypervisor


def _trng(hyp: Hypervisor, f: smccc.FunctionId) -> Route | None:
    uuid = hyp.persona.trng_uuid
    if uuid is None or not f.fast:
        return None
    return trng.Trng(uuid).route(f)


TRNG = owned_range(
    "trng", smccc.OWNER_STANDARD, range(trng.FUNCTION_FIRST, trng.FUNCTION_LAST + 1), _trng
)
