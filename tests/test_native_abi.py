"""The model against the real Gunyah hypervisor, register for register.

"Measured" facts are what the open-source hypervisor (quic/gunyah-hypervisor
36ca3a2, QEMU build, debug) answered a kernel module in its primary VM, with
X1..X17 preset to the sentinels 0x5e5e0000000000NN (docs/real-gunyah.md section 1,
how the build was asked).
"Source" facts follow from its code, cited where they are tested; the model
holds to both through the `gunyah-qemu` persona.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import psci, smccc
from gunyah.abi import hvc
from gunyah.model import Hypervisor

M32, M64 = smccc.MASK32, smccc.MASK64
GUNYAH_UID = [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]
API_INFO = 0x5100000000008001
PC = 0xFFFF_8000_1234_5678


def sentinels(start: int = 1) -> list[int]:
    """X0..X17 as the measurements set them (X0 the function ID)."""
    return [0x5E5E_0000_0000_0000 | n for n in range(18)]


def smccc_call(fid: int, *args: int, persona: str = "gunyah-qemu", kind: str = "hvc") -> list[int]:
    regs = sentinels()
    regs[0] = fid
    regs[1 : 1 + len(args)] = args
    Hypervisor(persona, cpus=8).handle(regs, kind, 0, 0, PC)  # type: ignore[arg-type]
    return regs


def native(n: int, regs: list[int], hyp: Hypervisor | None = None) -> list[int]:
    (hyp or Hypervisor("gunyah-qemu")).handle(regs, "hvc", 0x6000 + n, 0, PC)
    return regs


# -- identification, SMCCC and PSCI discovery: the measured table ------------
@pytest.mark.parametrize("kind", ["hvc", "smc"])
@pytest.mark.parametrize(
    ("fid", "args", "x0_x3"),
    [
        (0x80000000, (), [0x10003, 1, 2, 3]),  # SMCCC_VERSION: 32-bit, X1..X3 truncated
        (0x84000000, (), [0x10001, 1, 2, 3]),  # PSCI_VERSION
        (0x80000001, (0x80000000,), [0, 0x80000000, 2, 3]),  # ARCH_FEATURES(VERSION)
        (0x80000001, (0x80008000,), [M32, 0x80008000, 2, 3]),  # (WORKAROUND_1)
        (0x80000001, (0x80007FFF,), [M32, 0x80007FFF, 2, 3]),  # (WORKAROUND_2)
        (0x80000001, (0x80000002,), [M32, 0x80000002, 2, 3]),  # (SOC_ID)
        (0x8400000A, (0x80000000,), [0, 0x80000000, 2, 3]),  # PSCI_FEATURES(SMCCC_VERSION)
        (0x8400000A, (0xC4000003,), [0, 0xC4000003, 2, 3]),  # (CPU_ON64)
        (0x8400000A, (0x84000008,), [0, 0x84000008, 2, 3]),  # (SYSTEM_OFF)
        (0x8400000A, (0x8400FFFF,), [M32, 0x8400FFFF, 2, 3]),
        (0x8600FF01, (), GUNYAH_UID),  # VENDOR_HYP_CALL_UID
        (0x8500FF01, (), GUNYAH_UID),  # STANDARD_HYP_CALL_UID
        (0x8500FF03, (), [1, 0, 2, 3]),  # STANDARD_HYP_REVISION
        (0xC6008000, (), [API_INFO, 0x10000EFF, 0, 0]),  # hypervisor_identify: flags 0x10000eff
    ],
)
def test_identification_answers_as_measured(kind: str, fid: int, args: tuple[int, ...],
                                            x0_x3: list[int]) -> None:  # fmt: skip
    regs = smccc_call(fid, *args, kind=kind)
    assert regs[:4] == x0_x3
    assert regs[4:] == sentinels()[4:]  # X4..X17 came back unchanged in every call


@pytest.mark.parametrize("kind", ["hvc", "smc"])
def test_vendor_revision_is_the_whole_api_info_and_leaves_x1_x3(kind: str) -> None:
    regs = smccc_call(0x8600FF03, kind=kind)
    assert regs[0] == API_INFO and regs[1:] == sentinels()[1:]


@pytest.mark.parametrize(
    "fid",
    [0x86008000, 0x46008000, 0xC600FF01, 0xC6000000, 0xC6003FFF, 0x8600FF00, 0xC5000000],
)
def test_calls_the_hypervisor_does_not_take_answer_minus_one_in_64_bits(fid: int) -> None:
    """identify as SMC32 or yielding, the UID as SMC64, vendor functions 0 and
    0x3fff, CALL_COUNT, standard-hypervisor function 0 (measured)."""
    regs = smccc_call(fid)
    assert regs[0] == M64 and regs[1:] == sentinels()[1:]


# -- the native form ----------------------------------------------------------
def test_native_identify_sanitises_as_the_hypervisor_returns() -> None:
    """return.S: results from X0, the rest of X1..X7 zero, X8 kept, X9 the
    return address (ELR_EL2, the instruction after the HVC), X10..X17 zero."""
    regs = native(0, sentinels())
    assert regs[:4] == [API_INFO, 0x10000EFF, 0, 0]
    assert regs[4:8] == [0, 0, 0, 0]
    assert regs[8] == sentinels()[8]
    assert regs[9] == PC + 4
    assert regs[10:] == [0] * 8


# what each call answers with X0..X7 = 0 (measured, and from each handler)
ZERO_ARGS = {
    **{n: 52 for n in (0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x0A, 0x0B, 0x48)},  # create_*
    0x01: 0xFFFF_FFFF,  # partition_create_partition: UNIMPLEMENTED, 32 bits
    0x0C: 53,  # object_activate: cap 0 lacks the generic activate right
    0x0E: 0xFFFF_FFFF, 0x0F: 0xFFFF_FFFF, 0x24: 0xFFFF_FFFF,  # object_reset(_from), revoke
    0x12: 52, 0x13: 52, 0x10: 52, 0x14: 52,  # doorbells: cap 0 is a message queue
    0x17: 53, 0x18: 53, 0x19: 53, 0x1A: 53,  # msgqueue bind/unbind: no bind rights
    0x1B: 0,  # msgqueue_send: an empty message is queued
    0x1C: 53, 0x1D: 53,  # receive, flush: cap 0 cannot receive
    0x1F: 1, 0x20: 1,  # configure_send/receive: their res1 register is 0
    0x21: 53,  # msgqueue_configure
    0x28: 53,  # vic_configure
    0x3D: 1,  # vcpu_set_affinity: res1 register 0
    0x2B: 52, 0x34: 53, 0x38: 52, 0x39: 52, 0x65: 52,  # addrspace_map, vcpu_*
    0x57: 2,  # prng_get_entropy(0): ARGUMENT_SIZE
    0x3B: 0,  # scheduler_yield
}  # fmt: skip


@pytest.mark.parametrize("n", sorted(ZERO_ARGS))
def test_native_calls_with_zero_arguments(n: int) -> None:
    regs = native(n, [0] * 18)
    assert regs[0] == ZERO_ARGS[n]
    extra = {0x1B: [1], 0x01: [M64]}.get(n, [])  # not_full 1; new_cap CSPACE_CAP_INVALID
    assert regs[1 : 1 + len(extra)] == extra
    assert regs[1 + len(extra) : 8] == [0] * (7 - len(extra))
    assert regs[9] == PC + 4 and regs[10:] == [0] * 8


IMPLEMENTED = [n for n, c in hvc.DECLARED.items() if c.feature is None and n != 0]
HOLES = [n for n in range(hvc.TABLE_SIZE) if n not in IMPLEMENTED and n != 0]


@pytest.mark.parametrize("n", IMPLEMENTED)
def test_every_call_answers_argument_invalid_to_sentinel_arguments(n: int) -> None:
    """Measured: with sentinels in X0..X7 every implemented call answered 1 (a
    reserved argument checked first, a flag word's unknown bits, or a
    capability ID past 16 bits)."""
    regs = native(n, sentinels())
    assert regs[0] == 1
    assert regs[8] == sentinels()[8] and regs[9] == PC + 4 and regs[10:] == [0] * 8


@pytest.mark.parametrize("n", HOLES)
def test_holes_answer_minus_one_and_are_sanitised(n: int) -> None:
    regs = native(n, sentinels())
    assert regs[0] == M64 and regs[1:8] == [0] * 7
    assert regs[8] == sentinels()[8] and regs[9] == PC + 4 and regs[10:] == [0] * 8


@pytest.mark.parametrize("n", [hvc.TABLE_SIZE, 0x70, 0x7F, 0x1FF])
def test_past_the_table_only_x0_changes(n: int) -> None:
    regs = native(n, sentinels())
    assert regs[0] == M64 and regs[1:] == sentinels()[1:]


def test_watchdog_is_a_hole_only_where_the_build_has_none() -> None:
    """0x09 partition_create_watchdog: a hole in the QEMU build (no watchdog,
    flags bit 8 clear), an entry where the watchdog is built."""
    assert native(0x09, [0] * 18)[0] == M64
    assert native(0x09, [0] * 18, Hypervisor("gunyah"))[0] == 52


@given(n=st.sampled_from(IMPLEMENTED),
       regs=st.lists(st.integers(0, M64), min_size=18, max_size=18))  # fmt: skip
def test_any_native_call_sanitises_x1_to_x17_the_same_way(n: int, regs: list[int]) -> None:
    """For any arguments: results from X0 (as many as declared), then zeros to
    X7; X8 kept; X9 the return address; X10..X17 zero."""
    before = list(regs)
    native(n, regs)
    outputs = len(hvc.DECLARED[n].outputs)
    assert regs[outputs:8] == [0] * (8 - outputs)
    assert regs[8] == before[8] and regs[9] == PC + 4 and regs[10:] == [0] * 8
    error = hvc.DECLARED[n].outputs[0].ctype == "error"
    assert not error or regs[0] >> 32 == 0  # errors zero-extended from 32 bits


# -- the SMCCC form -----------------------------------------------------------
def test_smccc_form_takes_arguments_from_x1_and_writes_only_its_outputs() -> None:
    regs = smccc_call(0xC6008000 + 0x1B, 0, 0, 0, 0, 0)  # msgqueue_send(cap 0, size 0)
    assert regs[:2] == [0, 1] and regs[2:6] == [0] * 4 and regs[6:] == sentinels()[6:]


def test_smccc_form_sign_extends_errors_and_skips_reserved_checks() -> None:
    assert smccc_call(0xC6008000 + 0x0E)[0] == M64  # object_reset: UNIMPLEMENTED, 64 bits
    # prng_get_entropy with a sentinel count really runs: count 1 (X1's low 32
    # bits) is not a multiple of 4 -> ARGUMENT_ALIGNMENT (measured: 3)
    assert smccc_call(0xC6008000 + 0x57)[0] == 3
    # configure_send's res1 is not checked here: cap 0, holdoff 0 != "unchanged"
    assert smccc_call(0xC6008000 + 0x1F, 0, 0, 0, 0)[0] == M64


@pytest.mark.parametrize(("n", "outputs"), [(0x52, 6), (0x57, 5), (0x65, 5), (0x68, 5)])
def test_smccc_calls_with_five_or_more_outputs_write_x4_and_x5(n: int, outputs: int) -> None:
    regs = smccc_call(0xC6008000 + n, 0, 1, 0, 0, 0, 0, 0)  # cap 0 is wrong, count 0 too
    assert regs[0] == (2 if n == 0x57 else 52) and regs[1:outputs] == [0] * (outputs - 1)
    assert regs[outputs:8] == [0, 1, 0, 0, 0, 0, 0][outputs - 1 :]
    assert regs[8:] == sentinels()[8:]


@given(n=st.sampled_from(IMPLEMENTED),
       regs=st.lists(st.integers(0, M64), min_size=18, max_size=18))  # fmt: skip
def test_smccc_form_leaves_every_register_past_its_outputs(n: int, regs: list[int]) -> None:
    regs[0] = 0xC6008000 + n
    before = list(regs)
    Hypervisor("gunyah-qemu").handle(regs, "hvc", 0, 0, PC)
    outputs = len(hvc.DECLARED[n].outputs)
    assert regs[outputs:] == before[outputs:]


def test_smccc_form_of_a_hole_answers_minus_one_only() -> None:
    regs = smccc_call(0xC6008000 + 0x08)
    assert regs[0] == M64 and regs[1:] == sentinels()[1:]


# -- capabilities: the primary VM's cspace ------------------------------------
@pytest.mark.parametrize(
    ("n", "args", "answer"),
    [
        (0x1C, [1, 0, 0, 0], 60),  # receive on the RX cap: MSGQUEUE_EMPTY
        (0x1B, [1, 0, 0, 0, 0], 53),  # send on the RX cap: no send right (measured)
        (0x1D, [1, 0], 0),  # flush the RX queue
        (0x20, [1, 1, M32, M64], 0),  # configure_receive(threshold 1, delay unchanged)
        (0x20, [1, 0, M32, M64], 1),  # threshold 0 is invalid
        (0x20, [1, 1, 5, M64], M32),  # a delay: UNIMPLEMENTED (32 bits)
        (0x1F, [0, 8, M32, M64], 1),  # not-full threshold must be below the depth (8)
        (0x3D, [2, 3, M64], 0),  # set_affinity of the RM's vCPU: its one right
        (0x3D, [2, 8, M64], 1),  # CPU 8 does not exist (8 cores)
        (0x3D, [2, 0xFFFF, M64], 53),  # off every CPU needs the disable right too
        (0x3A, [2, 0], 53),  # vcpu_kill: no lifecycle right
        (0x12, [2, 0, 0], 52),  # doorbell_send on a thread
        (0x12, [3, 0, 0], 50),  # an empty slot: CSPACE_CAP_NULL
        (0x12, [0x100, 0, 0], 50),  # a table that is not there
        (0x12, [0x10000, 0, 0], 1),  # not a 16-bit slot number: ARGUMENT_INVALID
        (0x12, [62, 0, 0], 1),  # past the 62 slots of a table
        (0x0C, [2, 0], 53),  # object_activate: rights checked before the type
    ],
)
def test_capability_lookups(n: int, args: list[int], answer: int) -> None:
    """Caps 0/1: the message queues the RPC node names (measured); cap 2: the
    resource manager's vCPU with the affinity right (hlos_vm.c); lookups and
    their errors as cspace_twolevel.c orders them."""
    assert native(n, args + [0] * (18 - len(args)))[0] == answer


def test_scheduler_yield_to_a_thread_needs_yield_to() -> None:
    assert native(0x3B, [1, 2, 0] + [0] * 15)[0] == 53  # cap 2: affinity only
    assert native(0x3B, [1 << 31, 0, 0] + [0] * 15)[0] == 1  # implementation-defined hint
    assert native(0x3B, [2, 0, 0] + [0] * 15)[0] == 1  # yield_lower is not served


def test_prng_gives_random_words_and_is_rate_limited() -> None:
    """prng_api.c: 4..16 bytes in words of 4, four reads per vCPU in 33 ms."""
    hyp = Hypervisor("gunyah-qemu")
    answers = [native(0x57, [16, 0] + [0] * 16, hyp) for _ in range(5)]
    assert [a[0] for a in answers] == [0, 0, 0, 0, 31]
    assert len({tuple(a[1:5]) for a in answers[:4]}) == 4  # not the same words twice
    assert answers[4][1:5] == [0, 0, 0, 0]
    assert native(0x57, [6, 0] + [0] * 16)[0] == 3 and native(0x57, [20, 0] + [0] * 16)[0] == 2


def test_trace_flags_read_back() -> None:
    hyp = Hypervisor("gunyah-qemu")
    flags = native(0x3F, [0] * 18, hyp)[1]
    assert native(0x3F, [1 << 40, 0] + [0] * 16, hyp)[1] == flags | 1 << 40
    # ERROR (bit 0) and LOG_BUFFER (bit 5) are not the guest's to change
    assert native(0x3F, [0, 1 | 1 << 5] + [0] * 16, hyp)[1] & 0x21 == flags & 0x21


# -- TRNG (measured) ----------------------------------------------------------
def test_trng_as_measured() -> None:
    assert smccc_call(0x84000050)[:4] == [0x10000, 0, 0, 0]
    for fid in (0x84000050, 0x84000051, 0x84000052, 0x84000053, 0xC4000053):
        assert smccc_call(0x84000051, fid)[0] == 0
    assert smccc_call(0x84000051, 0x84000054)[0] == M64
    assert smccc_call(0x84000052)[:4] == [0x45546E21, 0x92A1433D, 0xA2EA5FE2, 0x16397D4E]
    for fid, bits in ((0x84000053, 0), (0x84000053, 97), (0xC4000053, 0), (0xC4000053, 193)):
        assert smccc_call(fid, bits)[:4] == [M64 - 1, 0, 0, 0]
    r32, r64 = smccc_call(0x84000053, 32), smccc_call(0xC4000053, 64)
    assert r32[:3] == [0, 0, 0] and r32[3] >> 32 == 0
    assert r64[:3] == [0, 0, 0]
    assert smccc_call(0x84000054)[0] == M32  # an unknown 32-bit TRNG function


def test_trng_bits_are_masked_to_what_was_asked() -> None:
    regs = smccc_call(0x84000053, 40)
    assert regs[3] >> 32 == 0 and regs[2] >> 8 == 0 and regs[1] == 0


def test_personas_without_trng_answer_minus_one() -> None:
    assert smccc_call(0x84000050, persona="gunyah")[0] == M64


# -- PSCI edge cases, 8 vCPUs (measured) --------------------------------------
def all_on() -> Hypervisor:
    hyp = Hypervisor("gunyah-qemu", cpus=8)
    for cpu in range(1, 8):
        hyp.call(psci.fn64(psci.CPU_ON), cpu, 0x4000_0000, 0)
    return hyp


def test_psci_edge_cases() -> None:
    hyp = all_on()
    aff64, aff32 = psci.fn64(psci.AFFINITY_INFO), psci.fn32(psci.AFFINITY_INFO)
    assert [hyp.call(aff64, mpidr, 0)[0] for mpidr in range(8)] == [0] * 8
    assert hyp.call(aff64, 8, 0)[0] == M64 - 1  # no vCPU there
    assert hyp.call(aff64, 0, 1)[0] == M64 - 1 and hyp.call(aff64, 0, 3)[0] == M64 - 1
    assert hyp.call(aff32, 0, 1)[0] == 0xFFFF_FFFE  # the 32-bit form zero-extends
    assert hyp.call(psci.fn64(psci.CPU_ON), 3, 0, 0)[0] == M64 - 3  # -4: already on
    assert hyp.call(psci.fn64(psci.CPU_ON), 0, 0, 0)[0] == M64 - 3  # itself included
    assert hyp.call(psci.fn64(psci.CPU_ON), 9, 0, 0)[0] == M64 - 1  # -2: no such vCPU
    for function in (0x06, 0x07, 0x0D, 0x10, 0x11):  # MIGRATE_INFO*, NODE_HW_STATE, STAT_*
        regs = smccc_call(psci.fn32(function))
        assert regs[0] == M64 and regs[1:] == sentinels()[1:]


def test_psci_features_as_the_qemu_build_answers() -> None:
    """psci_pc registers SET_SUSPEND_MODE, which hyp/vm/psci alone
    leaves unregistered (docs/abi.md section 7): the measured build wins, for gunyah-qemu."""
    zero = [0x84000000, 0x84000002, 0x84000003, 0xC4000003, 0x84000004, 0xC4000004,
            0x84000008, 0x84000009, 0x8400000A, 0x8400000C, 0xC400000C, 0x8400000F,
            0x84000012, 0xC4000012]  # fmt: skip
    hyp = Hypervisor("gunyah-qemu")
    for fid in zero:
        assert hyp.call(0x8400000A, fid)[0] == 0, hex(fid)
    assert hyp.call(0x8400000A, 0x84000001)[0] == 2 and hyp.call(0x8400000A, 0xC4000001)[0] == 2
    for fid in (0x84000005, 0x84000006, 0x8400000E, 0x84000013, 0xC4000002):
        assert hyp.call(0x8400000A, fid)[0] == M32, hex(fid)
    assert Hypervisor("gunyah").call(0x8400000A, 0x8400000F)[0] == M32  # as hyp/vm/psci alone
    assert hyp.call(0x8400000F, 0)[0] == 0 and hyp.call(0x8400000F, 1)[0] == M32 - 1


def test_smccc_arch_features_advertises_three_calls() -> None:
    """Measured: 0 only for 0x80000000, 0x80000001 and 0x8500ff01 (REVISION,
    though served, is not advertised)."""
    hyp = Hypervisor("gunyah-qemu")
    queried = (0x80000000, 0x80000001, 0x80000002, 0x80008000, 0x8500FF00, 0x8500FF01,
               0x8500FF03, 0x8600FF01, 0x84000000, 0xC6008000)  # fmt: skip
    advertised = {fid for fid in queried if hyp.call(0x80000001, fid)[0] == 0}
    assert advertised == {0x80000000, 0x80000001, 0x8500FF01}


def test_kvm_answers_affinity_info_for_levels_1_to_3() -> None:
    """kvm_psci_vcpu_affinity_info: any level up to 3, ON if a vCPU it names
    runs; -2 past level 3 or for an affinity naming no vCPU."""
    hyp = Hypervisor("kvm", cpus=2)
    aff = psci.fn64(psci.AFFINITY_INFO)
    assert [hyp.call(aff, 0, level)[0] for level in range(4)] == [0, 0, 0, 0]
    assert hyp.call(aff, 1, 0)[0] == 1  # vCPU 1 is off
    assert hyp.call(aff, 1, 1)[0] == 0  # its cluster has vCPU 0 on
    assert hyp.call(aff, 0x100, 1)[0] == M64 - 1  # cluster 1 has no vCPU
    assert hyp.call(aff, 0, 4)[0] == M64 - 1


# -- through a real kernel: a module's calls under gunyah-qemu ----------------
S = [0x5E5E_0000_0000_0000 | n for n in range(18)]  # the measurements' sentinels
Z = [0] * 18
RET = "ret"  # X9: the module's return address (the instruction after its HVC)
# (name, hvc immediate, X0..X17 in, X0..X17 out): measured answers
KERNEL_SAMPLE = [
    ("identify", 0x6000, S, [API_INFO, 0x10000EFF, 0, 0, 0, 0, 0, 0, S[8], RET, *Z[10:]]),
    ("send-empty", 0x601B, Z, [0, 1, *Z[2:9], RET, *Z[10:]]),
    ("create-cspace", 0x6002, Z, [52, *Z[1:9], RET, *Z[10:]]),
    ("prng-0", 0x6057, Z, [2, *Z[1:9], RET, *Z[10:]]),
    ("object-reset", 0x600E, Z, [M32, *Z[1:9], RET, *Z[10:]]),
    ("hole", 0x6008, S, [M64, *Z[1:8], S[8], RET, *Z[10:]]),
    ("past-table", 0x6070, S, [M64, *S[1:]]),
    ("create-cspace-sentinels", 0x6002, S, [1, *Z[1:8], S[8], RET, *Z[10:]]),
    ("smccc-identify", 0, [0xC6008000, *S[1:]], [API_INFO, 0x10000EFF, 0, 0, *S[4:]]),
    ("smccc-reset", 0, [0xC600800E, *S[1:]], [M64, *S[1:]]),
    ("smccc-prng", 0, [0xC6008057, *S[1:]], [3, 0, 0, 0, 0, *S[5:]]),
    ("trng-version", 0, [0x84000050, *S[1:]], [0x10000, 0, 0, 0, *S[4:]]),
    ("features-ssm", 0, [0x8400000A, 0x8400000F, *S[2:]], [0, 0x8400000F, 2, 3, *S[4:]]),
]


def _sample_module() -> str:
    """A module that makes each call of KERNEL_SAMPLE from X0..X17 as given
    and logs X0..X17 after it, then X9 minus its return address."""
    calls = []
    for name, imm, regs_in, _ in KERNEL_SAMPLE:
        values = ", ".join(f"0x{v:x}ULL" for v in regs_in)
        calls.append(f'\t{{ static const u64 in[18] = {{{values}}}; u64 out[19];\n'
                     f'\t  CALL({imm:#x}, in, out); report("{name}", out); }}')  # fmt: skip
    return MODULE_TEMPLATE.replace("@CALLS@", "\n".join(calls))


MODULE_TEMPLATE = r"""// SPDX-License-Identifier: GPL-2.0-only
#include <linux/kernel.h>
#include <linux/module.h>

