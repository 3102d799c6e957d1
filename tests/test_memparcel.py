"""Memory parcels: the MEM_* layouts against include/memparcel_msg.h, the
measured requests and answers byte for byte (docs/real-gunyah.md, a second VM
hosted by the real RM), and the RM's handlers check for check in the order of
quic/gunyah-resource-manager src/memparcel/memparcel.c, with lent memory
leaving the lender's stage 2 until it is reclaimed, and hostile requests."""

from __future__ import annotations

import contextlib
import functools
import struct
from typing import Any

import pytest
from hyp_helpers import HLOS, RAM_BASE, RecordingHyp
from hypothesis import given, settings
from hypothesis import strategies as st

from gunyah.abi import memparcel as mp
from gunyah.abi import rm
from gunyah.rm import memparcel as memparcel_store
from gunyah.rm.memparcel import MAX_PARCELS_PER_VM, Parcels

E = rm.ERROR_CODES
VM = 0x80  # the first dynamic VMID
REGION = RAM_BASE + 0x200000  # a 2 MiB region of the primary VM's RAM
MiB2 = 0x200000

# The measured MEM_SHARE (44 bytes): mem_type 0, flags 0, label 0; ACL {0x80, 7},
# {3, 7}; one SGL entry (the HLOS's region, 2 MiB); no attributes.
MEASURED_SHARE = (
    bytes([0, 0, 0, 0]) + struct.pack("<I", 0)
    + struct.pack("<HH", 2, 0) + struct.pack("<HBB", 0x80, 7, 0) + struct.pack("<HBB", 3, 7, 0)
    + struct.pack("<HH", 1, 0) + struct.pack("<QQ", REGION, MiB2)
    + struct.pack("<HH", 0, 0)
)  # fmt: skip
MEASURED_RECLAIM_1 = struct.pack("<IB3x", 1, 0)  # u32 handle, u8 flags 0, 3 bytes 0


def setup() -> tuple[RecordingHyp, Parcels, dict[int, Any]]:
    hyp = RecordingHyp()
    parcels = Parcels(hyp)
    return hyp, parcels, parcels.handlers()


def create(acl: list[tuple[int, int]], sgl: list[tuple[int, int]], *, mem_type: int = 0,
           flags: int = 0, label: int = 0, attrs: list[tuple[int, int]] = ()) -> bytes:  # type: ignore[assignment]  # fmt: skip
    return mp.CreateRequest(mem_type, flags, label, tuple(mp.AclEntry(*a) for a in acl),
                            tuple(mp.SglEntry(*s) for s in sgl),
                            tuple(mp.AttrEntry(*a) for a in attrs)).encode()  # fmt: skip


def share(ipa: int = REGION, size: int = MiB2, **kw: Any) -> bytes:
    return create([(VM, 7), (HLOS, 7)], [(ipa, size)], **kw)


def lend(ipa: int = REGION, size: int = MiB2, **kw: Any) -> bytes:
    return create([(VM, 7)], [(ipa, size)], **kw)


def handle_of(answer: tuple[int, bytes, list[Any]]) -> int:
    assert answer[0] == 0, answer
    return mp.decode_handle(answer[1])


# -- the layouts against include/memparcel_msg.h ---------------------------------------
def test_constants_are_the_resource_managers() -> None:
    assert (mp.MEM_DONATE, mp.MEM_ACCEPT, mp.MEM_LEND, mp.MEM_SHARE, mp.MEM_RELEASE,
            mp.MEM_RECLAIM, mp.MEM_NOTIFY, mp.MEM_APPEND) == (
        0x51000010, 0x51000011, 0x51000012, 0x51000013, 0x51000014, 0x51000015,
        0x51000017, 0x51000018)  # fmt: skip
    assert (mp.NOTIFY_MEM_SHARED, mp.NOTIFY_MEM_RELEASED, mp.NOTIFY_MEM_ACCEPTED,
            mp.NOTIFY_MEM_RECALL) == (0x51100011, 0x51100012, 0x51100013, 0x51100014)  # fmt: skip
    assert (mp.MEM_TYPE_NORMAL, mp.MEM_TYPE_IO) == (0, 1)
    assert (mp.RIGHTS_X, mp.RIGHTS_W, mp.RIGHTS_R, mp.RIGHTS_RX, mp.RIGHTS_RW,
            mp.RIGHTS_RWX) == (1, 2, 4, 5, 6, 7)  # fmt: skip
    assert sorted(mp.VALID_RIGHTS) == [4, 5, 6, 7]  # mem_rights_valid: W or X alone is not
    assert (mp.CREATE_FLAG_SANITIZE, mp.CREATE_FLAG_APPEND, mp.APPEND_FLAG_DONE) == (1, 2, 1)
    assert (mp.ACCEPT_FLAG_VALIDATE_SANITIZED, mp.ACCEPT_FLAG_VALIDATE_ACL_ATTR,
            mp.ACCEPT_FLAG_VALIDATE_LABEL, mp.ACCEPT_FLAG_MAP_OTHER,
            mp.ACCEPT_FLAG_MAP_CONTIGUOUS, mp.ACCEPT_FLAG_SANITIZE,
            mp.ACCEPT_FLAG_DONE) == (1, 2, 4, 8, 16, 32, 128)  # fmt: skip
    assert (mp.RELEASE_FLAG_SANITIZE, mp.RECLAIM_FLAG_SANITIZE) == (1, 1)
    assert (mp.NOTIFY_FLAG_SHARED, mp.NOTIFY_FLAG_RELEASED, mp.NOTIFY_FLAG_ACCEPTED,
            mp.NOTIFY_FLAG_RECALL) == (1, 2, 4, 8)  # fmt: skip
    assert (mp.TRANS_DONATE, mp.TRANS_LEND, mp.TRANS_SHARE) == (0, 1, 2)
    assert (mp.ATTR_NORMAL, mp.ATTR_DEVICE, mp.ATTR_UNCACHED, mp.ATTR_CACHED) == (0, 1, 2, 3)
    assert mp.ACCEPT_RESP_FLAG_INCOMPLETE == 1
    assert mp.INVALID_HANDLE == 0xFFFFFFFF
    assert mp.MAX_LIST_ENTRIES == 512  # include/memparcel.h
    assert MAX_PARCELS_PER_VM == 64  # memparcel.c MAX_MEMPARCEL_PER_VM
    assert mp.ADDR_LIMIT == 1 << 44  # include/vm_memory.h, PAGE_BITS 12


def test_fixed_parts_are_the_structs_sizes() -> None:
    # the static_asserts of memparcel_msg.h, and the notification structs
    assert (mp.CREATE_MIN, mp.ACCEPT_MIN, mp.APPEND_MIN) == (20, 24, 12)
    assert len(mp.HandleRequest(1).encode()) == 8
    assert len(mp.CreateRequest(0, 0, 0, (), ()).encode()) == 20
    assert len(mp.AcceptRequest(1, 0, 0, 0, 0).encode()) == 24
    assert len(mp.SharedNotification(1, 0, 0, 0, 3, 0, 0, (), ()).encode()) == 32
    assert len(mp.OwnerNotification(1, VM).encode()) == 12
    assert len(mp.RecallNotification(1).encode()) == 8
    assert len(mp.AcceptReply(()).encode()) == 4  # memparcel_accept_sgl_resp_t after err
    one = mp.CreateRequest(0, 0, 0, (mp.AclEntry(1, 4),), (mp.SglEntry(0, 0),),
                           (mp.AttrEntry(0, 1),)).encode()  # fmt: skip
    assert len(one) == 20 + 4 + 16 + 4  # acl_entry_t 4, sgl_entry_t 16, attr_entry_t 4


