"""The one classifier of a trap, and every place that must agree with it."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah import trace
from gunyah.abi.hvc import DECLARED, TABLE_SIZE
from gunyah.conduit import TrapRecord
from gunyah.model import Hypervisor
from gunyah.trap import classify

CONDUIT = st.sampled_from(["hvc", "smc"])
IMM = (
    st.integers(0, 0xFFFF)
    | st.sampled_from([0, 0x6000, 0x61FF, 0x6200, 0x5FFF])
    | st.integers(0x6000, 0x61FF)
)
X0 = st.integers(0, 2**64 - 1)


@pytest.mark.parametrize(
    ("conduit", "imm", "x0", "abi", "fid", "number", "width", "name"),
    [
        ("hvc", 0, 0xFFFF_FFFF_8600_FF01, "smccc", 0x8600FF01, None, 32, "VENDOR_HYP_CALL_UID"),
        ("smc", 0, 0xC6008000, "smccc", 0xC6008000, None, 64, "hypervisor_identify"),
        ("hvc", 0x6000, 0x1234, "native", None, 0, 64, "hypervisor_identify"),
        ("hvc", 0x61FF, 0, "native", None, 0x1FF, 64, None),
        ("smc", 0x6000, 0, "none", None, None, 64, None),  # the native ABI is HVC only
        ("hvc", 0x6200, 0, "none", None, None, 64, None),
        ("hvc", 1, 0, "none", None, None, 64, None),
    ],
)  # fmt: skip
def test_the_rule(conduit: str, imm: int, x0: int, abi: str, fid: int | None,
                  number: int | None, width: int, name: str | None) -> None:  # fmt: skip
    c = classify(conduit, imm, x0)
    assert (c.abi, c.function_id, c.number, c.width, c.name) == (abi, fid, number, width, name)


def test_immediates_past_16_bits_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bits"):
        classify("hvc", 0x10000, 0)


@given(CONDUIT, IMM, X0)
def test_trace_keys_and_the_scanners_layout_agree(conduit: str, imm: int, x0: int) -> None:
    """call_key, and the packed key both parsers count (the compiled scanner is
    held to _call_keys by the parsers' property test), name the same call."""
    c = classify(conduit, imm, x0)
    assert trace.call_key(conduit == "smc", x0, imm) == (c.conduit, c.imm, c.function_id)
    packed = trace.calls._call_keys(
        np.array([conduit == "smc"]), np.array([x0], np.uint64), np.array([imm], np.uint64)
    )
    assert trace.calls._unkey(int(packed[0])) == (c.conduit, c.imm, c.function_id)


@given(CONDUIT, IMM, X0)
def test_the_record_of_a_trap_says_what_it_is(conduit: str, imm: int, x0: int) -> None:
    regs = (x0, *range(1, 18))
    d = TrapRecord(None, conduit, imm, regs, (0,) * 8).to_dict()  # type: ignore[arg-type]
    c = classify(conduit, imm, x0)
    assert (d["function_id"], d["name"]) == (c.function_id, c.name)
    assert d["arguments"] == list(regs[1:] if c.abi == "smccc" else regs[:8])


@given(CONDUIT, IMM, X0)
def test_the_model_routes_as_the_classifier_says(conduit: str, imm: int, x0: int) -> None:
    """The model's hot path writes the rule out: it must answer a trap exactly
    as it answers the call the classifier names."""
    hyp = Hypervisor("gunyah")
    regs = [x0, *([0] * 17)]
    hyp.handle(regs, conduit, imm)  # type: ignore[arg-type]
    c = classify(conduit, imm, x0)
    if c.abi == "smccc":
        again = hyp.call(c.function_id or 0, kind=conduit)  # type: ignore[arg-type]
        assert regs[:4] == again[:4]  # X0's upper half changes nothing
    elif c.abi == "none":
        assert regs[0] == 2**64 - 1
    else:  # native call N: inside the table the return path sanitises X9..X17
        assert c.number is not None
        if c.number < TABLE_SIZE:
            assert regs[9] == 4 and regs[10:] == [0] * 8  # X9: the HVC at 0, plus 4
            call = DECLARED.get(c.number)
            if call is not None and call.feature in (None, *hyp.persona.features):
                if call.outputs[0].ctype == "error":
                    assert regs[0] < 2**32  # a native error is 32 bits, zero-extended
            else:
                assert regs[0] == 2**64 - 1  # a hole in the table
        else:
            assert regs == [2**64 - 1, *([0] * 17)]  # past the table: X0 only
