"""The syndrome of a guest's data abort, and the VMMIO access it describes
(gunyah.model.vmmio; the instruction decode of gunyah.vcpu.secondary)."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gunyah.model import vmmio
from gunyah.model.vmmio import DATA_ABORT_ISS, ESR, Access, Syndrome, decode_access

MASK64 = (1 << 64) - 1

# quic/gunyah-hypervisor hyp/core/base/aarch64/sysregs.tc, ESR_EL2_ISS_DATA_ABORT:
# (field, msb, lsb)
SYSREGS_TC = [
    ("DFSC", 5, 0), ("WnR", 6, 6), ("S1PTW", 7, 7), ("CM", 8, 8), ("EA", 9, 9),
    ("FnV", 10, 10), ("SET", 12, 11), ("VNCR", 13, 13), ("AR", 14, 14), ("SF", 15, 15),
    ("SRT", 20, 16), ("SSE", 21, 21), ("SAS", 23, 22), ("ISV", 24, 24),
]  # fmt: skip


def test_iss_layout_is_the_hypervisors() -> None:
    assert DATA_ABORT_ISS.bits == 25
    assert [(n, f.msb, f.lsb) for n, f in DATA_ABORT_ISS.fields.items()] == SYSREGS_TC
    assert (ESR["EC"].lsb, ESR["EC"].width, ESR["IL"].lsb, ESR["ISS"].width) == (26, 6, 25, 25)


def test_exception_classes_and_fault_codes() -> None:
    """hyp/core/base/armv8/enums.tc (esr_ec, iss_da_ia_fsc) and the Arm ARM."""
    m = vmmio
    assert (m.EC_UNKNOWN, m.EC_WFX, m.EC_INST_ABORT_LOWER, m.EC_INST_ABORT,
            m.EC_DATA_ABORT_LOWER, m.EC_DATA_ABORT) == (0, 1, 0x20, 0x21, 0x24, 0x25)  # fmt: skip
    assert (m.EC_SVC64, m.EC_HVC64, m.EC_SMC64, m.EC_BRK) == (0x15, 0x16, 0x17, 0x3C)
    assert vmmio.FSC_TRANSLATION_3 == 7 and vmmio.FSC_PERMISSION_3 == 0xF
    assert vmmio.FSC_SYNC_EXTERNAL == 0x10


iss_fields = st.fixed_dictionaries({
    "DFSC": st.integers(0, 63), "WnR": st.booleans(), "S1PTW": st.booleans(),
    "CM": st.booleans(), "EA": st.booleans(), "FnV": st.booleans(), "SET": st.integers(0, 3),
    "VNCR": st.booleans(), "AR": st.booleans(), "SF": st.booleans(), "SRT": st.integers(0, 31),
    "SSE": st.booleans(), "SAS": st.integers(0, 3), "ISV": st.booleans(),
})  # fmt: skip


@given(iss_fields)
def test_iss_round_trip(fields: dict[str, int | bool]) -> None:
    word = DATA_ABORT_ISS.encode(fields)
    assert word >> 25 == 0
    assert DATA_ABORT_ISS.decode(word) == fields
    esr = ESR.encode({"EC": vmmio.EC_DATA_ABORT_LOWER, "IL": True, "ISS": word})
    assert Syndrome(esr).iss == word and Syndrome(esr).ec == 0x24


@given(st.integers(0, (1 << 25) - 1))
def test_iss_decode_encode(word: int) -> None:
    assert DATA_ABORT_ISS.encode(DATA_ABORT_ISS.decode(word)) == word


regs31 = st.lists(st.integers(0, MASK64), min_size=31, max_size=31).map(tuple)


@given(
    sas=st.integers(0, 3), sse=st.booleans(), sf=st.booleans(), write=st.booleans(),
    srt=st.integers(0, 31), regs=regs31, ipa=st.integers(0, (1 << 48) - 1),
    resume=st.integers(0, MASK64),
)  # fmt: skip
def test_every_sas_sse_sf(
    sas: int, sse: bool, sf: bool, write: bool, srt: int, regs: tuple[int, ...], ipa: int,
    resume: int,
) -> None:
    size = 1 << sas
    esr = vmmio.data_abort_esr(write=write, size=size, reg=srt, sign_extend=sse, sf=sf)
    a = decode_access(Syndrome(esr, far=ipa, ipa=ipa, regs=regs, pc=0x80000000))
    assert a is not None
    assert (a.ipa, a.size, a.write, a.reg, a.sign_extend, a.sf) == (ipa, size, write, srt, sse, sf)
    if write:
        # the whole register, whatever the size (docs/real-gunyah.md section 13);
        # SRT 31 is XZR
        assert a.value == (0 if srt == 31 else regs[srt])
        assert a.writeback(resume) is None
        return
    assert a.value == 0
    got = a.loaded(resume)
    # vdevice.c: no mask to the size; SSE's xor-subtract below 8 bytes; SF's cut
    expect = resume
    if sse and size != 8:
        bit = 1 << (size * 8 - 1)
        expect = ((resume ^ bit) - bit) & MASK64
    if not sf:
        expect &= 0xFFFF_FFFF
    assert got == expect
    assert a.writeback(resume) == (None if srt == 31 else (srt, got))


@given(sas=st.integers(0, 2), value=st.integers(0, MASK64), sf=st.booleans())
def test_sign_extension_of_a_value_that_fits(sas: int, value: int, sf: bool) -> None:
    """Where the resume value fits the access, SSE sign-extends it as a load
    would; past it, the hypervisor's formula leaves the upper bits to it."""
    size = 1 << sas
    value &= (1 << (8 * size)) - 1
    a = Access(0x6000, size, False, 0, 3, sign_extend=True, sf=sf, acquire_release=False)
    signed = value - (1 << 8 * size) if value >> (8 * size - 1) else value
    assert a.loaded(value) == signed & (MASK64 if sf else 0xFFFF_FFFF)