def test_the_measured_share_decodes_and_encodes_byte_for_byte() -> None:
    assert len(MEASURED_SHARE) == 44
    req = mp.CreateRequest.decode(MEASURED_SHARE)
    assert req == mp.CreateRequest(0, 0, 0, (mp.AclEntry(0x80, 7), mp.AclEntry(3, 7)),
                                   (mp.SglEntry(REGION, 0x200000),), ())  # fmt: skip
    assert req.encode() == MEASURED_SHARE


def test_the_measured_reclaim_and_released_payloads() -> None:
    assert mp.HandleRequest.decode(MEASURED_RECLAIM_1) == mp.HandleRequest(1, 0)
    # MEM_RELEASED: u32 handle, u16 vmid, u16 0, u32 0
    note = bytes.fromhex("010000008000000000000000")
    assert mp.OwnerNotification.decode(note) == mp.OwnerNotification(1, 0x80, 0)
    assert mp.OwnerNotification(1, 0x80).encode() == note


# -- how the lists are read: rm_rpc_read_list, memparcel_read_lists ------------------------
HEAD = bytes(8)  # mem_type, flags, label: a create request up to its lists
ACL2 = struct.pack("<HH", 2, 0) + struct.pack("<HBx", VM, 7) + struct.pack("<HBx", HLOS, 7)
NO_LISTS = struct.pack("<HH", 0, 0) * 3


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        # a list the payload has no bytes left for is empty
        (HEAD + ACL2, None),
        (HEAD + NO_LISTS, None),
        # a count above 512 is refused before its bytes are looked at
        (HEAD + struct.pack("<HH", 513, 0) + bytes(8), "NORESOURCE"),
        (HEAD + struct.pack("<HH", 0xFFFF, 0) + bytes(8), "NORESOURCE"),
        (HEAD + struct.pack("<HH", 3, 0) + bytes(8), "MSG_INVALID"),  # 3 entries, 2 sent
        (HEAD + ACL2 + b"\x01", "MSG_INVALID"),  # a stray byte where a count goes
        (HEAD + ACL2 + struct.pack("<HH", 0, 0) + b"\x01\x00\x00", "MSG_INVALID"),
        (HEAD + NO_LISTS + b"\x00", "MSG_INVALID"),  # a byte after the last list
        (HEAD + NO_LISTS + bytes(4), "MSG_INVALID"),  # a fourth list is bytes left over
    ],
)
def test_lists_are_read_as_the_rm_reads_them(payload: bytes, error: str | None) -> None:
    assert len(payload) >= mp.CREATE_MIN
    if error is None:
        req = mp.CreateRequest.decode(payload)
        assert req.sgl == () and req.attrs == ()
        assert req.acl in ((), (mp.AclEntry(VM, 7), mp.AclEntry(HLOS, 7)))
        return
    with pytest.raises(mp.RequestError) as info:
        mp.CreateRequest.decode(payload)
    assert info.value.error == E[error]


def test_short_fixed_parts_are_msg_invalid() -> None:
    for decode, size in ((mp.CreateRequest.decode, 20), (mp.AcceptRequest.decode, 24),
                         (mp.AppendRequest.decode, 12), (mp.HandleRequest.decode, 8),
                         (mp.NotifyRequest.decode, 12)):  # fmt: skip
        with pytest.raises(mp.RequestError) as info:
            decode(bytes(size - 1))
        assert info.value.error == E["MSG_INVALID"]


def test_release_and_reclaim_ignore_bytes_after_their_eight() -> None:
    assert mp.HandleRequest.decode(MEASURED_RECLAIM_1 + b"junk") == mp.HandleRequest(1, 0)


def test_accept_keeps_its_map_vmid_in_the_sgl_count_word() -> None:
    req = mp.AcceptRequest(5, 0, 1, 0x80, 9, (mp.AclEntry(VM, 7),),
                           (mp.SglEntry(0x80000000, MiB2),), map_vmid=0x1234)  # fmt: skip
    data = req.encode()
    assert data[12 + 4 + 4 : 12 + 4 + 4 + 4] == struct.pack("<HH", 1, 0x1234)
    assert mp.AcceptRequest.decode(data).map_vmid == 0x1234


def test_notify_vmid_list_is_read_as_get_vmid_list() -> None:
    base = struct.pack("<IB3xI", 1, 1, 0)
    with pytest.raises(mp.RequestError) as info:
        mp.NotifyRequest.decode(base).vmids()
    assert info.value.error == E["MSG_INVALID"]
    with pytest.raises(mp.RequestError) as info:
        mp.NotifyRequest.decode(base + struct.pack("<HH", 0, 0)).vmids()
    assert info.value.error == E["ARGUMENT_INVALID"]
    with pytest.raises(mp.RequestError) as info:
        mp.NotifyRequest.decode(base + struct.pack("<HH", 2, 0) + bytes(4)).vmids()
    assert info.value.error == E["MSG_INVALID"]
    tail = struct.pack("<HH", 1, 0) + struct.pack("<HH", VM, 0) + b"ignored"
    assert mp.NotifyRequest.decode(base + tail).vmids() == [VM]


# -- round trips and hostile bytes ----------------------------------------------------------
u8, u16, u32, u64 = (st.integers(0, (1 << n) - 1) for n in (8, 16, 32, 64))
acls = st.lists(st.builds(mp.AclEntry, u16, u8), max_size=8).map(tuple)
sgls = st.lists(st.builds(mp.SglEntry, u64, u64), max_size=8).map(tuple)
attrs = st.lists(st.builds(mp.AttrEntry, u16, u16), max_size=8).map(tuple)


@given(st.builds(mp.CreateRequest, u8, u8, u32, acls, sgls, attrs))
def test_create_round_trips(req: mp.CreateRequest) -> None:
    assert mp.CreateRequest.decode(req.encode()) == req


@given(st.builds(mp.AcceptRequest, u32, u8, u8, u8, u32, acls, sgls, u16, attrs))
def test_accept_round_trips(req: mp.AcceptRequest) -> None:
    assert mp.AcceptRequest.decode(req.encode()) == req


@given(st.builds(mp.AppendRequest, u32, u8, sgls))
def test_append_round_trips(req: mp.AppendRequest) -> None:
    assert mp.AppendRequest.decode(req.encode()) == req


@given(st.builds(mp.HandleRequest, u32, u8))
def test_release_reclaim_round_trip(req: mp.HandleRequest) -> None:
    assert mp.HandleRequest.decode(req.encode()) == req


@given(u32, u8, u32, st.lists(u16, min_size=1, max_size=16).map(tuple))
def test_notify_round_trips(handle: int, flags: int, tag: int, vmids: tuple[int, ...]) -> None:
    req = mp.NotifyRequest.with_vmids(handle, flags, tag, vmids)
    back = mp.NotifyRequest.decode(req.encode())
    assert back == req and tuple(back.vmids()) == vmids


@given(st.builds(mp.SharedNotification, u32, u8, u8, u8, u16, u32, u32, acls,
                 st.lists(u64, max_size=8).map(tuple), attrs))  # fmt: skip
def test_shared_notification_round_trips(note: mp.SharedNotification) -> None:
    assert mp.SharedNotification.decode(note.encode()) == note


@given(st.builds(mp.OwnerNotification, u32, u16, u32), st.builds(mp.RecallNotification, u32, u32),
       st.builds(mp.AcceptReply, sgls, u8), u32)  # fmt: skip
def test_small_replies_and_notifications_round_trip(
    owner: mp.OwnerNotification, recall: mp.RecallNotification, reply: mp.AcceptReply, handle: int
) -> None:
    assert mp.OwnerNotification.decode(owner.encode()) == owner
    assert mp.RecallNotification.decode(recall.encode()) == recall
    assert mp.AcceptReply.decode(reply.encode()) == reply
    assert mp.decode_handle(mp.encode_handle(handle)) == handle


