"""The model answers as the Gunyah dispatcher does, register by register."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import abi, smccc
from gunyah.abi.hvc import DECLARED, TABLE_SIZE
from gunyah.model import PERSONAS, Hypervisor, describe_call, get_persona
from gunyah.smccc import KVM_FEATURES
from gunyah.trap import classify

M32 = smccc.MASK32
M64 = smccc.MASK64
GUNYAH_UID = (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)
INFO = 0x5100000000008001
MAX_OUTPUTS = 6  # vcpu_run and three others return six values


@pytest.fixture
def hyp() -> Hypervisor:
    return Hypervisor("gunyah")


def test_call_uid(hyp: Hypervisor) -> None:
    regs = hyp.call(0x8600FF01, 7, 8, 9, 10)
    assert tuple(regs[:4]) == GUNYAH_UID
    assert regs[4] == 10  # registers the call does not write are preserved


def test_identify_over_smccc(hyp: Hypervisor) -> None:
    regs = hyp.call(0xC6008000)
    assert regs[:4] == [INFO, 0x10000FFF, 0, 0]


def test_identify_native(hyp: Hypervisor) -> None:
    regs = hyp.call(0, kind="hvc", imm=0x6000)
    assert regs[:4] == [INFO, 0x10000FFF, 0, 0]


def test_smc_conduit_is_smccc_too(hyp: Hypervisor) -> None:
    assert hyp.call(0xC6008000, kind="smc")[0] == INFO


def test_native_immediate_over_smc_is_unknown(hyp: Hypervisor) -> None:
    assert hyp.call(0, kind="smc", imm=0x6000)[0] == M64


@pytest.mark.parametrize("imm", [1, 0x5FFF, 0x6200, 0xFFFF])
def test_other_immediates_are_unknown(hyp: Hypervisor, imm: int) -> None:
    regs = hyp.call(0xC6008000, 5, kind="hvc", imm=imm)
    assert regs[0] == M64 and regs[1] == 5


def test_native_uncatalogued_number(hyp: Hypervisor) -> None:
    assert hyp.call(0, kind="hvc", imm=0x61FF)[0] == M64


@pytest.mark.parametrize("res0", [1, 0x40, 0x7F])
def test_res0_bits_give_minus_one(hyp: Hypervisor, res0: int) -> None:
    for fid in (0xC6008000, 0x8600FF01, 0x80000000):
        regs = hyp.call(fid | res0 << 17, 1, 2, 3)
        assert regs[:4] == [M64, 1, 2, 3]


@pytest.mark.parametrize("fid", [0x86008000, 0x46008000, 0x06008000])
def test_hypercall_class_only_fast_64(hyp: Hypervisor, fid: int) -> None:
    assert hyp.call(fid, 1, 2, 3)[:4] == [M64, 1, 2, 3]


@pytest.mark.parametrize("fid", [0xC600FF01, 0x0600FF01, 0x4600FF01])
def test_service_class_only_fast_32(hyp: Hypervisor, fid: int) -> None:
    assert hyp.call(fid, 1, 2, 3)[:4] == [M64, 1, 2, 3]


def test_call_count_is_deprecated(hyp: Hypervisor) -> None:
    assert hyp.call(0x8600FF00)[0] == M64


def test_revision_is_api_info_in_full_width(hyp: Hypervisor) -> None:
    # smccc_hypercalls.c writes the 64-bit hyp_api_info word into X0 of a 32-bit call
    regs = hyp.call(0x8600FF03, 1, 2, 3)
    assert regs[:4] == [INFO, 1, 2, 3]


def test_reserved_class_and_platform_calls(hyp: Hypervisor) -> None:
    assert hyp.call(0x86004000)[0] == M64  # class 0b01
    assert hyp.call(0x86000001)[0] == M64  # platform call: none in the public build


def test_unknown_hypercall_number(hyp: Hypervisor) -> None:
    assert hyp.call(0xC6003FFF, 1)[:2] == [M64, 1]


def test_smccc_version_zero_extends_and_truncates_x1_x3(hyp: Hypervisor) -> None:
    regs = hyp.call(0x80000000, 0x1_2345_6789, 0xFFFF_FFFF_0000_0001, 3, 4)
    assert regs[:5] == [0x10003, 0x2345_6789, 1, 3, 4]


@pytest.mark.parametrize(
    ("queried", "answer"),
    [
        (0x80000000, 0),
        (0x80000001, 0),
        (0x8500FF01, 0),
        (0x8500FF03, M32),  # REVISION is served but not advertised (measured)
        (0x80000002, M32),
        (0xC0000000, M32),
        (0x80008000, M32),
        (0x8600FF01, M32),
        (0x84000000, M32),
        (0x80FE0000, M32),
    ],
)
def test_arch_features(hyp: Hypervisor, queried: int, answer: int) -> None:
    assert hyp.call(0x80000001, queried)[0] == answer


def test_standard_hyp_uid_and_revision(hyp: Hypervisor) -> None:
    assert tuple(hyp.call(0x8500FF01)[:4]) == GUNYAH_UID
    assert hyp.call(0x8500FF03, 9, 9, 9)[:4] == [1, 0, 9, 9]


# 0x84000005: PSCI MIGRATE, which Gunyah does not register (psci.ev)
@pytest.mark.parametrize("fid", [0x82000000, 0x83000000, 0x84000005, 0xC0000000, 0x00000000])
def test_unhandled_owners_minus_one_full_width(hyp: Hypervisor, fid: int) -> None:
    assert hyp.call(fid, 1, 2, 3)[:4] == [M64, 1, 2, 3]


def test_sve_hint_does_not_change_the_call(hyp: Hypervisor) -> None:
    assert hyp.call(0xC6018000)[0] == INFO
    assert tuple(hyp.call(0x8601FF01)[:4]) == GUNYAH_UID


def test_qualcomm_persona_uid() -> None:
    regs = Hypervisor("qualcomm").call(0x8600FF01)
    uid = abi.CallUid.decode(*regs[:4])
    assert uid.known is not None and uid.known.key == "gunyah-qualcomm"


def test_kvm_persona() -> None:
    kvm = Hypervisor("kvm")
    assert kvm.call(0x8600FF01)[:4] == [0xB66FB428, 0xE911C52E, 0x564BCAA9, 0x743A004D]
    assert kvm.call(0x80000000, 5, 5, 5)[:4] == [0x10001, 0, 0, 0]
    assert kvm.call(KVM_FEATURES)[0] == 1
    assert kvm.call(0xC6008000)[0] == M64
    assert kvm.call(0, imm=0x6000)[0] == M64


def test_none_persona_everything_minus_one() -> None:
    none = Hypervisor("none")
    for fid in (0x8600FF01, 0xC6008000, 0x80000000):
        assert none.call(fid, 1)[:2] == [M64, 1]
    assert none.call(0, imm=0x6000)[0] == M64


def test_unknown_persona() -> None:
    with pytest.raises(ValueError, match="known personas"):
        get_persona("hyper-v")


def test_describe_call_marks_calls_the_model_does_not_carry_out() -> None:
    p = get_persona("gunyah")
    # partition_create_cspace: checked, but past its checks the model does not act
    assert "answers UNIMPLEMENTED" in (describe_call(p, "hvc", 0, 0xC6008002) or "")
    assert "answers UNIMPLEMENTED" in (describe_call(p, "hvc", 0x6002, 0) or "")
    # identify, msgqueue_send and partition_create_partition (UNIMPLEMENTED in the
    # hypervisor too) are carried out as the hypervisor does
    for call in (0xC6008000, 0xC600801B, 0xC6008001):
        assert describe_call(p, "hvc", 0, call) is None


def test_route_cache_agrees_with_first_answer(hyp: Hypervisor) -> None:
    first = hyp.call(0x80000001, 0x80000000)
    second = hyp.call(0x80000001, 0x80000000)
    assert first == second


# Traps worth drawing often: native immediates, and X0s naming the SMCCC form
# of every native call (0xC6000000 | N), beside anything at all.
TRAP_IMM = st.one_of(st.integers(0, 0xFFFF), st.integers(0x6000, 0x61FF))
TRAP_X0 = st.one_of(st.integers(0, M64), st.integers(0xC6000000, 0xC60001FF))


@given(
    st.sampled_from([p.name for p in PERSONAS]),
    st.sampled_from(["hvc", "smc"]),
    TRAP_IMM,
    TRAP_X0,
    st.lists(st.integers(0, M64), min_size=17, max_size=17),
)
def test_model_never_raises(name: str, kind: str, imm: int, x0: int, rest: list[int]) -> None:
    """Whatever the guest traps with, the model answers within the registers
    the real hypervisor's return path writes, and nothing else."""
    hyp = Hypervisor(name)
    regs = [x0, *rest]
    before = list(regs)
    hyp.handle(regs, kind, imm, pc=0x4000_1000)  # type: ignore[arg-type]
    assert len(regs) == 18
    assert all(0 <= r <= M64 for r in regs)
    c = classify(kind, imm, x0)
    native = hyp.native is not None and hyp.persona.native
    served = native and c.number is not None and c.number < TABLE_SIZE
    if c.abi == "native" and served:
        # X0..X7 results, X8 kept, X9 the return address, X10..X17 zeroed
        assert regs[8] == before[8]
        assert regs[9] == 0x4000_1004
        assert regs[10:] == [0] * 8
    elif c.abi == "smccc" or (hyp.persona.dispatch == "kvm" and kind == "hvc"):
        # KVM serves any HVC as SMCCC, whatever its immediate
        assert regs[MAX_OUTPUTS:] == before[MAX_OUTPUTS:]
    else:  # no ABI, a native call on a persona without them, or past the table
        assert regs == [M64, *before[1:]]


