"""Arm's True Random Number Generator firmware interface (DEN0098) as the
Gunyah QEMU build serves it (quic/gunyah-hypervisor 36ca3a2:
hyp/platform/arm_trng_fi/src/arm_trng.c), with random bits from the host's
CSPRNG.

Standard-service fast calls 0x50..0x5f: VERSION, FEATURES and GET_UUID only
in the 32-bit convention, RND in both; any other function of the range
answers NOT_SUPPORTED at the call's width. The build skips the must-be-zero
checks of the arguments (its LINUX_TRNG_WORKAROUND).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from .. import smccc
from ..smccc import MASK32, MASK64

FUNCTION_FIRST, FUNCTION_LAST = 0x50, 0x5F
_NUMBER = {name: number for number, name in smccc.STANDARD_SECURE_CALLS.items()}
VERSION, FEATURES, GET_UUID, RND = (_NUMBER[f"TRNG_{n}"] for n in ("VERSION", "FEATURES",
                                                                    "GET_UUID", "RND"))
VERSION_1_0 = 0x10000
SUCCESS = 0
NOT_SUPPORTED = MASK64  # -1, written as a 64-bit value
INVALID_PARAMETERS = MASK64 - 1  # -2
MAX_BITS = {False: 96, True: 192}  # RND32, RND64

Route = Callable[[list[int]], None]


def _words(bits: int) -> list[int]:
    """`bits` random bits as the build gathers them: six 32-bit words, the last
    filled first, the one that takes the last few bits masked to them."""
    data = [0] * 6
    remain, i = bits, 5
    while remain:
        word = secrets.randbits(32)
        if remain < 32:
            word &= (1 << remain) - 1
            remain = 0
        else:
            remain -= 32
        data[i] = word
        i -= 1
    return data


def _rnd(regs: list[int], bits: int, smc64: bool) -> None:
    regs[1:4] = [0, 0, 0]
    if bits == 0 or bits > MAX_BITS[smc64]:
        regs[0] = INVALID_PARAMETERS
        return
    d = _words(bits)
    if smc64:
        regs[1:4] = [d[1] | d[0] << 32, d[3] | d[2] << 32, d[5] | d[4] << 32]
    else:
        regs[1:4] = [d[3], d[4], d[5]]
    regs[0] = SUCCESS


class Trng:
    """The TRNG service of one VM; `uuid` is what GET_UUID answers."""

    def __init__(self, uuid: tuple[int, int, int, int]) -> None:
        self.uuid = list(uuid)

    def route(self, f: smccc.FunctionId) -> Route | None:
        """The route of a fast standard-service call, None outside TRNG's range."""
        if not FUNCTION_FIRST <= f.function <= FUNCTION_LAST:
            return None
        if f.smc64:
            if f.function == RND:
                return lambda regs: _rnd(regs, regs[1], True)
            return _unsupported64
        return {VERSION: _version, FEATURES: _features, GET_UUID: self._uuid,
                RND: lambda regs: _rnd(regs, regs[1] & MASK32, False)}.get(
            f.function, _unsupported32)  # fmt: skip

    def _uuid(self, regs: list[int]) -> None:
        regs[0:4] = self.uuid


def _version(regs: list[int]) -> None:
    regs[0:4] = [VERSION_1_0, 0, 0, 0]


def _features(regs: list[int]) -> None:
    """FEATURES(X1): 0 for a TRNG function the build serves at that width."""
    f = smccc.FunctionId.decode(regs[1] & MASK32)
    ok = f.owner == smccc.OWNER_STANDARD and f.fast and f.valid and (
        f.function == RND or (f.function in (VERSION, FEATURES, GET_UUID) and not f.smc64)
    )
    regs[0] = SUCCESS if ok else NOT_SUPPORTED


def _unsupported32(regs: list[int]) -> None:
    regs[0] = MASK32


def _unsupported64(regs: list[int]) -> None:
    regs[0] = MASK64