@given(st.binary(max_size=600))
def test_hostile_bytes_give_an_rm_error_and_nothing_larger_than_they_hold(data: bytes) -> None:
    for cls in (mp.CreateRequest, mp.AcceptRequest, mp.AppendRequest, mp.HandleRequest,
                mp.NotifyRequest):  # fmt: skip
        try:
            req = cls.decode(data)
        except mp.RequestError as e:
            assert e.error in (E["MSG_INVALID"], E["NORESOURCE"])
            continue
        for name in ("acl", "sgl", "attrs"):
            entries = getattr(req, name, ())
            assert len(entries) <= min(mp.MAX_LIST_ENTRIES, len(data) // 4)
    decoders: list[Any] = [
        mp.SharedNotification.decode,
        mp.OwnerNotification.decode,
        mp.RecallNotification.decode,
        mp.AcceptReply.decode,
        mp.decode_handle,
    ]
    for decode in decoders:
        with contextlib.suppress(ValueError):  # ValueError is the one way they refuse
            decode(data)


def test_a_huge_count_with_no_bytes_is_refused_without_allocating() -> None:
    # 512 entries counted, none sent: MSG_INVALID, and no list of 512 is made
    data = bytes(8) + struct.pack("<HH", 512, 0) + bytes(8)
    with pytest.raises(mp.RequestError) as info:
        mp.CreateRequest.decode(data)
    assert info.value.error == E["MSG_INVALID"]


# -- the measured life of a parcel ---------------------------------------------------------
def test_the_measured_share_answers_handles_1_2_3() -> None:
    """The QEMU build's first MEM_SHARE answered handle 1; memparcel.c's counter
    starts at 0 and the public source makes no parcel before the first request:
    the measured numbering is kept."""
    hyp, parcels, h = setup()
    assert h[mp.MEM_SHARE](HLOS, MEASURED_SHARE) == (0, bytes.fromhex("01000000"), [])
    for n, at in ((2, REGION + MiB2), (3, REGION + 2 * MiB2)):
        assert h[mp.MEM_SHARE](HLOS, share(at)) == (0, struct.pack("<I", n), [])
    p = parcels.get(1)
    assert p is not None
    assert (p.handle, p.owner, p.trans_type, p.label) == (1, HLOS, "share", 0)
    assert p.acl == [(VM, 7), (HLOS, 7)] and p.sgl == [(REGION, MiB2)] and p.accepted == {}
    # a share keeps the lender's mapping: nothing was unmapped
    assert hyp.translate(HLOS, REGION, MiB2) == REGION
    assert not [c for c in hyp.calls if c[0] == "unmap"]


def test_reclaim_of_a_handle_never_made_is_error_7() -> None:
    # the kernel's "RM rejected message 51000015. Error: 7"
    _, _, h = setup()
    assert h[mp.MEM_RECLAIM](HLOS, MEASURED_RECLAIM_1) == (7, b"", [])
    assert E["HANDLE_INVALID"] == 7


def test_the_measured_launch_share_accept_reset_reclaim() -> None:
    """MEM_SHARE, the VM given the parcel at its base, the reset's MEM_RELEASED
    (u32 handle, u16 vmid, u16 0, u32 0) to the owner, then MEM_RECLAIM 0."""
    hyp, parcels, h = setup()
    handle = handle_of(h[mp.MEM_SHARE](HLOS, MEASURED_SHARE))
    assert parcels.accept_for(handle, VM, 0x80000000) == 0
    assert hyp.translate(VM, 0x80000000, MiB2) == REGION
    assert hyp.rights(VM, 0x80000000) == 7
    p = parcels.get(handle)
    assert p is not None and p.accepted == {VM: 0x80000000}
    # refused while the VM has it
    assert h[mp.MEM_RECLAIM](HLOS, MEASURED_RECLAIM_1) == (E["MEM_INUSE"], b"", [])
    notes = parcels.release_all_notifications(VM)
    assert notes == [(HLOS, 0x51100012, bytes.fromhex("010000008000000000000000"))]
    assert hyp.translate(VM, 0x80000000, 0x1000) is None
    assert h[mp.MEM_RECLAIM](HLOS, MEASURED_RECLAIM_1) == (0, b"", [])
    assert parcels.get(handle) is None
    # the VM was given it to write: the RM zeroes it before the owner has it back
    assert hyp.read_phys(REGION, MiB2) == bytes(MiB2)
    assert hyp.translate(HLOS, REGION, MiB2) == REGION


def test_the_measured_lend_answers_as_share_and_leaves_the_lenders_stage_2() -> None:
    hyp, parcels, h = setup()
    assert h[mp.MEM_LEND](HLOS, lend()) == (0, struct.pack("<I", 1), [])
    assert hyp.translate(HLOS, REGION, 0x1000) is None  # the primary's page is gone
    assert hyp.translate(HLOS, REGION - 0x1000, 0x1000) == REGION - 0x1000  # its neighbours stay
    assert parcels.accept_for(1, VM, 0x80000000) == 0
    assert parcels.release_all(VM) == [1]
    assert hyp.translate(HLOS, REGION, 0x1000) is None  # released is not reclaimed
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(1).encode())[0] == 0
    assert hyp.translate(HLOS, REGION, MiB2) == REGION
    assert hyp.rights(HLOS, REGION) == 7


def test_reset_releases_the_last_accepted_first() -> None:
    _, parcels, h = setup()
    a = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION)))
    b = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + MiB2)))
    assert parcels.accept_for(a, VM, 0x80000000) == 0
    assert parcels.accept_for(b, VM, 0x80200000) == 0
    assert parcels.release_all(VM) == [b, a]
    assert parcels.release_all(VM) == []


def test_a_share_with_fewer_rights_for_the_owner_maps_it_so_until_reclaim() -> None:
    hyp, _, h = setup()
    assert h[mp.MEM_SHARE](HLOS, create([(VM, 7), (HLOS, 4)], [(REGION, MiB2)]))[0] == 0
    assert hyp.rights(HLOS, REGION) == 4
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(1).encode())[0] == 0
    assert hyp.rights(HLOS, REGION) == 7


