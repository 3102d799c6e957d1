"""PSCI in the model: Gunyah's set and KVM's, register by register, and the
actions that whoever runs the vCPUs carries out."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import psci, smccc
from gunyah.conduit import RESET_STATUS
from gunyah.model import Hypervisor
from gunyah.model.psci import GUNYAH, KVM, mpidr_of

M32, M64 = smccc.MASK32, smccc.MASK64


def call(h: Hypervisor, fid: int, *args: int, cpu: int = 0):
    regs = [fid, *args] + [0] * (17 - len(args))
    action = h.handle(regs, "hvc", 0, cpu)
    return regs, action


def test_codec_matches_linux_psci_h() -> None:
    # include/uapi/linux/psci.h: PSCI_0_2_FN_BASE, PSCI_0_2_FN64_BASE, PSCI_VERSION(1, 1)
    assert psci.fn32(psci.VERSION) == 0x8400_0000
    assert psci.fn64(psci.CPU_ON) == 0xC400_0003
    assert psci.fn32(psci.SYSTEM_RESET2) == 0x8400_0012
    assert psci.fn64(psci.SYSTEM_RESET2) == 0xC400_0012
    assert psci.VERSION_1_1 == 0x0001_0001
    assert psci.MPIDR_AFFINITY_MASK == 0xFF_00FF_FFFF  # arm64 MPIDR_HWID_BITMASK
    assert (psci.INVALID_PARAMETERS, psci.ALREADY_ON, psci.INVALID_ADDRESS) == (-2, -4, -9)
    for number, name in [(psci.CPU_ON, "PSCI_CPU_ON"), (psci.FEATURES, "PSCI_FEATURES")]:
        assert smccc.generic_name(smccc.FunctionId.decode(psci.fn32(number))) == name


# docs/abi.md section 7 (psci.ev): which IDs Gunyah registers, each width.
GUNYAH_REGISTERED = {
    0x8400_0000, 0x8400_0001, 0xC400_0001, 0x8400_0002, 0x8400_0003, 0xC400_0003,
    0x8400_0004, 0xC400_0004, 0x8400_0008, 0x8400_0009, 0x8400_000A, 0x8400_000C,
    0xC400_000C, 0x8400_0012, 0xC400_0012,
}  # fmt: skip
# arch/arm64/kvm/psci.c kvm_psci_1_x_call's FEATURES list
KVM_REGISTERED = {
    0x8400_0000, 0x8400_0001, 0xC400_0001, 0x8400_0002, 0x8400_0003, 0xC400_0003,
    0x8400_0004, 0xC400_0004, 0x8400_0006, 0x8400_0008, 0x8400_0009, 0x8400_000A,
    0x8400_0012, 0xC400_0012,
}  # fmt: skip
EVERY_PSCI_ID = {base | n for base in (0x8400_0000, 0xC400_0000) for n in range(0x20)}


@pytest.mark.parametrize(("persona", "registered"), [("gunyah", GUNYAH_REGISTERED),
                                                     ("kvm", KVM_REGISTERED)])  # fmt: skip
def test_features_says_present_for_exactly_the_registered_calls(persona, registered) -> None:
    h = Hypervisor(persona)
    present = set()
    for fid in EVERY_PSCI_ID:
        regs, _ = call(h, psci.fn32(psci.FEATURES), fid)
        if regs[0] & M32 != M32:
            present.add(fid)
    assert present == registered


def test_features_words_and_smccc_version() -> None:
    h = Hypervisor("gunyah")
    features = psci.fn32(psci.FEATURES)
    assert call(h, features, smccc.SMCCC_VERSION)[0][0] == 0  # turns on SMCCC 1.1 discovery
    assert call(h, features, psci.fn32(psci.CPU_SUSPEND))[0][0] == 2  # PC mode, extended StateID
    assert call(h, features, smccc.SMCCC_ARCH_FEATURES)[0][0] == M32  # 32-bit dispatch
    k = Hypervisor("kvm")
    assert call(k, features, psci.fn32(psci.CPU_SUSPEND))[0][0] == 0
    assert call(k, features, smccc.SMCCC_VERSION)[0][0] == 0
    # KVM matches whole IDs: the SVE hint bit makes it another ID; Gunyah reads fields
    hinted = psci.fn32(psci.CPU_OFF) | 1 << 16
    assert call(k, features, hinted)[0][0] == M64
    assert call(h, features, hinted)[0][0] == 0


def test_unregistered_calls_take_the_dispatchers_default() -> None:
    regs, action = call(Hypervisor("gunyah"), psci.fn32(psci.MIGRATE_INFO_TYPE))
    assert regs[0] == M64 and action is None
    regs, _ = call(Hypervisor("kvm"), psci.fn32(psci.MIGRATE_INFO_TYPE))
    assert regs[:4] == [psci.TOS_MP, 0, 0, 0]
    for fid in EVERY_PSCI_ID:
        regs, action = call(Hypervisor("none"), fid, 1, 2, 3)
        assert regs[0] == M64 and action is None


def test_return_code_widths() -> None:
    # Gunyah's 32-bit dispatch zero-extends; its 64-bit one and KVM sign-extend
    gunyah, kvm = Hypervisor("gunyah"), Hypervisor("kvm")
    assert call(gunyah, psci.fn32(psci.CPU_ON), 0x99)[0][0] == psci.INVALID_PARAMETERS & M32
    assert call(gunyah, psci.fn64(psci.CPU_ON), 0x99)[0][0] == psci.INVALID_PARAMETERS & M64
    assert call(kvm, psci.fn32(psci.CPU_ON), 0x99)[0][:4] == [
        psci.INVALID_PARAMETERS & M64,
        0,
        0,
        0,
    ]
    dirty = Hypervisor("dirty-upper")
    assert call(dirty, psci.fn32(psci.VERSION))[0][0] == 0xDEADBEEF_0001_0001


@pytest.mark.parametrize("persona", ["gunyah", "kvm"])
def test_cpu_on_affinity_info_and_cpu_off(persona: str) -> None:
    h = Hypervisor(persona, cpus=2)
    on, info = psci.fn64(psci.CPU_ON), psci.fn64(psci.AFFINITY_INFO)
    assert call(h, info, mpidr_of(1), 0)[0][0] == psci.AFFINITY_OFF
    regs, action = call(h, on, mpidr_of(1), 0x4000_1000, 0x77)
    assert regs[0] == psci.SUCCESS
    assert (action.kind, action.cpu, action.entry, action.context) == (
        "cpu_on",
        1,
        0x4000_1000,
        0x77,
    )
    assert call(h, info, mpidr_of(1), 0)[0][0] == psci.AFFINITY_ON
    assert call(h, on, mpidr_of(1), 0, 0)[0][0] == psci.ALREADY_ON & M64
    assert call(h, on, mpidr_of(2), 0, 0)[0][0] == psci.INVALID_PARAMETERS & M64
    level1 = call(h, info, mpidr_of(1), 1)[0][0]
    outside = call(h, info, mpidr_of(1) | 1 << 31, 0)[0][0]
    if persona == "gunyah":  # level 1 refused; bits outside the affinity fields ignored
        assert (level1, outside) == (psci.INVALID_PARAMETERS & M64, psci.AFFINITY_ON)
    else:  # KVM: level 1 is the cluster, which has a vCPU on; bits outside are invalid
        assert (level1, outside) == (psci.AFFINITY_ON, psci.INVALID_PARAMETERS & M64)
    _, action = call(h, psci.fn32(psci.CPU_OFF), cpu=1)
    assert (action.kind, action.cpu) == ("cpu_off", 1)
    assert call(h, info, mpidr_of(1), 0)[0][0] == psci.AFFINITY_OFF


def test_mpidr_of_follows_qemu_virt_clusters_of_eight() -> None:
    assert [mpidr_of(i) for i in (0, 1, 7, 8, 9)] == [0, 1, 7, 0x100, 0x101]


@pytest.mark.parametrize("persona", ["gunyah", "kvm"])
def test_system_off_and_resets_act(persona: str) -> None:
    h = Hypervisor(persona)
    regs, action = call(h, psci.fn32(psci.SYSTEM_OFF))
    assert action.kind == "system_off" and regs[0] == psci.fn32(psci.SYSTEM_OFF)  # no return
    _, action = call(h, psci.fn32(psci.SYSTEM_RESET))
    assert action.kind == "system_reset" and action.reset_type is None
    _, action = call(h, psci.fn64(psci.SYSTEM_RESET2), 0x8000_0001, 0xC00C1E)
    assert (action.reset_type, action.cookie) == (0x8000_0001, 0xC00C1E)  # a vendor type
    regs, action = call(h, psci.fn64(psci.SYSTEM_RESET2), 5, 0)  # reserved architectural type
    assert action is None and regs[0] & M32 == psci.INVALID_PARAMETERS & M32


def test_sets_are_tables_that_dispatch_and_features_share() -> None:
    for s in (GUNYAH, KVM):
        assert psci.FEATURES in s.functions and psci.VERSION in s.functions
        for number, entry in s.functions.items():
            assert s.features(psci.fn32(number)) == entry.feature_word
            expected = entry.feature_word if entry.smc64 else psci.NOT_SUPPORTED
            assert s.features(psci.fn64(number)) == expected


def test_gunyah_psci_does_not_appear_in_arch_features() -> None:
    # SMCCC_ARCH_FEATURES covers the SMCCC dispatcher's own calls; PSCI has FEATURES
    h = Hypervisor("gunyah")
    assert call(h, smccc.SMCCC_ARCH_FEATURES, psci.fn32(psci.VERSION))[0][0] == M32


RUN_ENDS = [
    ("gunyah", 0, "poweroff", 0),
    ("gunyah", 1, "reset", RESET_STATUS),
    ("kvm", 0, "poweroff", 0),
    ("none", 0, "semihosting-exit", 99),  # no PSCI: the call returns
]


@pytest.mark.parametrize(("persona", "which", "stopped", "status"), RUN_ENDS)
def test_unicorn_run_ends_on_system_off_and_reset(
    guests: dict[str, Path], persona: str, which: int, stopped: str, status: int
) -> None:
    from gunyah.vcpu import VCpu, load_elf

    result = VCpu(Hypervisor(persona)).run(load_elf(guests["psci_power"]), {0: which})
    assert (result.stopped_by, result.exit_status) == (stopped, status)


def test_call_names_psci_return_codes_as_psci_does() -> None:
    from cli_helpers import gunyah

    # -2 is INVALID_PARAMETERS to PSCI, NOT_REQUIRED to SMCCC
    out = gunyah("call", "0xc4000003", "0x99").stdout
    assert "(-2 INVALID_PARAMETERS)" in out and "NOT_REQUIRED" not in out
    assert "(-4 ALREADY_ON)" in gunyah("call", "0xc4000003", "0").stdout


@given(
    persona=st.sampled_from(["gunyah", "kvm", "none", "dirty-upper"]),
    function=st.integers(0, 0x1F),
    smc64=st.booleans(),
    args=st.lists(st.integers(0, M64), min_size=17, max_size=17),
    cpu=st.integers(0, 1),
)
def test_any_psci_call_is_answered_within_64_bits(persona, function, smc64, args, cpu) -> None:
    h = Hypervisor(persona, cpus=2)
    fid = psci.fn64(function) if smc64 else psci.fn32(function)
    regs = [fid, *args]
    action = h.handle(regs, "hvc", 0, cpu)
    assert len(regs) == 18 and all(0 <= r <= M64 for r in regs)
    assert regs[4:] == args[3:]  # X4.. are never touched
    if action is not None:
        assert action.kind in ("cpu_on", "cpu_off", "system_off", "system_reset")
        assert 0 <= action.cpu < 2
