"""`gunyah identify`: the guest's identification against the model."""

from __future__ import annotations

import argparse
from typing import Any

from .. import render
from ..conduit import Conduit, Kind
from ..guest import VERDICT_EXIT, identify
from ..guest.references import DEFAULT_REFERENCE, REFERENCES
from ..model import Hypervisor
from .common import (
    EXIT_GUEST_FAILED,
    UsageError,
    add_json,
    add_persona,
    emit,
    error,
)


def cmd_identify(args: argparse.Namespace) -> int:
    kind: Kind = "smc" if args.smc else "hvc"
    hyp = Hypervisor(args.persona)
    reference = REFERENCES[args.reference]
    if args.vcpu and reference is not DEFAULT_REFERENCE:
        raise UsageError(f"--vcpu runs the built-in guest, which takes the UIDs of "
                         f"'{DEFAULT_REFERENCE.name}'; --reference goes with the "
                         "Python driver")  # fmt: skip
    if args.vcpu:
        from ..guest.builtin import GuestFailure, run_builtin

        try:
            result, _run = run_builtin(hyp, kind)
        except GuestFailure as e:
            error(str(e))
            return EXIT_GUEST_FAILED
    else:
        result = identify(Conduit(hyp, kind), taken=reference.taken)
    data = {
        "persona": args.persona,
        "conduit": kind,
        "driver": "vcpu" if args.vcpu else "python",
        "reference": reference.name,
        **result.to_dict(),
    }
    emit(args, data, render.identification(data))
    return VERDICT_EXIT[result.verdict]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "identify",
        help="run the guest's identification against the hypervisor model",
        description="Run the Linux guest's identification procedure (CALL_UID, then "
        "hypervisor_identify) against the hypervisor model and report what it decides. "
        "Exit status: 0 supported, 1 not Gunyah, 3 Gunyah with an API this guest "
        "must refuse, 2 bad usage.",
    )
    add_persona(p)
    p.add_argument("--smc", action="store_true", help="use SMC #0 as the conduit (default HVC #0)")
    p.add_argument(
        "--vcpu",
        action="store_true",
        help="run the procedure as AArch64 machine code (the built-in guest) on the vCPU",
    )
    p.add_argument("--reference", choices=list(REFERENCES), default=DEFAULT_REFERENCE.name,
                   help="which call UIDs the guest takes for Gunyah: those of the Linux "
                   "driver's final form ('linux', the standard UID; default) or of the "
                   "seed's v8 patch ('seed-v8', the Qualcomm UID too)")  # fmt: skip
    add_json(p)
    p.set_defaults(func=cmd_identify)