# -- MEM_SHARE, MEM_LEND, MEM_DONATE: every error in its order ------------------------------
@pytest.mark.parametrize(
    ("msg", "payload", "error"),
    [
        (mp.MEM_SHARE, MEASURED_SHARE[:19], "MSG_INVALID"),
        (mp.MEM_SHARE, MEASURED_SHARE + b"\x00", "MSG_INVALID"),
        (mp.MEM_SHARE, create([], [(REGION, MiB2)]), "ARGUMENT_INVALID"),
        (mp.MEM_SHARE, create([(VM, 7), (HLOS, 7)], []), "ARGUMENT_INVALID"),
        (mp.MEM_DONATE, create([(VM, 7), (0x81, 7)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),
        # two donees and the wrong rights: the count is checked first
        (mp.MEM_DONATE, create([(VM, 4), (0x81, 4)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),
        (mp.MEM_LEND, lend(mem_type=1, flags=mp.CREATE_FLAG_SANITIZE), "ARGUMENT_INVALID"),
        (
            mp.MEM_SHARE,
            create([(VM, 7), (VM, 7), (HLOS, 7)], [(REGION, MiB2)]),
            "ARGUMENT_INVALID",
        ),  # fmt: skip
        (mp.MEM_LEND, create([(0x40, 7)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),  # no such VM
        (mp.MEM_LEND, create([(VM, 2)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),  # W alone
        (mp.MEM_LEND, create([(VM, 0)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),
        (mp.MEM_LEND, create([(VM, 5)], [(REGION, MiB2)], mem_type=1), "ARGUMENT_INVALID"),
        (mp.MEM_DONATE, create([(VM, 6)], [(REGION, MiB2)]), "DENIED"),
        (mp.MEM_SHARE, create([(VM, 7)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),  # no owner
        (mp.MEM_LEND, create([(VM, 7), (HLOS, 7)], [(REGION, MiB2)]), "ARGUMENT_INVALID"),
        (mp.MEM_LEND, lend(attrs=[(2, VM), (3, VM)]), "ARGUMENT_INVALID"),  # one VM twice
        (mp.MEM_LEND, lend(attrs=[(4, VM)]), "ARGUMENT_INVALID"),  # no such attribute
        (mp.MEM_LEND, lend(attrs=[(1, VM)]), "ARGUMENT_INVALID"),  # device, normal memory
        (mp.MEM_DONATE, lend(attrs=[(3, VM)]), "ARGUMENT_INVALID"),  # donations: default only
        (mp.MEM_LEND, lend(attrs=[(2, 0x81)]), "VMID_INVALID"),  # a VM not in the ACL
        (mp.MEM_LEND, lend(REGION + 1), "ARGUMENT_INVALID"),
        (mp.MEM_LEND, lend(size=0x1001), "ARGUMENT_INVALID"),
        (mp.MEM_LEND, lend(1 << 44), "ARGUMENT_INVALID"),  # past ADDR_LIMIT
        (mp.MEM_LEND, lend(size=0), "MEM_INVALID"),
        (mp.MEM_LEND, lend(0x10000000), "MEM_INVALID"),  # not the lender's memory
        (mp.MEM_LEND, lend(RAM_BASE + (8 << 20) - 0x1000, 0x2000), "MEM_INVALID"),  # half its
        (mp.MEM_LEND, create([(VM, 6)], [(REGION, MiB2)], mem_type=1), "MEM_INVALID"),  # no devices
        (
            mp.MEM_LEND,
            create([(VM, 7)], [(REGION, MiB2), (REGION + 0x1000, 0x1000)]),
            "MEM_INVALID",
        ),  # the same memory twice  # fmt: skip
    ],
)
def test_create_errors(msg: int, payload: bytes, error: str) -> None:
    hyp, parcels, h = setup()
    before = [list(v) for v in hyp.maps.values()]
    assert h[msg](HLOS, payload) == (E[error], b"", [])
    assert [list(v) for v in hyp.maps.values()] == before
    assert parcels.get(1) is None and parcels.get(0) is None


def test_an_acl_may_name_only_vms_the_rm_has() -> None:
    _, parcels, h = setup()
    parcels.vm_exists = lambda vmid: vmid == HLOS
    assert h[mp.MEM_LEND](HLOS, lend())[0] == E["ARGUMENT_INVALID"]
    parcels.vm_exists = lambda vmid: vmid in (HLOS, VM)
    assert h[mp.MEM_LEND](HLOS, lend())[0] == 0
    assert h[mp.MEM_LEND](HLOS, create([(0xFF, 7)], [(REGION + MiB2, MiB2)]))[0] == 0  # the RM


def test_memory_already_in_a_parcel_cannot_be_given_again() -> None:
    _, _, h = setup()
    assert h[mp.MEM_SHARE](HLOS, share())[0] == 0
    assert h[mp.MEM_SHARE](HLOS, share(REGION + 0x1000, 0x1000))[0] == E["MEM_INVALID"]
    assert h[mp.MEM_LEND](HLOS, lend(REGION - 0x1000, 0x2000))[0] == E["MEM_INVALID"]


def test_a_refused_create_past_the_numbering_uses_a_handle() -> None:
    """memparcel_construct numbers the parcel before it checks the ACL: a
    request refused there uses a number; one refused earlier does not."""
    _, _, h = setup()
    assert h[mp.MEM_LEND](HLOS, create([], [(REGION, MiB2)]))[0] == E["ARGUMENT_INVALID"]
    assert handle_of(h[mp.MEM_LEND](HLOS, lend())) == 1
    assert h[mp.MEM_LEND](HLOS, create([(VM, 2)], [(REGION + MiB2, MiB2)]))[0] != 0
    assert h[mp.MEM_LEND](HLOS, lend(0x10000000))[0] == E["MEM_INVALID"]
    assert handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + MiB2))) == 4


def test_handles_never_name_two_parcels_nor_the_invalid_handle() -> None:
    # allocate_handle: past 0xFFFFFFFF (MEMPARCEL_INVALID_HANDLE) it wraps, skipping
    # the numbers parcels still hold
    _, parcels, h = setup()
    assert handle_of(h[mp.MEM_LEND](HLOS, lend(REGION, 0x1000))) == 1
    parcels._next_handle = 0xFFFFFFFE
    assert handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + 0x1000, 0x1000))) == 0xFFFFFFFE
    assert handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + 0x2000, 0x1000))) == 0
    assert handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + 0x3000, 0x1000))) == 2


def test_checks_come_in_the_rms_order() -> None:
    _, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend()))
    # a malformed request is refused before its handle is looked up
    assert h[mp.MEM_ACCEPT](VM, accept(99)[:23])[0] == E["MSG_INVALID"]
    assert h[mp.MEM_RELEASE](VM, bytes(7))[0] == E["MSG_INVALID"]
    # MEM_ACCEPT: the type before the flags' validations, those before the VM
    assert h[mp.MEM_ACCEPT](0x81, accept(handle, 0x81, trans=2))[0] == E["ARGUMENT_INVALID"]
    assert h[mp.MEM_ACCEPT](0x81, accept(handle, 0x81))[0] == E["VALIDATE_FAILED"]
    # MEM_RELEASE: the ACL before the owner, the owner before whether it was accepted
    assert h[mp.MEM_RELEASE](HLOS, mp.HandleRequest(handle).encode())[0] == E["HANDLE_INVALID"]
    assert parcels.accept_for(handle, VM, 0x80000000) == 0
    # MEM_NOTIFY: the tag before the flags
    assert h[mp.MEM_NOTIFY](HLOS, notify(handle, 1, (VM,), tag=5))[0] == 0
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 1, (VM,), tag=6))[0] == E["ARGUMENT_INVALID"]
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 1, (VM,), tag=5))[0] == E["DENIED"]


def test_a_vm_holds_at_most_64_parcels() -> None:
    hyp, parcels, h = setup()
    for i in range(MAX_PARCELS_PER_VM):
        assert h[mp.MEM_LEND](HLOS, lend(RAM_BASE + i * 0x1000, 0x1000))[0] == 0
    at = RAM_BASE + 64 * 0x1000
    assert h[mp.MEM_LEND](HLOS, lend(at, 0x1000)) == (E["DENIED"], b"", [])
    # the limit is checked before the ACL
    assert h[mp.MEM_LEND](HLOS, create([(VM, 2)], [(at, 0x1000)]))[0] == E["DENIED"]
    assert hyp.translate(HLOS, at, 0x1000) == at
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(1).encode())[0] == 0
    # refused by the limit, before the RM numbers the parcel: no number used
    assert handle_of(h[mp.MEM_LEND](HLOS, lend(at, 0x1000))) == 65
    assert parcels.get(65) is not None


def test_a_parcel_holds_at_most_its_region_lists_regions(monkeypatch: pytest.MonkeyPatch) -> None:
    # 2**20 in the RM (mem_region.c: 2**14 tables of 64); made small here to reach it
    assert memparcel_store.MAX_REGIONS_PER_PARCEL == 1 << 20
    monkeypatch.setattr(memparcel_store, "MAX_REGIONS_PER_PARCEL", 2)
    hyp, parcels, h = setup()
    three = [(REGION, 0x1000), (REGION + 0x2000, 0x1000), (REGION + 0x4000, 0x1000)]
    assert h[mp.MEM_LEND](HLOS, create([(VM, 7)], three)) == (E["DENIED"], b"", [])
    assert hyp.translate(HLOS, REGION, MiB2) == REGION  # nothing taken
    handle = handle_of(h[mp.MEM_LEND](HLOS, create([(VM, 7)], three[:1], flags=2)))
    more = mp.AppendRequest(handle, 0, (mp.SglEntry(*three[1]),)).encode()
    assert h[mp.MEM_APPEND](HLOS, more)[0] == 0
    last = mp.AppendRequest(handle, 1, (mp.SglEntry(*three[2]),)).encode()
    assert h[mp.MEM_APPEND](HLOS, last)[0] == E["DENIED"]
    assert hyp.translate(HLOS, REGION + 0x4000, 0x1000) == REGION + 0x4000