def test_native_results_reach_past_x3_only_where_declared() -> None:
    """The SMCCC form of a call with more than four results writes them all:
    the never-raises bound above is that widest declaration."""
    assert MAX_OUTPUTS == max(len(c.outputs) for c in DECLARED.values()) > 4


@given(st.integers(0, M32), st.lists(st.integers(0, M64), min_size=3, max_size=3))
def test_fresh_and_cached_routes_agree(fid: int, args: list[int]) -> None:
    warm = Hypervisor("gunyah")
    warm.call(fid, *args)
    assert warm.call(fid, *args) == Hypervisor("gunyah").call(fid, *args)


def test_dirty_upper_only_touches_32_bit_calls() -> None:
    dirty = Hypervisor("dirty-upper")
    assert dirty.call(0x80000000)[0] == 0xDEADBEEF_00010003
    assert [r >> 32 for r in dirty.call(0x8600FF01)[:4]] == [0xDEADBEEF] * 4
    assert dirty.call(0xC6008000)[0] == INFO  # a 64-bit call's results are all defined
    assert dirty.call(0, imm=0x6000)[0] == INFO


def test_a_service_is_one_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    """A service registered by its declared call and listed by a persona is
    dispatched, and, as it advertises the call, reported by
    SMCCC_ARCH_FEATURES, with nothing else changed."""
    from dataclasses import replace

    from gunyah import smccc
    from gunyah.model.services import calling, registry

    pv_time = smccc.fast32(smccc.OWNER_STANDARD_HYP, 0x0020)  # PV_TIME_FEATURES
    hyp = Hypervisor("gunyah")
    assert hyp.call(smccc.SMCCC_ARCH_FEATURES, pv_time)[0] == M32
    assert hyp.call(pv_time)[0] == M64

    def make(hyp: object, f: smccc.FunctionId) -> calling.Route:
        def version(r: list[int]) -> None:
            r[0] = 0x10001

        return calling.fast32(version)

    monkeypatch.setattr(registry, "SERVICES", dict(registry.SERVICES))  # a scratch registry
    registry.declared_calls("pv-time", {"PV_TIME_FEATURES": make}, advertised=["PV_TIME_FEATURES"])
    gunyah = get_persona("gunyah")
    hyp = Hypervisor(replace(gunyah, services=(*gunyah.services, "pv-time")))
    assert hyp.call(smccc.SMCCC_ARCH_FEATURES, pv_time)[0] == 0
    assert hyp.call(pv_time)[:2] == [0x10001, 0]
    # every other answer is the persona's as before
    base = Hypervisor("gunyah")
    for fid in (smccc.SMCCC_VERSION, smccc.STANDARD_HYP_CALL_UID, 0xC6008000, 0x84000000):
        assert hyp.call(fid) == base.call(fid)


