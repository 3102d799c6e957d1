"""Gunyah facts against the values their sources name (docs/abi.md sections 2-4)."""

from __future__ import annotations

import errno
import re
import uuid

import pytest
from conftest import ROOT
from hypothesis import given
from hypothesis import strategies as st

from gunyah import abi, smccc, trap

M64 = st.integers(0, smccc.MASK64)


def test_hypercall_and_service_ids() -> None:
    # Linux GUNYAH_HYPERCALL(0x8000) / ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID
    assert abi.HYP_IDENTIFY == 0xC6008000
    assert abi.CALL_UID == 0x8600FF01
    assert abi.REVISION == 0x8600FF03
    assert abi.hypercall_id(0x65) == 0xC6008065
    assert abi.service_id(abi.SERVICE_CALL_COUNT) == 0x8600FF00


def test_call_classes() -> None:
    # smccc.tc: smccc_vendor_hyp_function_id 13:0 number, 15:14 class
    assert layout(abi.VENDOR_HYP_FUNCTION) == {"number": (13, 0), "call_class": (15, 14)}
    # smccc.tc: smccc_vendor_hyp_function_class
    assert abi.CLASS_PLATFORM_CALL == 0b00
    assert abi.CLASS_HYPERCALL == 0b10
    assert abi.CLASS_SERVICE == 0b11
    assert abi.SERVICE_CALL_COUNT == 0x3F00
    assert abi.SERVICE_CALL_UID == 0x3F01
    assert abi.SERVICE_REVISION == 0x3F03
    assert abi.VendorHypCall.decode(0xFF01) == abi.VendorHypCall(abi.CLASS_SERVICE, 0x3F01)
    assert abi.VendorHypCall.decode(0x4123).class_name == "reserved"


def test_vendor_function_refuses_out_of_range() -> None:
    with pytest.raises(ValueError):
        abi.vendor_hyp_function(4, 0)
    with pytest.raises(ValueError):
        abi.vendor_hyp_function(2, 0x4000)


def test_native_range() -> None:
    assert abi.NATIVE_HVC_BASE == 0x6000
    assert abi.NATIVE_HVC_LAST == 0x61FF
    assert abi.native_imm(0) == 0x6000
    with pytest.raises(ValueError):
        abi.native_imm(0x200)


def test_catalogue_spot_values() -> None:
    assert abi.HYPERCALLS[0x0000] == "hypervisor_identify"
    assert abi.HYPERCALLS[0x0065] == "vcpu_run"
    assert abi.HYPERCALLS[0x0068] == "vcpu_run_check"
    assert 0x0008 not in abi.HYPERCALLS  # a gap in the catalogue stays a gap
    assert len(abi.HYPERCALLS) == 93  # rows of the reference catalogue


def test_catalogue_is_the_projects_own() -> None:
    """The shipped catalogue against what the project itself relies on: the
    calls the model, the guests and the docs name, and its size and range."""
    assert abi.HYPERCALL_NUMBERS["hypervisor_identify"] == abi.HYP_IDENTIFY_NUMBER == 0
    for name in ("vcpu_run", "doorbell_send", "msgqueue_send", "msgqueue_receive"):
        assert name in abi.HYPERCALL_NUMBERS
    assert all(0 <= n < abi.NATIVE_CALL_COUNT for n in abi.HYPERCALLS)
    assert len(set(abi.HYPERCALLS.values())) == len(abi.HYPERCALLS) == 93


def test_the_native_table_has_the_real_builds_entries_and_holes() -> None:
    """The measured QEMU build (docs/real-gunyah.md section 3, the table and its holes): 105 table
    entries 0x00..0x68, holes at 0x08, 0x09 (no watchdog there), 0x16, 0x1e,
    0x33, 0x35..0x37, 0x40..0x42, 0x58 and 0x63. The declarations name every
    other number, and only partition_create_watchdog depends on the watchdog."""
    from gunyah.abi import hvc

    holes = {0x08, 0x09, 0x16, 0x1E, 0x33, 0x35, 0x36, 0x37, 0x40, 0x41, 0x42, 0x58, 0x63}
    assert hvc.TABLE_SIZE == 105
    built = {n for n, c in hvc.DECLARED.items() if c.feature is None}
    assert built == set(range(105)) - holes
    assert {c.name for c in hvc.DECLARED.values() if c.feature} == {"partition_create_watchdog"}