def test_list_counts_above_512_are_noresource() -> None:
    _, _, h = setup()
    data = bytes(8) + struct.pack("<HH", 513, 0) + bytes(8)
    assert h[mp.MEM_SHARE](HLOS, data)[0] == E["NORESOURCE"]


def test_donate_gives_the_memory_away_for_good() -> None:
    hyp, parcels, h = setup()
    handle = handle_of(h[mp.MEM_DONATE](HLOS, lend()))
    assert hyp.translate(HLOS, REGION, 0x1000) is None
    req = mp.AcceptRequest(handle, 0, mp.TRANS_DONATE, mp.ACCEPT_FLAG_DONE, 0,
                           sgl=(mp.SglEntry(0x80000000, MiB2),))  # fmt: skip
    assert h[mp.MEM_ACCEPT](VM, req.encode()) == (0, b"", [])
    assert hyp.translate(VM, 0x80000000, MiB2) == REGION
    assert parcels.get(handle) is None  # nothing left to reclaim
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(handle).encode())[0] == E["HANDLE_INVALID"]
    assert hyp.translate(HLOS, REGION, 0x1000) is None


# -- MEM_APPEND -------------------------------------------------------------------------
def test_a_parcel_built_in_fragments() -> None:
    hyp, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION, 0x1000, flags=mp.CREATE_FLAG_APPEND)))
    p = parcels.get(handle)
    assert p is not None and p.state == "init"
    more = mp.AppendRequest(handle, 0, (mp.SglEntry(REGION + 0x1000, 0x1000),)).encode()
    assert h[mp.MEM_APPEND](VM, more) == (E["DENIED"], b"", [])  # only the owner
    assert h[mp.MEM_APPEND](HLOS, more) == (0, b"", [])
    last = mp.AppendRequest(handle, mp.APPEND_FLAG_DONE, (mp.SglEntry(REGION + 0x3000, 0x1000),))
    assert h[mp.MEM_APPEND](HLOS, last.encode()) == (0, b"", [])
    assert p.state == "sharing"
    assert p.sgl == [(REGION, 0x1000), (REGION + 0x1000, 0x1000), (REGION + 0x3000, 0x1000)]
    assert h[mp.MEM_APPEND](HLOS, last.encode())[0] == E["DENIED"]  # finished
    for at in (REGION, REGION + 0x1000, REGION + 0x3000):
        assert hyp.translate(HLOS, at, 0x1000) is None
    assert hyp.translate(HLOS, REGION + 0x2000, 0x1000) == REGION + 0x2000


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (bytes(11), "MSG_INVALID"),
        # no SGL is refused before the handle is looked up
        (mp.AppendRequest(99, 0, ()).encode(), "ARGUMENT_INVALID"),
        (mp.AppendRequest(99, 0, (mp.SglEntry(REGION, 0x1000),)).encode(), "HANDLE_INVALID"),
        (mp.AppendRequest(1, 0, (mp.SglEntry(REGION + 1, 0x1000),)).encode(), "DENIED"),
    ],
)
def test_append_errors(payload: bytes, error: str) -> None:
    _, _, h = setup()
    assert h[mp.MEM_LEND](HLOS, lend())[0] == 0  # handle 1, finished: appending is DENIED
    assert h[mp.MEM_APPEND](HLOS, payload) == (E[error], b"", [])


def test_a_refused_append_takes_nothing() -> None:
    hyp, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION, 0x1000, flags=mp.CREATE_FLAG_APPEND)))
    bad = mp.AppendRequest(handle, 0, (mp.SglEntry(REGION + 0x1000, 0x1000),
                                       mp.SglEntry(0x10000000, 0x1000)))  # fmt: skip
    assert h[mp.MEM_APPEND](HLOS, bad.encode())[0] == E["MEM_INVALID"]
    assert hyp.translate(HLOS, REGION + 0x1000, 0x1000) == REGION + 0x1000
    p = parcels.get(handle)
    assert p is not None and p.sgl == [(REGION, 0x1000)]


# -- MEM_ACCEPT and MEM_RELEASE -------------------------------------------------------------
def accept(handle: int, flags: int = mp.ACCEPT_FLAG_DONE, trans: int = mp.TRANS_LEND,
           sgl: tuple[tuple[int, int], ...] = (), **kw: Any) -> bytes:  # fmt: skip
    return mp.AcceptRequest(handle, kw.pop("mem_type", 0), trans, flags, kw.pop("label", 0),
                            sgl=tuple(mp.SglEntry(*s) for s in sgl), **kw).encode()  # fmt: skip


def test_accept_at_the_ipa_asked_and_release() -> None:
    hyp, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, create([(VM, 5)], [(REGION, MiB2)])))
    assert h[mp.MEM_ACCEPT](VM, accept(handle, sgl=((0x90000000, MiB2),))) == (0, b"", [])
    assert hyp.translate(VM, 0x90000000, MiB2) == REGION
    assert hyp.rights(VM, 0x90000000) == 5  # the rights its ACL entry gives
    p = parcels.get(handle)
    assert p is not None and p.accepted == {VM: 0x90000000} and p.state == "shared"
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(handle).encode()) == (0, b"", [])
    assert hyp.translate(VM, 0x90000000, 0x1000) is None
    assert p.accepted == {} and p.state == "sharing"
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(handle).encode())[0] == E["MEM_RELEASED"]


def test_accept_without_an_sgl_answers_where_the_rm_put_it() -> None:
    hyp, _, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend()))
    err, reply, _ = h[mp.MEM_ACCEPT](VM, accept(handle, mp.ACCEPT_FLAG_DONE | 0x10))
    assert err == 0
    got = mp.AcceptReply.decode(reply)
    assert got.flags == 0 and len(got.sgl) == 1 and got.sgl[0].size == MiB2
    ipa = got.sgl[0].ipa
    assert ipa % MiB2 == 0 and ipa >= 0x40000000  # 2 MiB aligned, past the device range
    assert hyp.translate(VM, ipa, MiB2) == REGION


def test_the_primary_vm_accepts_at_the_physical_address() -> None:
    hyp, _, h = setup()
    hyp.maps[VM] = [(0x80000000, MiB2, REGION, 7)]  # a VM's memory, lent to the primary
    hyp.maps[HLOS] = []
    handle = handle_of(h[mp.MEM_LEND](VM, create([(HLOS, 7)], [(0x80000000, MiB2)])))
    # contiguous placement is the allocator's, which the primary VM has not
    contiguous = mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_MAP_CONTIGUOUS
    assert h[mp.MEM_ACCEPT](HLOS, accept(handle, contiguous))[0] == E["NORESOURCE"]
    assert h[mp.MEM_ACCEPT](HLOS, accept(handle, sgl=((0x90000000, MiB2),)))[0] == E["NORESOURCE"]
    err, reply, _ = h[mp.MEM_ACCEPT](HLOS, accept(handle))
    assert err == 0 and mp.AcceptReply.decode(reply).sgl == (mp.SglEntry(REGION, MiB2),)
    assert hyp.translate(HLOS, REGION, MiB2) == REGION