#define LOAD "ldp x0, x1, [%0, #0]\n ldp x2, x3, [%0, #16]\n ldp x4, x5, [%0, #32]\n" \
	"ldp x6, x7, [%0, #48]\n ldp x8, x9, [%0, #64]\n ldp x10, x11, [%0, #80]\n" \
	"ldp x12, x13, [%0, #96]\n ldp x14, x15, [%0, #112]\n ldp x16, x17, [%0, #128]\n"
#define STORE "stp x0, x1, [%1, #0]\n stp x2, x3, [%1, #16]\n stp x4, x5, [%1, #32]\n" \
	"stp x6, x7, [%1, #48]\n stp x8, x9, [%1, #64]\n stp x10, x11, [%1, #80]\n" \
	"stp x12, x13, [%1, #96]\n stp x14, x15, [%1, #112]\n stp x16, x17, [%1, #128]\n" \
	"adr x0, 1b\n str x0, [%1, #144]\n"
#define CALL(imm, in, out) asm volatile(LOAD "hvc #" #imm "\n1:\n" STORE \
	: : "r"(in), "r"(out) : "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", \
	"x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "memory")

static void report(const char *name, const u64 *out)
{
	int i;

	for (i = 0; i < 18; i++)
		pr_info("native-sample: %s x%d=%llx\n", name, i, out[i]);
	pr_info("native-sample: %s ret=%llx\n", name, out[18]);
}