def layout(b: object) -> dict[str, tuple[int, int]]:
    """A declaration as {field: (msb, lsb)}, the way the .tc files spell it."""
    return {n: (f.msb, f.lsb) for n, f in b.fields.items()}  # type: ignore[attr-defined]


def test_api_info_bits() -> None:
    # api.tc hyp_api_info: 13:0 version, 14 big_endian, 15 is_64bit, 55:16 zero, 63:56 variant
    assert layout(abi.API_INFO) == {"api_version": (13, 0), "big_endian": (14, 14),
        "is_64bit": (15, 15), "reserved": (55, 16), "variant": (63, 56)}  # fmt: skip
    assert abi.API_INFO["api_version"].top == 0x3FFF
    assert abi.API_INFO["reserved"].mask == 0x00FFFFFFFFFF0000
    info = abi.encode_api_info(version=1, big_endian=False, is_64bit=True, variant=0x51)
    assert info == 0x5100000000008001


def test_api_version_mask_disagreement() -> None:
    # The API document masks 13:0 with 0x1FFF; the code (api.tc) uses 14 bits.
    # The running hypervisor's code wins: bit 13 is part of the version.
    assert abi.API_VERSION_DOC_MASK == 0x1FFF
    ident = abi.HypIdentify.decode(0x2001 | 1 << 15)
    assert ident.api_version == 0x2001
    assert ident.api_version & abi.API_VERSION_DOC_MASK != ident.api_version


def test_variants() -> None:
    assert abi.VARIANT_UNKNOWN == 0x00
    assert abi.VARIANT_GUNYAH == 0x48 == ord("H")
    assert abi.VARIANT_QUALCOMM == 0x51 == ord("Q")
    assert abi.variant_name(0x7A) == "unknown"


def test_flags0_bits() -> None:
    expected = [
        "partition-cspace",
        "doorbell",
        "msgqueue",
        "vic",
        "vpm",
        "vcpu",
        "memextent",
        "trace-ctrl",
        "watchdog",
        "virtio-mmio",
        "prng",
        "vcpu-run",
    ]
    flags0 = layout(abi.FLAGS[0])
    assert [n for n, (msb, lsb) in flags0.items() if msb == lsb] == expected
    assert all(flags0[n] == (b, b) for b, n in enumerate(expected))
    assert flags0["scheduler"] == (31, 28)
    assert abi.SCHEDULERS == {0: "trivial", 1: "fprr"}
    assert layout(abi.FLAGS[1]) == {"sve": (0, 0)}
    assert layout(abi.FLAGS[2]) == {}


def test_linux_identify_bits_match() -> None:
    # seed include/linux/gunyah.h GH_IDENTIFY_* bits 0..7
    linux = {
        0: "PARTITION_CSPACE",
        1: "DOORBELL",
        2: "MSGQUEUE",
        3: "VIC",
        4: "VPM",
        5: "VCPU",
        6: "MEMEXTENT",
        7: "TRACE_CTRL",
    }
    for bit, name in linux.items():
        (field,) = [f for f in abi.FLAGS[0].fields.values() if f.lsb == bit]
        assert field.name.replace("-", "_").upper() == name


def test_unknown_flag_bits_stay_visible() -> None:
    ident = abi.HypIdentify.decode(
        0x5100000000008001, 1 << 12 | 1 << 16 | 1 << 28 | 1, 1 << 5 | 1, 1 << 63
    )
    assert ident.features == ["partition-cspace", "sve"]
    assert [(b.word, b.bit) for b in ident.unknown_flag_bits] == [(0, 12), (0, 16), (1, 5), (2, 63)]
    assert ident.scheduler == 1


def test_linux_banner() -> None:
    assert abi.HypIdentify.decode(0x5100000000008001).linux_banner == (
        "Running under Gunyah hypervisor 51/v1"
    )
    assert abi.HypIdentify.decode(0x4800000000008001).linux_banner == (
        "Running under Gunyah hypervisor 48/v1"
    )


def test_known_uids() -> None:
    by = abi.UIDS_BY_KEY
    assert by["gunyah"].words == (0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67)
    assert by["kvm"].words == (0xB66FB428, 0xE911C52E, 0x564BCAA9, 0x743A004D)
    assert by["gunyah-qualcomm"].uuid == uuid.UUID("19bd54bd-0b37-571b-946f-609b54539de6")
    assert by["xen"].uuid == uuid.UUID("a71812dc-c698-4369-9acf-79d18ddee667")
    # AOSP libhyp geniezone.rs: GeniezoneHypervisor::UUID, the words by the rule of section 1
    assert by["geniezone"].uuid == uuid.UUID("7e134ed0-3b82-488d-8cee-69c19211dbe7")
    assert by["geniezone"].words == (0xD04E137E, 0x8D48823B, 0xC169EE8C, 0xE7DB1192)
    assert {by["gunyah"].uuid, by["gunyah-qualcomm"].uuid} == abi.GUNYAH_UUIDS