@pytest.mark.parametrize(
    ("caller", "payload", "error"),
    [
        (VM, bytes(23), "MSG_INVALID"),
        (VM, accept(9), "HANDLE_INVALID"),
        (VM, accept(1, trans=mp.TRANS_SHARE), "ARGUMENT_INVALID"),
        (VM, accept(1, mem_type=1), "ARGUMENT_INVALID"),
        (VM, accept(1, mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_VALIDATE_SANITIZED), "VALIDATE_FAILED"),
        (
            VM,
            accept(1, mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_VALIDATE_LABEL, label=8),
            "VALIDATE_FAILED",
        ),  # fmt: skip
        (VM, accept(1, mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_VALIDATE_ACL_ATTR), "VALIDATE_FAILED"),
        (
            VM,
            accept(
                1, mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_VALIDATE_ACL_ATTR, acl=(mp.AclEntry(VM, 6),)
            ),
            "VALIDATE_FAILED",
        ),  # fmt: skip
        (VM, accept(1, mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_MAP_OTHER), "DENIED"),
        # the label is checked before the map VMID
        (
            VM,
            accept(1, mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_VALIDATE_LABEL, label=8, map_vmid=3),
            "VALIDATE_FAILED",
        ),  # fmt: skip
        (VM, accept(1, sgl=((0x80000000, MiB2),), map_vmid=VM), "ARGUMENT_INVALID"),
        (0x81, accept(1), "VMID_INVALID"),  # not in the ACL
        (HLOS, accept(1), "VMID_INVALID"),  # the lender is not in a lend's ACL
        (VM, accept(1, sgl=((0x80000000, 0x1000),)), "ARGUMENT_INVALID"),  # not its size
        (VM, accept(1, sgl=((0x80000001, MiB2),)), "ARGUMENT_INVALID"),
        (VM, accept(1, sgl=((0x80000000, MiB2), (0x90000000, MiB2))), "ARGUMENT_INVALID"),
        (VM, accept(1, sgl=((0x20000000, MiB2),)), "NORESOURCE"),  # the device range
        (VM, accept(1, sgl=((1 << 36, MiB2),)), "NORESOURCE"),  # past the VM's 36 bits
        (
            VM,
            accept(
                1,
                mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_MAP_CONTIGUOUS,
                mem_type=0,
                sgl=((0x80000000, MiB2 + 0x1000),),
            ),
            "ARGUMENT_INVALID",
        ),  # fmt: skip
    ],
)
def test_accept_errors(caller: int, payload: bytes, error: str) -> None:
    hyp, parcels, h = setup()
    assert h[mp.MEM_LEND](HLOS, create([(VM, 7)], [(REGION, MiB2)], label=7))[0] == 0
    calls = len(hyp.calls)
    assert h[mp.MEM_ACCEPT](caller, payload) == (E[error], b"", [])
    assert len(hyp.calls) == calls  # nothing mapped
    p = parcels.get(1)
    assert p is not None and p.accepted == {} and p.state == "sharing"


def test_accepting_twice_or_ones_own_share_is_denied() -> None:
    _, _, h = setup()
    handle = handle_of(h[mp.MEM_SHARE](HLOS, share()))
    assert h[mp.MEM_ACCEPT](HLOS, accept(handle, trans=mp.TRANS_SHARE))[0] == E["DENIED"]
    assert h[mp.MEM_ACCEPT](VM, accept(handle, trans=mp.TRANS_SHARE))[0] == 0
    assert h[mp.MEM_ACCEPT](VM, accept(handle, trans=mp.TRANS_SHARE))[0] == E["DENIED"]


def test_an_ipa_taken_is_noresource() -> None:
    _, _, h = setup()
    a = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION)))
    b = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + MiB2)))
    assert h[mp.MEM_ACCEPT](VM, accept(a, sgl=((0x80000000, MiB2),)))[0] == 0
    assert h[mp.MEM_ACCEPT](VM, accept(b, sgl=((0x80100000, MiB2),)))[0] == E["NORESOURCE"]
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(a).encode())[0] == 0
    assert h[mp.MEM_ACCEPT](VM, accept(b, sgl=((0x80100000, MiB2),)))[0] == 0


def test_accept_without_done_holds_it_unmapped_and_reclaim_waits() -> None:
    hyp, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend()))
    assert h[mp.MEM_ACCEPT](VM, accept(handle, 0, sgl=((0x80000000, MiB2),)))[0] == 0
    assert hyp.translate(VM, 0x80000000, 0x1000) is None
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(handle).encode())[0] == E["MEM_INUSE"]
    # the IPAs are all given: DONE maps them
    assert h[mp.MEM_ACCEPT](VM, accept(handle))[0] == 0
    assert hyp.translate(VM, 0x80000000, MiB2) == REGION
    p = parcels.get(handle)
    assert p is not None and p.accepted == {VM: 0x80000000}


def test_an_accept_in_steps_keeps_the_placement_it_began_with() -> None:
    hyp, _, h = setup()
    two = [(REGION, 0x1000), (REGION + 0x2000, 0x1000)]
    handle = handle_of(h[mp.MEM_LEND](HLOS, create([(VM, 7)], two)))
    err, reply, _ = h[mp.MEM_ACCEPT](VM, accept(handle, mp.ACCEPT_FLAG_MAP_CONTIGUOUS))
    assert err == 0
    (placed,) = mp.AcceptReply.decode(reply).sgl
    assert placed.size == 0x2000
    # region by region now: the RM's source would write past its list; refused
    assert h[mp.MEM_ACCEPT](VM, accept(handle))[0] == E["ARGUMENT_INVALID"]
    contiguous = mp.ACCEPT_FLAG_DONE | mp.ACCEPT_FLAG_MAP_CONTIGUOUS
    assert h[mp.MEM_ACCEPT](VM, accept(handle, contiguous))[0] == 0
    assert hyp.translate(VM, placed.ipa, 0x1000) == REGION
    assert hyp.translate(VM, placed.ipa + 0x1000, 0x1000) == REGION + 0x2000


@pytest.mark.parametrize(
    ("caller", "payload", "error"),
    [
        (VM, bytes(7), "MSG_INVALID"),
        (VM, mp.HandleRequest(9).encode(), "HANDLE_INVALID"),
        (0x81, mp.HandleRequest(1).encode(), "HANDLE_INVALID"),  # not in its ACL
        (HLOS, mp.HandleRequest(1).encode(), "DENIED"),  # the owner releases nothing
        (VM, mp.HandleRequest(1).encode(), "MEM_RELEASED"),  # never accepted
    ],
)
def test_release_errors(caller: int, payload: bytes, error: str) -> None:
    _, _, h = setup()
    assert h[mp.MEM_SHARE](HLOS, share())[0] == 0
    assert h[mp.MEM_RELEASE](caller, payload) == (E[error], b"", [])


def test_release_with_sanitize_needs_write_and_zeroes_at_reclaim() -> None:
    hyp, _, h = setup()
    a = handle_of(h[mp.MEM_LEND](HLOS, create([(VM, 5)], [(REGION, 0x1000)])))
    assert h[mp.MEM_ACCEPT](VM, accept(a, sgl=((0x80000000, 0x1000),)))[0] == 0
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(a, 1).encode())[0] == E["ARGUMENT_INVALID"]
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(a).encode())[0] == 0
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(a).encode())[0] == 0
    assert hyp.read_phys(REGION, 4) == b"\xa5" * 4  # not sanitized: left as it was
    b = handle_of(h[mp.MEM_LEND](HLOS, create([(VM, 7)], [(REGION, 0x1000)])))
    assert h[mp.MEM_ACCEPT](VM, accept(b, sgl=((0x80000000, 0x1000),)))[0] == 0
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(b, 1).encode())[0] == 0
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(b).encode())[0] == 0
    assert hyp.read_phys(REGION, 0x1000) == bytes(0x1000)


