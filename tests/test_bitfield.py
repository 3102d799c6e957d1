"""The declarations every ABI layout is made from, and the well-known IDs
built from them, held to the values their sources spell."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import abi, smccc
from gunyah.bitfield import Bitfield, Field, flag

LAYOUTS = [smccc.FUNCTION_ID, smccc.VERSION, abi.VENDOR_HYP_FUNCTION, abi.API_INFO, *abi.FLAGS]


@pytest.mark.parametrize(
    ("value", "reference"),
    [
        # include/linux/arm-smccc.h and the Gunyah driver's names
        (smccc.SMCCC_VERSION, 0x80000000),  # ARM_SMCCC_VERSION_FUNC_ID
        (smccc.SMCCC_ARCH_FEATURES, 0x80000001),  # ARM_SMCCC_ARCH_FEATURES_FUNC_ID
        (smccc.SMCCC_ARCH_SOC_ID, 0x80000002),  # ARM_SMCCC_ARCH_SOC_ID
        (smccc.VENDOR_HYP_CALL_COUNT, 0x8600FF00),
        (smccc.VENDOR_HYP_CALL_UID, 0x8600FF01),  # ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID
        (smccc.VENDOR_HYP_REVISION, 0x8600FF03),
        (smccc.STANDARD_HYP_CALL_UID, 0x8500FF01),
        (smccc.STANDARD_HYP_REVISION, 0x8500FF03),
        (smccc.KVM_FEATURES, 0x86000000),  # ARM_SMCCC_VENDOR_HYP_KVM_FEATURES_FUNC_ID
        (abi.HYP_IDENTIFY, 0xC6008000),  # GH_HYPERCALL_HYP_IDENTIFY
        (abi.CALL_UID, 0x8600FF01),
        (abi.REVISION, 0x8600FF03),
        (smccc.VERSION_1_1, 0x10001),  # ARM_SMCCC_VERSION_1_1
        (smccc.VERSION_1_3, 0x10003),
    ],
)
def test_well_known_values(value: int, reference: int) -> None:
    assert value == reference


def test_function_id_layout() -> None:
    # DEN0028 2.5: 31 fast, 30 SMC64, 29:24 owner, 23:17 zero, 16 SVE hint, 15:0 function
    spans = {n: (f.msb, f.lsb) for n, f in smccc.FUNCTION_ID.fields.items()}
    assert spans == {"function": (15, 0), "sve_hint": (16, 16), "res0": (23, 17),
                     "owner": (29, 24), "smc64": (30, 30), "fast": (31, 31)}  # fmt: skip


def test_declarations_refuse_overlap_and_overflow() -> None:
    with pytest.raises(ValueError, match="overlaps"):
        Bitfield("x", 8, Field("a", 0, 4), Field("b", 3, 2))
    with pytest.raises(ValueError, match="outside the word"):
        Bitfield("x", 8, Field("a", 6, 4))
    with pytest.raises(ValueError, match="declared twice"):
        Bitfield("x", 8, flag("a", 0), flag("a", 1))
    b = Bitfield("x", 8, Field("a", 0, 4))
    with pytest.raises(ValueError, match="no field"):
        b.encode({"b": 1})
    with pytest.raises(ValueError, match="does not fit in 8 bits"):
        b.decode(256)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda b: b.name)
@given(data=st.data())
def test_every_layout_round_trips_every_word(layout: Bitfield, data: st.DataObject) -> None:
    """decode, then encode the named fields and add the unknown bits: the
    same word, whatever it holds."""
    word = data.draw(st.integers(0, layout.word_mask))
    rebuilt = layout.encode(layout.decode(word)) | sum(1 << b for b in layout.unknown_bits(word))
    assert rebuilt == word
    assert all(not layout.named_mask >> b & 1 for b in layout.unknown_bits(word))