def test_legacy_uid_words_do_not_name_gunyah() -> None:
    legacy = abi.CallUid.decode(*abi.LEGACY_GUNYAH_UID_WORDS)
    assert not legacy.is_gunyah
    assert legacy.hypervisor == "unknown"
    # and today's words are not what the early patch compared against
    assert abi.UIDS_BY_KEY["gunyah"].words != abi.LEGACY_GUNYAH_UID_WORDS


def test_uid_not_supported() -> None:
    uid = abi.CallUid.decode(0xFFFFFFFF, 0, 0, 0)
    assert uid.not_supported and not uid.is_gunyah
    assert uid.to_dict()["uuid"] is None


@pytest.mark.parametrize(
    ("code", "name", "err"),
    [
        (0, "OK", 0),
        (-1, "UNIMPLEMENTED", -errno.EINVAL),
        (-2, "RETRY", -errno.EINVAL),
        (1, "ARG_INVAL", -errno.EINVAL),
        (2, "ARG_SIZE", -errno.EINVAL),
        (3, "ARG_ALIGN", -errno.EINVAL),
        (10, "NOMEM", -errno.ENOMEM),
        (20, "ADDR_OVFL", -errno.EINVAL),
        (21, "ADDR_UNFL", -errno.EINVAL),
        (22, "ADDR_INVAL", -errno.EINVAL),
        (30, "DENIED", -errno.EACCES),
        (31, "BUSY", -errno.EBUSY),
        (32, "IDLE", -errno.EBUSY),
        (40, "IRQ_BOUND", -errno.EPERM),
        (41, "IRQ_UNBOUND", -errno.EPERM),
        (50, "CSPACE_CAP_NULL", -errno.EACCES),
        (51, "CSPACE_CAP_REVOKED", -errno.EACCES),
        (52, "CSPACE_WRONG_OBJ_TYPE", -errno.EACCES),
        (53, "CSPACE_INSUF_RIGHTS", -errno.EACCES),
        (54, "CSPACE_FULL", -errno.EACCES),
        (60, "MSGQUEUE_EMPTY", -errno.EPERM),
        (61, "MSGQUEUE_FULL", -errno.EPERM),
        (11, "NORESOURCES", -errno.EINVAL),
        (36, "FAILURE", -errno.EINVAL),
    ],
)
def test_errors(code: int, name: str, err: int) -> None:
    assert abi.error_name(code) == name
    assert abi.linux_errno(code) == err


def test_unknown_error_keeps_number() -> None:
    assert abi.error_name(99) == "unknown(99)"
    assert abi.linux_errno(99) == -errno.EINVAL


def test_describe_identify_and_refused_forms() -> None:
    d = abi.describe_function_id(0xC6008000)
    assert d["name"] == "hypervisor_identify"
    assert d["gunyah"] == {
        "class": {"value": 2, "name": "hypercall"},
        "number": 0,
        "name": "hypervisor_identify",
        "accepted": True,
        "accepted_form": "fast 64-bit",
    }
    assert abi.describe_function_id(0x86008000)["gunyah"]["accepted"] is False
    assert abi.describe_function_id(0xC600FF01)["gunyah"]["accepted"] is False


@given(st.integers(0, smccc.MASK32))
def test_describe_any_function_id(value: int) -> None:
    d = abi.describe_function_id(value)
    assert d["value"] == value
    assert d["owner"]["value"] == value >> 24 & 0x3F


@given(st.integers(0, 0xFFFF))
def test_describe_any_imm(imm: int) -> None:
    d = trap.describe_hvc_imm(imm)
    assert d["abi"] == ("smccc" if imm == 0 else "native" if 0x6000 <= imm <= 0x61FF else "none")


@given(
    st.integers(0, abi.API_INFO["api_version"].top),
    st.booleans(),
    st.booleans(),
    st.integers(0, 0xFF),
    st.integers(0, (1 << 40) - 1),
)
def test_api_info_round_trip(ver: int, be: bool, b64: bool, var: int, res: int) -> None:
    info = abi.encode_api_info(
        version=ver, big_endian=be, is_64bit=b64, variant=var, reserved=res << 16
    )
    d = abi.HypIdentify.decode(info)
    assert (d.api_version, d.big_endian, d.is_64bit, d.variant, d.reserved_bits) == (
        ver,
        be,
        b64,
        var,
        res << 16,
    )