def test_unmasked_resume_of_a_narrow_load() -> None:
    """`ldrb w5` resumed with 0x1234 gets 0x1234, and `ldrsb x3` resumed with
    0x1ff gets 0xff: what vdevice.c writes, not what hardware would load."""
    ldrb_w = Access(0x6070, 1, False, 0, 5, sign_extend=False, sf=False, acquire_release=False)
    ldrsb_x = Access(0x6050, 1, False, 0, 3, sign_extend=True, sf=True, acquire_release=False)
    assert ldrb_w.loaded(0x1234) == 0x1234
    assert ldrb_w.loaded(0x1122334455667788) == 0x55667788
    assert ldrsb_x.loaded(0x80) == 0xFFFF_FFFF_FFFF_FF80
    assert ldrsb_x.loaded(0x1FF) == 0xFF


@given(st.integers(0, 63), st.integers(0, (1 << 25) - 1))
def test_only_a_data_abort_with_isv_is_an_access(ec: int, iss: int) -> None:
    esr = ESR.encode({"EC": ec, "IL": True, "ISS": iss})
    a = decode_access(Syndrome(esr, far=0x6000, ipa=0x6000))
    assert (a is not None) == (ec == 0x24 and bool(iss >> 24 & 1))


def test_no_ipa_no_access() -> None:
    esr = vmmio.data_abort_esr(write=True, size=8)
    assert decode_access(Syndrome(esr, far=0x6000, ipa=None)) is None


# tests/guests/secondary/forms.S, word by word: (SAS, SSE, SRT, SF, AR, WnR), or
# None where the Arm ARM gives no valid ISS
FORMS = [
    (3, 0, 0, 1, 0, 1), (2, 0, 22, 0, 0, 1), (0, 0, 21, 0, 0, 1), (1, 0, 3, 0, 0, 1),
    (3, 0, 21, 1, 0, 0), (2, 0, 22, 0, 0, 0), (0, 0, 5, 0, 0, 0), (1, 0, 7, 0, 0, 0),
    (0, 1, 3, 1, 0, 0), (0, 1, 3, 0, 0, 0), (1, 1, 4, 1, 0, 0), (1, 1, 4, 0, 0, 0),
    (2, 1, 6, 1, 0, 0),
    (3, 0, 1, 1, 0, 1), (1, 1, 2, 0, 0, 0),  # unscaled
    (2, 0, 1, 0, 0, 1), (3, 0, 9, 1, 0, 0), (0, 1, 9, 1, 0, 0),  # register offset
    (3, 0, 31, 1, 0, 1), (3, 0, 31, 1, 0, 0),  # XZR
    (3, 0, 1, 1, 1, 1), (0, 0, 9, 0, 1, 0),  # STLR, LDARB
    (2, 0, 1, 0, 0, 1),  # STTR
    None, None, None, None, None, None, None, None, None,  # pairs .. PRFM
    (3, 0, 1, 1, 0, 0),  # LDR (literal)
    None, None,  # LDAXR, B
]  # fmt: skip


@pytest.fixture(scope="module")
def forms_words(tmp_path_factory: pytest.TempPathFactory) -> list[int]:
    from gunyah.toolchain import build
    from gunyah.vcpu.loader import load_elf

    src = Path(__file__).resolve().parent / "guests" / "secondary"
    out = tmp_path_factory.mktemp("forms") / "forms.elf"
    build([src / "forms.S"], out, ("-Wl,-T," + str(src / "secondary.ld"),))
    data = load_elf(out).segments[0].data
    return [struct.unpack_from("<I", data, i)[0] for i in range(0, len(data), 4)]


def test_instruction_forms_with_a_valid_iss(forms_words: list[int]) -> None:
    from gunyah.vcpu.secondary import access_syndrome_iss

    assert len(forms_words) == len(FORMS)
    for word, expect in zip(forms_words, FORMS, strict=True):
        f = access_syndrome_iss(word)
        got = None if f is None else tuple(int(f[k]) for k in ("SAS", "SSE", "SRT", "SF", "AR",
                                                              "WnR"))  # fmt: skip
        assert got == expect, f"{word:#010x}"
        if f is not None:
            assert f["ISV"]


@given(st.integers(0, (1 << 32) - 1))
def test_decode_of_any_word(word: int) -> None:
    """Any word decodes without raising, to fields that fit the ISS."""
    from gunyah.vcpu.secondary import access_syndrome_iss

    f = access_syndrome_iss(word)
    if f is not None:
        DATA_ABORT_ISS.encode(f)
        assert f["SAS"] == word >> 30 or word & 0x3F000000 == 0x18000000
