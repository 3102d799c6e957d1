"""The guest drivers a verdict is judged by: each takes a set of call UIDs
for Gunyah, and a guest of it concludes "not-gunyah" from any other.

The Linux driver's final form (arch/arm64/gunyah/gunyah_hypercall.c,
arch_is_gunyah_guest()) takes the standard Gunyah UID only, as Android's
pvmfw and Qualcomm's watchdog driver do; the v8 patch this project began
from (the seed) also took Qualcomm's. Our driver, built-in guest and kernel
module follow the default, the latest posted driver.
"""

from __future__ import annotations

from dataclasses import dataclass

from .. import abi
from ..model import Persona
from .driver import TAKEN_UIDS, VERDICT_NOT_GUNYAH, takes


@dataclass(frozen=True)
class Reference:
    name: str
    description: str
    uid_keys: tuple[str, ...]  # keys of abi.KNOWN_UIDS it takes for Gunyah

    @property
    def uids(self) -> tuple[abi.KnownUid, ...]:
        return tuple(abi.UIDS_BY_KEY[k] for k in self.uid_keys)

    @property
    def taken(self) -> frozenset[str]:
        return frozenset(self.uid_keys)

    def takes(self, uid: abi.CallUid) -> bool:
        return takes(uid, self.taken)

    def expected_verdict(self, persona: Persona) -> str:
        """What a correct guest of this reference concludes against the
        persona: the persona's verdict, or not-gunyah where it answers a
        Gunyah UID this reference does not take."""
        if persona.uid is not None:
            uid = abi.CallUid.decode(*persona.uid)
            if uid.is_gunyah and not self.takes(uid):
                return VERDICT_NOT_GUNYAH
        return persona.expected_verdict

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "description": self.description,
                "uids": [str(k.uuid) for k in self.uids]}  # fmt: skip


LINUX = Reference(
    "linux",
    "the Linux driver's final form (arch/arm64/gunyah/gunyah_hypercall.c, "
    "arch_is_gunyah_guest()): the standard Gunyah UID only",
    tuple(sorted(TAKEN_UIDS)),  # what our own driver takes
)
SEED_V8 = Reference(
    "seed-v8",
    "the v8 patch this project began from: the standard and the Qualcomm Gunyah UIDs",
    ("gunyah", "gunyah-qualcomm"),
)
REFERENCES = {r.name: r for r in (LINUX, SEED_V8)}
DEFAULT_REFERENCE = LINUX
