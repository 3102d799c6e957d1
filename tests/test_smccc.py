"""SMCCC codec: bit positions, owners, return codes and the UID rule (docs/abi.md section 1)."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import smccc
from gunyah.smccc import FunctionId, make_function_id


def test_linux_call_val_layout() -> None:
    # ARM_SMCCC_CALL_VAL(type, convention, owner, fn) from include/linux/arm-smccc.h
    assert make_function_id(fast=True, smc64=False, owner=0, function=0) == 0x80000000
    assert make_function_id(fast=True, smc64=False, owner=0, function=1) == 0x80000001
    assert make_function_id(fast=True, smc64=False, owner=6, function=0xFF01) == 0x8600FF01
    assert make_function_id(fast=True, smc64=True, owner=6, function=0x8000) == 0xC6008000
    assert make_function_id(fast=False, smc64=False, owner=63, function=0) == 0x3F000000
    assert make_function_id(fast=True, smc64=False, owner=0, function=0, sve_hint=True) == (
        0x80010000
    )


def test_field_positions() -> None:
    f = FunctionId.decode(0xC6018000 | (0x55 << 17))
    assert f.fast and f.smc64
    assert f.owner == 6
    assert f.res0 == 0x55
    assert f.sve_hint
    assert f.function == 0x8000
    assert not f.valid


def test_well_known_ids() -> None:
    assert smccc.SMCCC_VERSION == 0x80000000
    assert smccc.SMCCC_ARCH_FEATURES == 0x80000001
    assert smccc.SMCCC_ARCH_SOC_ID == 0x80000002
    assert smccc.VENDOR_HYP_CALL_COUNT == 0x8600FF00
    assert smccc.VENDOR_HYP_CALL_UID == 0x8600FF01
    assert smccc.VENDOR_HYP_REVISION == 0x8600FF03
    assert smccc.STANDARD_HYP_CALL_UID == 0x8500FF01


def test_return_codes() -> None:
    assert smccc.RET_SUCCESS == 0
    assert smccc.RET_NOT_SUPPORTED == -1
    assert smccc.RET_NOT_REQUIRED == -2
    assert smccc.RET_INVALID_PARAMETER == -3
    assert smccc.return_code_name(0xFFFFFFFF, 32) == "NOT_SUPPORTED"
    assert smccc.return_code_name(0xFFFFFFFFFFFFFFFD, 64) == "INVALID_PARAMETER"
    # a 32-bit -1 is not -1 in a 64-bit register
    assert smccc.return_code_name(0xFFFFFFFF, 64) is None


def test_smccc_version_values() -> None:
    assert smccc.VERSION_1_0 == 0x10000
    assert smccc.VERSION_1_1 == 0x10001
    assert smccc.VERSION_1_2 == 0x10002
    assert smccc.VERSION_1_3 == 0x10003


@pytest.mark.parametrize(
    ("owner", "name"),
    [
        (0, "arm-architecture"),
        (1, "cpu-service"),
        (2, "sip-service"),
        (3, "oem-service"),
        (4, "standard-secure-service"),
        (5, "standard-hypervisor-service"),
        (6, "vendor-hypervisor-service"),
        (7, "reserved"),
        (47, "reserved"),
        (48, "trusted-application"),
        (49, "trusted-application"),
        (50, "trusted-os"),
        (63, "trusted-os"),
    ],
)
def test_owner_names(owner: int, name: str) -> None:
    assert smccc.owner_name(owner) == name


def test_encode_refuses_out_of_range() -> None:
    with pytest.raises(ValueError, match=r"owner 64 is outside 0\.\.63 \(function ID bits 29:24\)"):
        make_function_id(fast=True, smc64=False, owner=64, function=0)
    with pytest.raises(
        ValueError, match=r"function 65536 is outside 0\.\.65535 \(function ID bits 15:0\)"
    ):
        make_function_id(fast=True, smc64=False, owner=0, function=0x10000)
    with pytest.raises(ValueError, match="32 bits"):
        FunctionId.decode(1 << 32)


def test_psci_names_from_linux_uapi() -> None:
    # include/uapi/linux/psci.h: PSCI_0_2_FN_BASE 0x84000000, FN64 adds 0x40000000
    names = {
        0x84000000: "PSCI_VERSION",
        0x84000002: "PSCI_CPU_OFF",
        0xC4000003: "PSCI_CPU_ON",
        0x84000008: "PSCI_SYSTEM_OFF",
        0x84000009: "PSCI_SYSTEM_RESET",
        0x8400000A: "PSCI_FEATURES",
        0xC400000E: "PSCI_SYSTEM_SUSPEND",
    }
    for value, name in names.items():
        assert smccc.generic_name(FunctionId.decode(value)) == name


def test_uid_rule_gunyah() -> None:
    # smccc.tc: SMCCC_GUNYAH_UID0..3 with the UUID in its comment
    words = (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)
    assert smccc.uid_to_uuid(words) == uuid.UUID("c1d58fcd-a453-5fdb-9265-ce36673d5f14")
    assert smccc.uuid_to_uid("c1d58fcd-a453-5fdb-9265-ce36673d5f14") == words


def test_uid_rule_is_not_bytes_le() -> None:
    words = (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)
    import struct

    wrong = uuid.UUID(bytes_le=struct.pack("<4I", *words))
    assert wrong != smccc.uid_to_uuid(words)


def test_uid_rule_kvm() -> None:
    # arm-smccc.h ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0..3
    words = (0xB66FB428, 0xE911C52E, 0x564BCAA9, 0x743A004D)
    assert str(smccc.uid_to_uuid(words)) == "28b46fb6-2ec5-11e9-a9ca-4b564d003a74"


words32 = st.integers(0, smccc.MASK32)


@given(st.booleans(), st.booleans(), st.integers(0, 63), st.integers(0, 0xFFFF), st.booleans())
def test_function_id_round_trip(fast: bool, smc64: bool, owner: int, fn: int, sve: bool) -> None:
    value = make_function_id(fast=fast, smc64=smc64, owner=owner, function=fn, sve_hint=sve)
    f = FunctionId.decode(value)
    assert (f.fast, f.smc64, f.owner, f.function, f.sve_hint) == (fast, smc64, owner, fn, sve)
    assert f.valid
    assert f.encode() == value


@given(words32)
def test_any_32_bit_value_decodes_losslessly(value: int) -> None:
    f = FunctionId.decode(value)
    assert f.raw == value
    assert f.encode() == value
    assert f.valid == (value >> 17 & 0x7F == 0)
    smccc.generic_name(f)
    smccc.function_id_dict(f)


@given(st.tuples(words32, words32, words32, words32))
def test_uid_round_trip(words: tuple[int, int, int, int]) -> None:
    assert smccc.uuid_to_uid(smccc.uid_to_uuid(words)) == words


@given(st.uuids())
def test_uuid_round_trip(u: uuid.UUID) -> None:
    assert smccc.uid_to_uuid(smccc.uuid_to_uid(u)) == u


@given(st.integers(0, smccc.MASK64), st.sampled_from([32, 64]))
def test_to_signed_inverts_masking(value: int, bits: int) -> None:
    v = value & ((1 << bits) - 1)
    assert smccc.to_signed(v, bits) & ((1 << bits) - 1) == v


def test_names_only_for_the_forms_the_specs_define() -> None:
    assert smccc.generic_name(FunctionId.decode(0x00000001)) is None  # yielding
    assert smccc.generic_name(FunctionId.decode(0xC0000000)) is None  # arch calls are 32-bit
    assert smccc.generic_name(FunctionId.decode(0xC4000003)) == "PSCI_CPU_ON"  # 64-bit form
    assert smccc.generic_name(FunctionId.decode(0xC600FF01)) is None  # queries are 32-bit