def test_pkvm_geniezone_and_xen_personas() -> None:
    """Each answers its own UID; pKVM's KVM_FEATURES lists HYP_MEMINFO,
    MEM_SHARE and MEM_UNSHARE (kvm_handle_pvm_hvc64) and HYP_MEMINFO gives the
    4 KiB granule, -3 for arguments that are not zero."""
    import uuid

    for name, text in (("geniezone", "7e134ed0-3b82-488d-8cee-69c19211dbe7"),
                       ("xen", "a71812dc-c698-4369-9acf-79d18ddee667")):  # fmt: skip
        h = Hypervisor(name)
        assert tuple(h.call(0x8600FF01)[:4]) == smccc.uuid_to_uid(uuid.UUID(text))
        assert h.call(0x86000000)[0] == M64  # no KVM_FEATURES
        assert h.call(0xC6008000)[0] == M64  # nor any Gunyah call
    pkvm = Hypervisor("pkvm")
    assert pkvm.call(0x86000000)[:4] == [0b11101, 0, 0, 0]
    assert pkvm.call(0xC6000002)[:4] == [4096, 0, 0, 0]
    assert pkvm.call(0xC6000002, 0, 1)[0] == M64 - 2
    assert Hypervisor("kvm").call(0xC6000002)[0] == M64  # plain KVM lists no HYP_MEMINFO
