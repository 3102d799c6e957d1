"""The guest side: how a Linux guest decides it runs under Gunyah (docs/abi.md section 5).

It speaks only through a `Conduit`, never to the model directly, so the same
procedure runs against the in-process model or anything else behind a trap.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .. import abi, smccc
from ..conduit import Conduit


@dataclass(frozen=True)
class Verdict:
    """What the procedure decides, and the exit status that says it: the
    command's, a test guest's and the built-in guest's alike."""

    name: str
    exit_status: int
    meaning: str


VERDICT_TABLE = (
    Verdict("supported", 0, "Gunyah, with an API this guest can use"),
    Verdict("not-gunyah", 1, "not Gunyah: no other Gunyah call is meaningful"),
    Verdict("unsupported-api", 3, "Gunyah with an API the guest must refuse"),
)
VERDICT_SUPPORTED, VERDICT_NOT_GUNYAH, VERDICT_UNSUPPORTED_API = (v.name for v in VERDICT_TABLE)
VERDICTS = tuple(v.name for v in VERDICT_TABLE)
VERDICT_EXIT = {v.name: v.exit_status for v in VERDICT_TABLE}
EXIT_VERDICTS = {v.exit_status: v.name for v in VERDICT_TABLE}


@dataclass(frozen=True)
class GuestProfile:
    """What the guest itself is; the API must match it."""

    big_endian: bool = False
    is_64bit: bool = True


AARCH64_LE = GuestProfile()


@dataclass(frozen=True)
class Identification:
    """The outcome of the procedure, with everything it saw."""

    uid: abi.CallUid
    identify: abi.HypIdentify | None
    verdict: str
    reasons: tuple[str, ...] = field(default=())

    @property
    def is_gunyah(self) -> bool:
        return self.uid.is_gunyah

    @property
    def banner(self) -> str | None:
        """The line the Linux driver would print, when it gets that far."""
        return self.identify.linux_banner if self.identify else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uid": self.uid.to_dict(),
            "is_gunyah": self.is_gunyah,
            "identify": self.identify.to_dict() if self.identify else None,
            "verdict": self.verdict,
            "reasons": list(self.reasons),
        }


def get_uid(conduit: Conduit) -> abi.CallUid:
    """Step 1: CALL_UID over SMCCC, keeping the low 32 bits of W0..W3."""
    w0, w1, w2, w3 = conduit.call32(smccc.VENDOR_HYP_CALL_UID)[:4]
    return abi.CallUid.decode(w0, w1, w2, w3)


def hyp_identify(conduit: Conduit) -> abi.HypIdentify:
    """Step 3: HYP_IDENTIFY; API info = X0, flags = X1..X3, 64 bits each."""
    x0, x1, x2, x3 = conduit.call64(abi.HYP_IDENTIFY)[:4]
    return abi.HypIdentify.decode(x0, x1, x2, x3)


def judge(ident: abi.HypIdentify, profile: GuestProfile = AARCH64_LE) -> tuple[str, ...]:
    """Step 5: why a guest of this profile must refuse this API (empty: it may go on)."""
    reasons = []
    if ident.api_version != abi.API_V1:
        reasons.append(f"API version {ident.api_version} is not the supported version 1")
    if ident.big_endian != profile.big_endian:
        api = "big" if ident.big_endian else "little"
        own = "big" if profile.big_endian else "little"
        reasons.append(f"the API is {api}-endian but the guest is {own}-endian")
    if ident.is_64bit != profile.is_64bit:
        api = "64" if ident.is_64bit else "32"
        own = "64" if profile.is_64bit else "32"
        reasons.append(f"the API is {api}-bit but the guest is {own}-bit")
    return tuple(reasons)


# The call UIDs the Linux driver's final form takes for Gunyah (its
# arch_is_gunyah_guest(); guest.references names the drivers a verdict can
# be judged by, and this is their default).
TAKEN_UIDS = frozenset({"gunyah"})


def takes(uid: abi.CallUid, taken: frozenset[str] = TAKEN_UIDS) -> bool:
    known = uid.known
    return known is not None and known.key in taken


def conclude(
    uid: abi.CallUid,
    ident: abi.HypIdentify | None,
    profile: GuestProfile = AARCH64_LE,
    taken: frozenset[str] = TAKEN_UIDS,
) -> Identification:
    """The verdict the procedure reaches from what the two calls returned,
    for a guest that takes the `taken` UIDs (abi.KNOWN_UIDS keys) for Gunyah."""
    if not takes(uid, taken):
        if uid.not_supported:
            why = "CALL_UID is not supported (W0 = 0xffffffff)"
        elif uid.is_gunyah:
            why = (f"call UID {uid.uuid} is {uid.hypervisor}, which this guest's driver "
                   "does not take for Gunyah")  # fmt: skip
        else:
            why = f"call UID {uid.uuid} is {uid.hypervisor}, not a known Gunyah UID"
        return Identification(uid, None, VERDICT_NOT_GUNYAH, (why,))
    if ident is None:
        raise ValueError("a Gunyah UID without a hypervisor_identify result")
    reasons = judge(ident, profile)
    verdict = VERDICT_UNSUPPORTED_API if reasons else VERDICT_SUPPORTED
    return Identification(uid, ident, verdict, reasons)


def identify(
    conduit: Conduit, profile: GuestProfile = AARCH64_LE, taken: frozenset[str] = TAKEN_UIDS
) -> Identification:
    """The whole procedure: UID, then (only for Gunyah) identify and judge."""
    uid = get_uid(conduit)
    return conclude(uid, hyp_identify(conduit) if takes(uid, taken) else None, profile, taken)
