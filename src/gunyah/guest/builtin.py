"""The built-in AArch64 guest: the identification procedure as machine code.

`guests/identify.c`, built into `guests/identify.elf` and shipped in the
package, makes the same two calls as the Python driver and reports what it
got over semihosting. This module runs it on the vCPU and turns its report
and exit status into the same `Identification` the Python driver returns.
"""

from __future__ import annotations

from .. import abi
from ..conduit import Kind
from ..model import Hypervisor
from ..toolchain import BUILTIN_ELF
from ..vcpu import RunResult, VCpu, load_elf
from .driver import EXIT_VERDICTS, Identification, conclude


class GuestFailure(Exception):
    """The guest did not finish its procedure, or reported something malformed."""


def run_builtin(hyp: Hypervisor, kind: Kind = "hvc") -> tuple[Identification, RunResult]:
    """The shipped guest on the vCPU against `hyp`, over HVC or SMC (X0 at entry)."""
    result = VCpu(hyp, trace=True).run(load_elf(BUILTIN_ELF), {0: int(kind == "smc")})
    return parse_report(result), result


def parse_report(result: RunResult) -> Identification:
    """Rebuild the guest's findings from its output; its exit status is its verdict."""
    if result.fault is not None or result.exit_status not in EXIT_VERDICTS:
        why = result.fault.message if result.fault else f"exit status {result.exit_status}"
        raise GuestFailure(f"the built-in guest did not finish: {why}")
    seen: dict[str, list[int]] = {}
    try:
        for line in result.output.splitlines():
            tag, *words = line.split()
            seen[tag] = [int(w, 16) for w in words]
        uid = abi.CallUid.decode(*seen["uid"])
        ident = abi.HypIdentify.decode(*seen["identify"]) if "identify" in seen else None
    except (KeyError, TypeError, ValueError) as e:
        raise GuestFailure(
            f"the built-in guest's report is malformed ({e}): {result.output!r}"
        ) from None
    verdict = EXIT_VERDICTS[result.exit_status]
    try:
        expected = conclude(uid, ident)
    except ValueError as e:
        raise GuestFailure(f"the built-in guest's report is incomplete: {e}") from None
    if expected.verdict != verdict:
        raise GuestFailure(
            f"the built-in guest says {verdict} where the procedure says {expected.verdict}"
        )
    return expected