@given(M64, M64, M64, M64)
def test_identify_decode_never_loses_a_bit(x0: int, x1: int, x2: int, x3: int) -> None:
    d = abi.HypIdentify.decode(x0, x1, x2, x3)
    info = abi.encode_api_info(
        version=d.api_version,
        big_endian=d.big_endian,
        is_64bit=d.is_64bit,
        variant=d.variant,
        reserved=d.reserved_bits,
    )
    assert info == x0
    for word, value in enumerate((x1, x2, x3)):
        rebuilt = sum(1 << b.bit for b in d.unknown_flag_bits if b.word == word)
        named = abi.FLAGS[word]
        known = {n: True for n in named.fields if n in d.features}
        if word == 0:
            known["scheduler"] = d.scheduler
        rebuilt |= named.encode(known)
        assert rebuilt == value
    d.to_dict()


@given(M64)
def test_identify_decode_refuses_wide_values(x: int) -> None:
    with pytest.raises(ValueError):
        abi.HypIdentify.decode(x + (1 << 64))


def test_describe_results() -> None:
    uid = [0xCD8FD5C1, 0xDB5F53A4, 0x36CE6592, 0x145F3D67]
    assert (
        abi.describe_results(0x8600FF01, 0, uid)["uid"]["hypervisor"] == "Gunyah (standard build)"
    )
    assert abi.describe_results(0x8500FF01, 0, uid)["uid"]["uuid"].startswith("c1d58fcd")
    assert abi.describe_results(0x8600FF01, 0, [0xFFFFFFFF, 0, 0, 0]) == {}
    info = [0x5100000000008001, 0, 0, 0]
    assert abi.describe_results(0xC6008000, 0, info)["identify"]["api_version"] == 1
    assert abi.describe_results(None, 0x6000, info)["identify"]["variant"]["value"] == 0x51
    assert abi.describe_results(0xC6008000, 0, [2**64 - 1, 0, 0, 0]) == {}
    assert abi.describe_results(0x86008000, 0, info) == {}  # not the form Gunyah takes


# -- the project's ABI reference (docs/) ------------------------------------------


def test_the_hypercall_page_is_what_the_declarations_say() -> None:
    """docs/hypercalls.md is generated: a declaration changed without the page
    regenerated (python -m gunyah.abi.reference > docs/hypercalls.md) fails here."""
    from gunyah.abi import reference
    page = (ROOT / "docs" / "hypercalls.md").read_text()
    assert page == reference.catalogue()
    assert page.count("\n| 0x") == len(abi.hvc.DECLARED)
    assert "| 0x1b | hvc #0x601b | 0xc600801b | msgqueue_send |" in page
    assert "msgqueue: msgqueue [send]" in page


def test_every_citation_of_the_abi_reference_names_a_section_it_has() -> None:
    """The code cites docs/abi.md by section; each cited section exists, and
    nothing cites a reference that a clone of the project lacks."""
    headings = set(re.findall(r"^## (\d+)\.", (ROOT / "docs" / "abi.md").read_text(), re.M))
    cited: set[str] = set()
    for path in [*(ROOT / "src").rglob("*.[ch]"), *(ROOT / "src").rglob("*.py"),
                 *(ROOT / "tests").rglob("*.py")]:  # fmt: skip
        text = path.read_text(errors="replace")
        assert not re.search(r"(?<!docs/)ABI\.md|shared[/]reference", text), path
        for first, last in re.findall(r"docs/abi\.md sections? (\d+)(?:-(\d+))?", text):
            cited.update(str(n) for n in range(int(first), int(last or first) + 1))
    assert cited and cited <= headings, cited - headings


@given(st.sampled_from(abi.cspace.OBJECT_TYPES), st.data())
def test_rights_names_read_back_a_rights_word(object_type: str, data: st.DataObject) -> None:
    names = [*abi.cspace.RIGHTS[object_type], *abi.cspace.GENERIC_RIGHTS]
    chosen = data.draw(st.lists(st.sampled_from(names), unique=True)) if names else []
    mask = abi.cspace.rights_mask(object_type, tuple(chosen))
    assert sorted(abi.cspace.rights_names(object_type, mask)) == sorted(chosen)
    assert abi.cspace.rights_names(object_type, mask | 1 << 30)[-1] == "0x40000000"