static int __init native_sample_init(void)
{
@CALLS@
	return 0;
}
module_init(native_sample_init);
MODULE_LICENSE("GPL");
"""


def test_a_kernel_module_gets_the_measured_answers(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import json
    import re
    import subprocess

    from cli_helpers import COMMAND

    src = tmp_path / "native_sample.c"
    src.write_text(_sample_module())
    p = subprocess.run([*COMMAND, "boot", "--persona", "gunyah-qemu", "--module", str(src),
                        "--json"], capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL)  # fmt: skip
    assert p.returncode == 0, p.stderr
    seen: dict[str, dict[str, int]] = {}
    for line in json.loads(p.stdout)["console"]:
        m = re.search(r"native-sample: (\S+) (x\d+|ret)=([0-9a-f]+)$", line)
        if m:
            seen.setdefault(m.group(1), {})[m.group(2)] = int(m.group(3), 16)
    for name, _, _, expected in KERNEL_SAMPLE:
        got = seen[name]
        regs = [got[f"x{i}"] for i in range(18)]
        want = [got["ret"] if v == RET else v for v in expected]
        assert regs == want, name


def test_call_names_the_gunyah_error_a_native_call_returns() -> None:
    import json

    from cli_helpers import gunyah

    p = gunyah("call", "--hvc-imm", "0x6002", "--persona", "gunyah-qemu", "--json")
    assert json.loads(p.stdout)["meaning"]["error"] == {"code": 52, "name": "CSPACE_WRONG_OBJ_TYPE"}
    text = gunyah("call", "0xc600800e").stdout  # SMCCC form: the error sign-extended
    assert "0xffffffffffffffff  (Gunyah error -1 UNIMPLEMENTED)" in text


def test_kvm_serves_any_hvc_as_smccc_and_refuses_an_smc_immediate() -> None:
    """KVM's handle_hvc never looks at the immediate; handle_smc answers -1 to
    one that is not 0 (Linux arch/arm64/kvm/handle_exit.c). Gunyah's native
    numbers mean nothing to it."""
    kvm = Hypervisor("kvm")
    uid = kvm.call(0x8600FF01)[:4]
    assert uid == [0xB66FB428, 0xE911C52E, 0x564BCAA9, 0x743A004D]
    for imm in (0x6000, 1, 0xFFFF):
        assert kvm.call(0x8600FF01, kind="hvc", imm=imm)[:4] == uid
        assert kvm.call(0x8600FF01, kind="smc", imm=imm)[0] == M64
    assert kvm.call(0, kind="hvc", imm=0x6000)[0] == M64  # function 0: unknown
    assert kvm.handle([0x84000008] + [0] * 17, "hvc", 0x6000) is not None  # SYSTEM_OFF
    gunyah = Hypervisor("gunyah")  # the native identify, not the UID
    assert gunyah.call(0x8600FF01, kind="hvc", imm=0x6000)[0] == 0x5100000000008001
