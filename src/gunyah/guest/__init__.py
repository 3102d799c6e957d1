"""The guest side: the Linux guest's identification procedure (`driver`,
speaking only through a conduit), and the same procedure as AArch64 machine
code run on the vCPU (`builtin`, imported on its own: it loads the emulator);
and a client of the resource manager's RPC over the model's queues
(`rm_client`, imported on its own: it drives the model)."""

from .driver import (
    AARCH64_LE,
    EXIT_VERDICTS,
    VERDICT_EXIT,
    VERDICT_NOT_GUNYAH,
    VERDICT_SUPPORTED,
    VERDICT_TABLE,
    VERDICT_UNSUPPORTED_API,
    VERDICTS,
    GuestProfile,
    Identification,
    Verdict,
    conclude,
    get_uid,
    hyp_identify,
    identify,
    judge,
)

__all__ = [
    "AARCH64_LE", "EXIT_VERDICTS", "VERDICTS", "VERDICT_EXIT", "VERDICT_NOT_GUNYAH",
    "VERDICT_SUPPORTED", "VERDICT_TABLE", "VERDICT_UNSUPPORTED_API", "GuestProfile",
    "Identification", "Verdict", "conclude", "get_uid", "hyp_identify", "identify", "judge",
]  # fmt: skip