# -- MEM_RECLAIM ----------------------------------------------------------------------------
def test_reclaim_errors_in_order() -> None:
    _, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend()))
    assert h[mp.MEM_RECLAIM](HLOS, bytes(7))[0] == E["MSG_INVALID"]
    assert h[mp.MEM_RECLAIM](VM, mp.HandleRequest(handle).encode())[0] == E["DENIED"]
    assert parcels.accept_for(handle, VM, 0x80000000) == 0
    # owner checked before use
    assert h[mp.MEM_RECLAIM](VM, mp.HandleRequest(handle).encode())[0] == E["DENIED"]
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(handle).encode())[0] == E["MEM_INUSE"]
    io = handle_of(h[mp.MEM_LEND](HLOS, lend(REGION + MiB2)))
    p = parcels.get(io)
    assert p is not None
    p.mem_type = mp.MEM_TYPE_IO  # an I/O parcel: the model has none to lend, so set one up
    assert h[mp.MEM_RECLAIM](HLOS, mp.HandleRequest(io, 1).encode())[0] == E["ARGUMENT_INVALID"]


# -- MEM_NOTIFY and the notifications --------------------------------------------------------
def notify(handle: int, flags: int, vmids: tuple[int, ...] | None = None, tag: int = 0) -> bytes:
    if vmids is None:
        return mp.NotifyRequest(handle, flags, tag).encode()
    return mp.NotifyRequest.with_vmids(handle, flags, tag, vmids).encode()


def test_notify_shared_tells_the_vms_named() -> None:
    _, _, h = setup()
    handle = handle_of(h[mp.MEM_SHARE](HLOS, share(label=0x1234)))
    err, reply, notes = h[mp.MEM_NOTIFY](HLOS, notify(handle, 1, (VM,), tag=0x55))
    assert (err, reply) == (0, b"")
    body = (struct.pack("<IBBBxH2xII", handle, 0, 2, 0, HLOS, 0x1234, 0x55)
            + struct.pack("<HH", 2, 0) + struct.pack("<HBx", VM, 7) + struct.pack("<HBx", HLOS, 7)
            + struct.pack("<HH", 1, 0) + struct.pack("<Q", MiB2)
            + struct.pack("<HH", 0, 0))  # fmt: skip
    assert notes == [(VM, 0x51100011, body)]
    # the tag is now the parcel's: another one is refused
    assert h[mp.MEM_NOTIFY](HLOS, notify(handle, 1, (VM,), tag=0x56))[0] == E["ARGUMENT_INVALID"]


def test_notify_accepted_and_released_tell_the_owner() -> None:
    _, parcels, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend()))
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 4))[0] == E["MEM_RELEASED"]  # not accepted yet
    assert parcels.accept_for(handle, VM, 0x80000000) == 0
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 2))[0] == E["MEM_INUSE"]
    owner = mp.OwnerNotification(handle, VM).encode()
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 4)) == (0, b"", [(HLOS, 0x51100013, owner)])
    assert h[mp.MEM_RELEASE](VM, mp.HandleRequest(handle).encode())[0] == 0
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 2)) == (0, b"", [(HLOS, 0x51100012, owner)])


def test_notify_recall_asks_the_vms_named() -> None:
    _, _, h = setup()
    handle = handle_of(h[mp.MEM_LEND](HLOS, lend()))
    recall = mp.RecallNotification(handle, 0).encode()
    assert h[mp.MEM_NOTIFY](HLOS, notify(handle, 8, (VM,))) == (0, b"", [(VM, 0x51100014, recall)])
    assert h[mp.MEM_NOTIFY](VM, notify(handle, 8, (VM,)))[0] == E["DENIED"]


@pytest.mark.parametrize(
    ("caller", "payload", "error"),
    [
        (HLOS, bytes(11), "MSG_INVALID"),
        (HLOS, notify(9, 1, (VM,)), "HANDLE_INVALID"),
        (VM, notify(1, 1, (VM,)), "DENIED"),
        (HLOS, notify(1, 1), "MSG_INVALID"),
        (HLOS, notify(1, 1, ()), "ARGUMENT_INVALID"),
        (HLOS, notify(1, 1, (VM, HLOS)), "ARGUMENT_INVALID"),  # more VMs than the ACL has
        (HLOS, notify(1, 1, (0x81,)), "ARGUMENT_INVALID"),  # a VM not in the ACL
        (HLOS, notify(1, 3, (VM,)), "ARGUMENT_INVALID"),  # one flag at a time
        (HLOS, notify(1, 0), "ARGUMENT_INVALID"),
        (0x81, notify(1, 4), "HANDLE_INVALID"),  # not in the ACL
    ],
)
def test_notify_errors(caller: int, payload: bytes, error: str) -> None:
    _, _, h = setup()
    assert h[mp.MEM_LEND](HLOS, lend())[0] == 0
    assert h[mp.MEM_NOTIFY](caller, payload) == (E[error], b"", [])


def test_notify_shared_to_a_vm_that_does_not_exist() -> None:
    _, parcels, h = setup()
    assert h[mp.MEM_LEND](HLOS, lend())[0] == 0
    parcels.vm_exists = lambda vmid: vmid == HLOS
    assert h[mp.MEM_NOTIFY](HLOS, notify(1, 1, (VM,)))[0] == E["VMID_INVALID"]


def test_notify_shared_to_a_ready_vm_offers_it_instead() -> None:
    """A READY VM is offered the parcel by the RM, which takes none it was not
    configured for, and answers with what the owner would be told of it."""
    _, parcels, h = setup()
    assert h[mp.MEM_LEND](HLOS, lend())[0] == 0
    parcels.vm_ready = lambda vmid: vmid == VM
    assert h[mp.MEM_NOTIFY](HLOS, notify(1, 1, (VM,))) == (E["MEM_RELEASED"], b"", [])


# -- hostile clients ----------------------------------------------------------------------
MSGS = [mp.MEM_SHARE, mp.MEM_LEND, mp.MEM_DONATE, mp.MEM_APPEND, mp.MEM_ACCEPT, mp.MEM_RELEASE,
        mp.MEM_RECLAIM, mp.MEM_NOTIFY]  # fmt: skip
callers = st.sampled_from([HLOS, HLOS, HLOS, VM, VM, 0x81, 0xFF, 0])
addrs = st.sampled_from([REGION, REGION + 0x1000, RAM_BASE, 0x80000000, 0x10000000, 0x1001, 0])
sizes = st.sampled_from([0x1000, MiB2, 0, 0x1001, 1 << 44])
sgl_s = st.lists(st.builds(mp.SglEntry, addrs, sizes), max_size=3).map(tuple)
acl_s = st.lists(st.builds(mp.AclEntry, callers, st.sampled_from([7, 6, 5, 4, 2, 0])),
                 max_size=3).map(tuple)  # fmt: skip
pages = st.integers(0, 2047).map(lambda i: RAM_BASE + i * 0x1000)
likely_sgl = st.lists(st.builds(mp.SglEntry, pages, st.sampled_from([0x1000, 0x3000, MiB2])),
                      min_size=1, max_size=2).map(tuple)  # fmt: skip
# a message and an ACL it may take, from the primary VM
likely_kind = st.sampled_from([
    (mp.MEM_SHARE, ((VM, 7), (HLOS, 7))), (mp.MEM_SHARE, ((VM, 6), (HLOS, 4))),
    (mp.MEM_LEND, ((VM, 7),)), (mp.MEM_LEND, ((VM, 7), (0x81, 5))), (mp.MEM_LEND, ((0x81, 7),)),
    (mp.MEM_DONATE, ((VM, 7),)),
])  # fmt: skip
accept_flags = st.sampled_from([0x80, 0x80, 0x90, 0, 0xA0, 0x82, 0x84, 0x10])


