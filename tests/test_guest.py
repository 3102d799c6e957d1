"""The guest driver's procedure and verdicts, through the conduit only."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import Conduit, Hypervisor, abi, identify
from gunyah.conduit import Kind
from gunyah.guest import AARCH64_LE, GuestProfile, get_uid
from gunyah.guest.references import DEFAULT_REFERENCE, LINUX, REFERENCES, SEED_V8, Reference
from gunyah.model import PERSONAS, get_persona


def run(persona: str | object, kind: Kind = "hvc", profile: GuestProfile = AARCH64_LE):
    return identify(Conduit(Hypervisor(persona), kind), profile)  # type: ignore[arg-type]


@pytest.mark.parametrize("p", PERSONAS, ids=lambda p: p.name)
@pytest.mark.parametrize("kind", ["hvc", "smc"])
@pytest.mark.parametrize("ref", list(REFERENCES.values()), ids=lambda r: r.name)
def test_every_persona_meets_its_expected_verdict(p, kind: Kind, ref: Reference) -> None:  # type: ignore[no-untyped-def]
    """The driver, taking the UIDs a reference takes, reaches the verdict that
    reference expects of every persona."""
    verdict = identify(Conduit(Hypervisor(p), kind), taken=ref.taken).verdict
    assert verdict == ref.expected_verdict(p)


def test_the_references_differ_on_qualcomms_uid_alone() -> None:
    """The Linux driver's final form (arch_is_gunyah_guest()) takes the standard
    UID only; the seed's v8 compared against a list that also held
    Qualcomm's. Our driver's default is the former."""
    from gunyah.guest.driver import TAKEN_UIDS

    assert LINUX.taken == TAKEN_UIDS == {"gunyah"} and DEFAULT_REFERENCE is LINUX
    assert SEED_V8.taken == {"gunyah", "gunyah-qualcomm"}
    differ = {p.name for p in PERSONAS if LINUX.expected_verdict(p) != SEED_V8.expected_verdict(p)}
    assert differ == {"qualcomm"}
    assert LINUX.expected_verdict(get_persona("qualcomm")) == "not-gunyah"
    assert run("qualcomm").reasons[0].endswith("which this guest's driver does not take for Gunyah")


def test_gunyah_supported() -> None:
    r = run("gunyah")
    assert r.verdict == "supported" and r.reasons == ()
    assert r.banner == "Running under Gunyah hypervisor 51/v1"
    assert r.identify is not None and r.identify.api_version == 1


class Recorder:
    """A trap handler in front of the model that records each X0 it sees."""

    def __init__(self, persona: str) -> None:
        self.hyp = Hypervisor(persona)
        self.seen: list[int] = []

    def handle(self, regs: list[int], kind: Kind, imm: int) -> None:
        self.seen.append(regs[0])
        self.hyp.handle(regs, kind, imm)


def test_not_gunyah_does_not_call_identify() -> None:
    rec = Recorder("kvm")
    r = identify(Conduit(rec))
    assert r.identify is None and rec.seen == [abi.CALL_UID]
    assert "KVM" in r.reasons[0]


def test_gunyah_calls_uid_then_identify() -> None:
    rec = Recorder("gunyah")
    identify(Conduit(rec))
    assert rec.seen == [abi.CALL_UID, abi.HYP_IDENTIFY]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"version": 2}, "API version 2"),
        ({"big_endian": True}, "big-endian"),
        ({"is_64bit": False}, "32-bit"),
    ],
)
def test_unsupported_api(change: dict[str, object], reason: str) -> None:
    base = {"version": 1, "big_endian": False, "is_64bit": True, "variant": 0x51}
    base.update(change)
    p = dataclasses.replace(get_persona("gunyah"), api_info=abi.encode_api_info(**base))  # type: ignore[arg-type]
    r = run(p)
    assert r.verdict == "unsupported-api"
    assert any(reason in x for x in r.reasons)


def test_profile_of_a_big_endian_guest() -> None:
    r = run("gunyah", profile=GuestProfile(big_endian=True))
    assert r.verdict == "unsupported-api"


def test_guest_truncates_uid_words() -> None:
    p = dataclasses.replace(get_persona("gunyah"), dirty_upper=0xDEADBEEF)
    hyp = Hypervisor(p)
    assert hyp.call(0x8600FF01)[0] >> 32 == 0xDEADBEEF  # the garbage is really there
    assert get_uid(Conduit(hyp)).is_gunyah
    assert run(p).verdict == "supported"


def test_legacy_uid_words_are_not_gunyah() -> None:
    p = dataclasses.replace(get_persona("gunyah"), uid=abi.LEGACY_GUNYAH_UID_WORDS)
    assert run(p).verdict == "not-gunyah"


def test_json_shape() -> None:
    d = run("gunyah").to_dict()
    assert set(d) == {"uid", "is_gunyah", "identify", "verdict", "reasons"}
    assert set(d["uid"]) == {"words", "uuid", "hypervisor"}
    assert {
        "api_info",
        "api_version",
        "big_endian",
        "is_64bit",
        "variant",
        "flags",
        "features",
        "unknown_flag_bits",
        "scheduler",
    } <= set(d["identify"])


def test_conduit_width_checks() -> None:
    c = Conduit(Hypervisor())
    with pytest.raises(ValueError, match="64-bit call"):
        c.call32(0xC6008000)
    with pytest.raises(ValueError, match="32-bit call"):
        c.call64(0x8600FF01)
    with pytest.raises(ValueError, match="at most 7"):
        c.call32(0x8600FF01, *range(8))
    with pytest.raises(ValueError, match="32 bits"):
        c.call32(0x8600FF01, 1 << 32)
    assert len(c.call32(0x8600FF01)) == 8
    assert len(c.call64(0xC6008000)) == 18


@given(
    st.integers(0, abi.API_INFO["api_version"].top),
    st.booleans(),
    st.booleans(),
    st.integers(0, 255),
    st.integers(0, 0xFFFFFFFF),
)
def test_verdict_follows_the_rules(ver: int, be: bool, b64: bool, var: int, dirty: int) -> None:
    info = abi.encode_api_info(version=ver, big_endian=be, is_64bit=b64, variant=var)
    p = dataclasses.replace(get_persona("gunyah"), api_info=info, dirty_upper=dirty)
    expected = "supported" if (ver == 1 and not be and b64) else "unsupported-api"
    assert run(p).verdict == expected


def test_every_persona_names_a_verdict_the_driver_can_reach() -> None:
    from gunyah.guest import VERDICTS

    assert {p.expected_verdict for p in PERSONAS} <= set(VERDICTS)