@functools.cache
def requests(handle: int, trans: int | None) -> Any:
    """Requests naming `handle`, with the parcel's transaction type `trans`
    (None: it names no parcel). Built once per pair: hypothesis validates a
    new strategy on each draw, and that cost most of this battery's time."""
    small_handles = st.just(handle)
    trans_s = st.sampled_from([trans] * 3 + [0, 1, 2]) if trans is not None else st.integers(0, 2)
    return st.one_of(
    # requests the RM may well take, so that there is state to refuse things against
    st.builds(lambda kind, flags, sgl: (kind[0], mp.CreateRequest(
        0, flags, 0, tuple(mp.AclEntry(*a) for a in kind[1]), sgl).encode()),
        likely_kind, st.sampled_from([0, 0, 2, 1]), likely_sgl),
    st.builds(lambda r: (mp.MEM_ACCEPT, r.encode()),
              st.builds(mp.AcceptRequest, small_handles, st.just(0), trans_s,
                        accept_flags, st.just(0),
                        sgl=st.sampled_from([(), (), ((0x80000000, MiB2),), ((0x80000000, 0x1000),),
                                             ((0x90000000, 0x3000),)]).map(
                            lambda sgl: tuple(mp.SglEntry(*e) for e in sgl)))),
    st.builds(lambda r: (mp.MEM_APPEND, r.encode()),
              st.builds(mp.AppendRequest, small_handles, st.integers(0, 1), likely_sgl)),
    st.builds(lambda m, r: (m, r.encode()), st.sampled_from(MSGS[:3]),
              st.builds(mp.CreateRequest, st.integers(0, 2), st.integers(0, 3), u32, acl_s,
                        sgl_s)),  # fmt: skip
    st.builds(lambda r: (mp.MEM_APPEND, r.encode()),
              st.builds(mp.AppendRequest, small_handles, st.integers(0, 1), sgl_s)),
    st.builds(lambda r: (mp.MEM_ACCEPT, r.encode()),
              st.builds(mp.AcceptRequest, small_handles, st.integers(0, 1), st.integers(0, 2),
                        st.sampled_from([0, 0x80, 0x90, 0x82, 0xA0]), u8, acl_s, sgl_s)),
    st.builds(lambda m, r: (m, r.encode()), st.sampled_from([mp.MEM_RELEASE, mp.MEM_RECLAIM]),
              st.builds(mp.HandleRequest, small_handles, st.integers(0, 1))),
    st.builds(lambda r: (mp.MEM_NOTIFY, r.encode()),
              st.builds(mp.NotifyRequest.with_vmids, small_handles, st.sampled_from([1, 2, 4, 8]),
                        st.integers(0, 1), st.lists(callers, max_size=3).map(tuple))),
    st.tuples(st.sampled_from(MSGS), st.binary(max_size=80)),
    )  # fmt: skip


def _state(parcels: Parcels, hyp: RecordingHyp) -> Any:
    """What a refused request must leave as it was (the RM's handle counter and
    a failed accept's sanitize mark aside, as the RM's)."""
    store = {h: (p.owner, p.trans_type, list(p.sgl), dict(p.accepted), p.state, p.mem_info_tag,
                 {v: (i.ipas, i.alloc_count, i.shared, i.mapped) for v, i in p.vms.items()})
             for h, p in parcels._parcels.items()}  # fmt: skip
    return store, {v: sorted(m) for v, m in hyp.maps.items()}


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_hostile_sequences_never_raise_and_refusals_change_nothing(data: st.DataObject) -> None:
    hyp, parcels, h = setup()
    for _ in range(data.draw(st.integers(0, 30), label="steps")):
        # handles that name parcels, or nothing
        live = [*parcels._parcels] * 4 + [0, 0xFFFFFFFF, parcels._next_handle]
        handle = data.draw(st.sampled_from(live))
        p = parcels.get(handle)
        caller = data.draw(callers)
        msg, payload = data.draw(requests(handle, p.trans if p else None))
        before = _state(parcels, hyp)
        err, reply, notes = h[msg](caller, payload)
        assert err in rm.ERRORS
        if err != 0:
            assert reply == b"" and notes == []
            assert _state(parcels, hyp) == before
        owners = [p.owner for p in parcels._parcels.values()]
        assert all(owners.count(o) <= MAX_PARCELS_PER_VM for o in owners)
        # no two parcels hold the same memory, and lent memory is not the lender's
        spans = sorted((ph, ph + n) for p in parcels._parcels.values()
                       for ph, (_, n) in zip(p.phys, p.sgl, strict=True))  # fmt: skip
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
        for p in parcels._parcels.values():
            if p.trans_type != "share":
                for ipa, _ in p.sgl:
                    assert hyp.translate(p.owner, ipa, 0x1000) is None
            for vmid, ipa in p.accepted.items():
                assert hyp.translate(vmid, ipa, p.sgl[0][1]) == p.phys[0]
    # whatever happened, resets and reclaims give the primary VM back all it did
    # not donate
    for vmid in (VM, 0x81, 0xFF, 0):
        parcels.release_all(vmid)
    for handle, p in list(parcels._parcels.items()):
        assert h[mp.MEM_RECLAIM](p.owner, mp.HandleRequest(handle).encode())[0] == 0
    assert not parcels._parcels
    # each range is the primary's again (IPA == PA), or was donated: another VM's alone
    spans = sorted((phys, phys + n, v) for v, maps in hyp.maps.items() for _, n, phys, _ in maps)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert spans[0][0] == RAM_BASE and spans[-1][1] == RAM_BASE + (8 << 20)
    assert all(a[1] == b[0] for a, b in zip(spans, spans[1:], strict=False))
    assert all(ipa == phys for ipa, _, phys, _ in hyp.maps[HLOS])


# -- what tools show ------------------------------------------------------------------------
def test_replies_and_notifications_decode_for_tools() -> None:
    assert rm.decode_reply(mp.MEM_SHARE, bytes.fromhex("01000000")) == {"handle": 1}
    assert rm.decode_reply(mp.MEM_SHARE, b"\x01") is None
    assert rm.decode_reply(mp.MEM_RECLAIM, b"") is None
    reply = mp.AcceptReply((mp.SglEntry(0x80000000, MiB2),), 1).encode()
    assert rm.decode_reply(mp.MEM_ACCEPT, reply) == {
        "sgl": [{"ipa": 0x80000000, "size": MiB2}], "incomplete": True}  # fmt: skip
    released = bytes.fromhex("010000008000000000000000")  # the measured MEM_RELEASED
    assert mp.decode_notification(mp.NOTIFY_MEM_RELEASED, released) == {
        "handle": 1, "vmid": 0x80, "mem_info_tag": 0}  # fmt: skip
    assert mp.decode_notification(mp.NOTIFY_MEM_RELEASED, released[:11]) is None
    _, _, h = setup()
    handle = handle_of(h[mp.MEM_SHARE](HLOS, MEASURED_SHARE))
    ((_, msg, body),) = h[mp.MEM_NOTIFY](HLOS, notify(handle, 1, (VM,)))[2]
    shared = mp.decode_notification(msg, body)
    assert shared is not None
    assert (shared["handle"], shared["trans_type"], shared["owner"], shared["sizes"]) == (
        1, "share", HLOS, [MiB2])  # fmt: skip
    assert mp.decode_notification(mp.NOTIFY_MEM_RECALL, mp.RecallNotification(1, 2).encode()) == {
        "handle": 1, "mem_info_tag": 2}  # fmt: skip


TOOL_IDS = [mp.MEM_SHARE, mp.MEM_ACCEPT, mp.NOTIFY_MEM_SHARED, mp.NOTIFY_MEM_RELEASED,
            mp.NOTIFY_MEM_RECALL, mp.MEM_RELEASE]  # fmt: skip


@given(st.sampled_from(TOOL_IDS), st.binary(max_size=200))
def test_tool_decoders_never_raise(msg_id: int, data: bytes) -> None:
    rm.decode_reply(msg_id, data)
    mp.decode_notification(msg_id, data)
