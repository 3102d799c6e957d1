"""Message queues and the resource manager, as the QEMU build's pair answered
its primary VM (measured: docs/real-gunyah.md section 7, message queues and
the resource manager; docs/abi.md section 9): the RPC's facts against their sources
(quic/gunyah-resource-manager include/*.h), every measured request and reply
byte for byte, what is dropped, the queues' quirks (hyp/ipc/msgqueue/src/
msgqueue_common.c), and hostile clients."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest
from cli_helpers import assert_usage_error, gunyah, gunyah_json
from hypothesis import given
from hypothesis import strategies as st

from gunyah.abi import hvc, rm
from gunyah.conduit import FlatMemory
from gunyah.guest.rm_client import exchange
from gunyah.model import Hypervisor
from gunyah.rm import ResourceManager
from gunyah.vcpu import VCpu, load_elf

M64 = (1 << 64) - 1
SEND, RECEIVE = 0x601B, 0x601C
SEND_SMCCC, RECEIVE_SMCCC = 0xC600801B, 0xC600801C
EMPTY, FULL, INSUFFICIENT_RIGHTS = 60, 61, 53


# -- the RPC's facts ----------------------------------------------------------------
def test_rpc_constants_are_the_resource_managers() -> None:
    # include/rm-rpc.h
    assert (rm.MESSAGE_SIZE, rm.HEADER_SIZE, rm.MAX_CONTENT, rm.MAX_FRAGMENTS) == (240, 8, 232, 62)
    assert rm.MAX_MSG_SIZE == 232 * 63
    assert (rm.TYPE_CONTINUATION, rm.TYPE_REQUEST, rm.TYPE_REPLY, rm.TYPE_NOTIFICATION) == (
        0, 1, 2, 3)  # fmt: skip
    # include/vm_mgnt_message.h, memparcel_msg.h
    assert rm.MESSAGE_IDS["VM_GET_VMID"] == 0x56000024
    assert rm.MESSAGE_IDS["VM_HOST_GET_TYPE"] == 0x560000A0
    assert rm.MESSAGE_IDS["VM_GET_ID"] == 0x56000010
    assert rm.MESSAGE_IDS["MEM_RECLAIM"] == 0x51000015
    assert rm.MESSAGE_IDS["NOTIFY_VM_CONSOLE_CHARS"] == 0x56100080
    assert len(rm.MESSAGE_NAMES) == len(rm.MESSAGE_IDS)  # no ID declared twice
    # include/rm_types.h
    assert rm.ERROR_CODES["MSG_INVALID"] == 4 and rm.ERROR_CODES["HANDLE_INVALID"] == 7
    assert rm.ERROR_CODES["VM_STATE"] == 0x14 and rm.ERROR_CODES["UNIMPLEMENTED"] == 0xFFFFFFFF


def test_a_header_is_what_the_rm_writes() -> None:
    """Byte 0 is always 0x21 (version 1, two header words); byte 1 the type in
    bits 1:0 and the fragments in 7:2; then the sequence and the ID."""
    h = rm.Header(rm.TYPE_REPLY, 3, 0x1234, 0x56000024).encode()
    assert h == bytes([0x21, 0x0E, 0x34, 0x12, 0x24, 0x00, 0x00, 0x56])


@given(st.binary(min_size=8, max_size=240))
def test_header_decode_reads_any_bytes_and_encodes_back(data: bytes) -> None:
    h = rm.Header.decode(data)
    assert h.encode() == data[:8]
    assert h.valid == (data[0] == 0x21 and data[1] >> 2 <= 62)


@given(st.sampled_from([0, 1, 2, 3]), st.integers(0, 0xFFFF), st.integers(0, 0xFFFFFFFF),
       st.binary(max_size=3 * 232 + 5))  # fmt: skip
def test_framing_splits_and_counts_continuations(t: int, seq: int, msg_id: int, payload: bytes
                                                 ) -> None:  # fmt: skip
    messages = rm.frame(t, seq, msg_id, payload)
    assert all(8 <= len(m) <= 240 for m in messages)
    headers = [rm.Header.decode(m) for m in messages]
    assert headers[0].msg_type == t and all(h.msg_type == 0 for h in headers[1:])
    assert {h.fragments for h in headers} == {len(messages) - 1}
    assert {(h.seq, h.msg_id) for h in headers} == {(seq, msg_id)}
    assert b"".join(m[8:] for m in messages) == payload


def test_names_parse_as_kernel_logs_print_them() -> None:
    assert rm.message_id("51000015") == rm.message_id("0x51000015") == 0x51000015
    assert rm.message_id("vm_get_vmid") == 0x56000024
    assert rm.error_code("7") == 7 and rm.error_code("-1") == 0xFFFFFFFF
    assert rm.error_code("MSG_INVALID") == 4
    for bad in ("zz", "1_0000_0000"):
        with pytest.raises(ValueError):
            rm.message_id(bad)


# -- the resource manager, request by request (measured) -----------------------------
def request(msg_id: int, payload: bytes = b"", seq: int = 7) -> bytes:
    return rm.frame(rm.TYPE_REQUEST, seq, msg_id, payload)[0]


def reply_of(msg_id: int, payload: bytes = b"") -> bytes:
    replies = ResourceManager().receive(request(msg_id, payload))
    assert len(replies) == 1
    h = rm.Header.decode(replies[0])
    assert (h.msg_type, h.fragments, h.seq, h.msg_id) == (rm.TYPE_REPLY, 0, 7, msg_id)
    return replies[0][8:]


U32_3 = bytes.fromhex("03000000")


@pytest.mark.parametrize(("name", "payload", "expected"), [
    ("VM_GET_VMID", b"", "00000000" "03000000"),
    ("VM_HOST_GET_TYPE", b"", "00000000" "64010001"),
    ("VM_GET_OWNER", b"", "00000000" "ff000000"),
    ("VM_GET_STATE", U32_3, "00000000" "03000000"),
    ("VM_GET_ID", U32_3, "00000000" "03000000" "00001000" + "00" * 16
     + "02000400" + b"HLOS".hex() + "03000300" + b"N/A\0".hex()),
    ("VM_GET_PEERS", b"", "00000000" "00000000"),
])  # fmt: skip
def test_the_measured_replies(name: str, payload: bytes, expected: str) -> None:
    assert reply_of(rm.MESSAGE_IDS[name], payload).hex() == expected


@pytest.mark.parametrize(("msg_id", "payload", "error"), [
    (0x56001234, b"", 0xFFFFFFFF),  # unknown IDs: UNIMPLEMENTED
    (0, b"", 0xFFFFFFFF),
    (0x56000017, b"", 4),  # VM_GET_STATE without its payload: MSG_INVALID
    (0x56000024, U32_3, 4),  # VM_GET_VMID with one
    (0x56000024, bytes(232), 4),  # a 240-byte VM_GET_VMID
    (0x56000017, bytes.fromhex("09000000"), 2),  # no such VM: NORESOURCE (vm_mgnt.c)
])  # fmt: skip
def test_the_measured_errors(msg_id: int, payload: bytes, error: int) -> None:
    assert reply_of(msg_id, payload) == struct.pack("<I", error)


def test_vmid_0_queries_the_caller() -> None:
    assert reply_of(0x56000017, bytes(4)).hex() == "00000000" "03000000"


@pytest.mark.parametrize("message", [
    bytes([0x22]) + request(0x56000024)[1:],  # api_version 2
    bytes([0x31]) + request(0x56000024)[1:],  # header_words 3
    rm.frame(rm.TYPE_REPLY, 1, 0x56000024, b"")[0],
    rm.frame(rm.TYPE_NOTIFICATION, 1, 0x56000024, b"")[0],
    rm.Header(rm.TYPE_CONTINUATION, 1, 1, 0x56000024).encode(),  # nothing pending
    b"", bytes(4), request(0x56000024)[:7],  # shorter than a header
    bytes([0x21, 63 << 2 | 1]) + request(0x56000024)[2:],  # 63 fragments
])  # fmt: skip
def test_what_the_rm_drops_without_a_reply(message: bytes) -> None:
    assert ResourceManager().receive(message) == []


def test_a_request_in_fragments_is_answered_once_whole() -> None:
    server = ResourceManager()
    first, second = rm.frame(rm.TYPE_REQUEST, 9, 0x56000017, bytes(232) + U32_3)
    assert server.receive(first) == []
    assert server.receive(rm.Header(0, 1, 8, 0x56000017).encode()) == []  # another seq: dropped
    (reply,) = server.receive(second)
    assert reply[8:12] == struct.pack("<I", 4)  # 236 bytes: not VM_GET_STATE's 4
    # a new request drops one still being put together
    assert server.receive(first) == []
    (reply,) = server.receive(request(0x56000024))
    assert reply[12:] == U32_3
    assert server.receive(second) == []


@given(st.lists(st.binary(max_size=240), max_size=20))
def test_any_messages_get_replies_or_silence_never_an_exception(messages: list[bytes]) -> None:
    server = ResourceManager()
    for m in messages:
        for reply in server.receive(m):
            h = rm.Header.decode(reply)
            assert h.valid and h.msg_type in (rm.TYPE_REPLY, rm.TYPE_CONTINUATION)
            assert len(reply) <= 240
        partial = server._partial
        assert partial is None or len(partial.data) <= 63 * 232


# -- the queues, through the model ----------------------------------------------------
def queued(hyp: Hypervisor, message: bytes, mem: FlatMemory, smccc: bool = False) -> list[int]:
    mem.data[: len(message)] = message
    if smccc:
        return hyp.call(SEND_SMCCC, 0, len(message), 0, 1, 0)
    return hyp.call(0, len(message), 0, 1, 0, imm=SEND)


def received(hyp: Hypervisor, size: int = 240, smccc: bool = False) -> list[int]:
    if smccc:
        return hyp.call(RECEIVE_SMCCC, 1, 0x400, size, 0)
    return hyp.call(1, 0x400, size, 0, imm=RECEIVE)


@pytest.fixture
def vm() -> tuple[Hypervisor, FlatMemory]:
    hyp, mem = Hypervisor("gunyah-qemu"), FlatMemory(0x800)
    hyp.attach_memory(mem)
    return hyp, mem


@pytest.mark.parametrize("smccc", [False, True])
def test_request_and_reply_through_the_queues(vm, smccc: bool) -> None:
    hyp, mem = vm
    assert received(hyp, smccc=smccc)[:3] == [EMPTY, 0, 0]
    assert queued(hyp, request(0x56000024), mem, smccc)[:2] == [0, 1]
    regs = received(hyp, smccc=smccc)
    assert regs[:3] == [0, 16, 0]
    assert bytes(mem.data[0x400:0x410]).hex() == "2102070024000056" "00000000" "03000000"


def test_each_end_has_its_own_rights(vm) -> None:
    hyp, _ = vm
    assert hyp.call(1, 8, 0, 0, 0, imm=SEND)[0] == INSUFFICIENT_RIGHTS  # send on RX
    assert hyp.call(0, 0x400, 240, 0, imm=RECEIVE)[0] == INSUFFICIENT_RIGHTS  # receive on TX


def test_quirk_a_send_too_big_answers_ok_and_queues_nothing(vm) -> None:
    """msgqueue_common.c: a failed copy from the guest leaves the error OK."""
    hyp, mem = vm
    assert queued(hyp, request(0x56000024) + bytes(233), mem)[:2] == [0, 1]
    assert received(hyp)[:3] == [EMPTY, 0, 0]


def test_quirk_a_small_buffer_answers_ok_size_0_and_keeps_the_message(vm) -> None:
    hyp, mem = vm
    queued(hyp, request(0x56000024), mem)
    assert received(hyp, size=15)[:3] == [0, 0, 1]
    assert received(hyp, size=16)[:3] == [0, 16, 0]


def test_copies_the_guest_may_not_make_fail_as_the_hypervisor_reports_them(vm) -> None:
    """Addresses outside the guest's memory: OK with nothing queued (send),
    OK, size 0, not_empty (receive); never an exception, never a host read."""
    hyp, mem = vm
    assert hyp.call(0, 16, 0x7F8, 1, 0, imm=SEND)[:2] == [0, 1]  # crosses the end
    assert hyp.call(0, 16, M64 - 3, 1, 0, imm=SEND)[:2] == [0, 1]
    assert hyp.call(0, M64, 0, 1, 0, imm=SEND)[:2] == [0, 1]  # a size no message has
    queued(hyp, request(0x56000024), mem)
    assert hyp.call(1, 0x7F8, 240, 0, imm=RECEIVE)[:3] == [0, 0, 1]
    assert hyp.call(1, M64 - 3, M64, 0, imm=RECEIVE)[:3] == [0, 0, 1]
    assert received(hyp)[:3] == [0, 16, 0]


def test_a_client_that_never_receives_fills_both_queues_then_gets_full(vm) -> None:
    hyp, mem = vm
    answers = [queued(hyp, request(0x56000024, seq=i), mem)[:2] for i in range(20)]
    # 8 replies wait on the receive queue, a ninth in the RM, and 8 requests on
    # the send queue behind them: the 17th fills it, the rest are refused
    assert answers[:16] == [[0, 1]] * 16 and answers[16] == [0, 0]
    assert answers[17:] == [[FULL, 0]] * 3
    seqs = []
    while (regs := received(hyp))[0] == 0:
        seqs.append(rm.Header.decode(bytes(mem.data[0x400:0x408])).seq)
    assert seqs == list(range(17))  # every request accepted is answered, in order
    assert regs[:3] == [EMPTY, 0, 0]


def test_an_empty_message_is_queued_and_dropped(vm) -> None:
    hyp, _ = vm
    assert hyp.call(0, 0, 0, 1, 0, imm=SEND)[:2] == [0, 1]
    assert received(hyp)[:3] == [EMPTY, 0, 0]


def test_personas_without_a_resource_manager_have_no_queues() -> None:
    for persona in ("kvm", "none"):
        hyp = Hypervisor(persona)
        assert hyp.rm is None
        assert exchange(hyp, 0x56000024).reply is None
    assert Hypervisor("gunyah").rm is not None


def test_declared_queue_calls_are_the_ones_served() -> None:
    assert hvc.BY_NAME["msgqueue_send"].number == 0x1B
    assert hvc.BY_NAME["msgqueue_receive"].number == 0x1C
    assert [i.name for i in hvc.BY_NAME["msgqueue_receive"].inputs] == [
        "msgqueue", "buffer", "buf_size", "res0"]  # fmt: skip


# -- real AArch64 code --------------------------------------------------------------
@pytest.mark.parametrize("mode", [0, 1], ids=["native", "smccc"])
def test_a_c_guest_gets_its_vmid(guests: dict[str, Path], mode: int) -> None:
    r = VCpu(Hypervisor("gunyah-qemu"), trace=True).run(load_elf(guests["rm_vmid"]), {0: mode})
    assert (r.stopped_by, r.exit_status) == ("semihosting-exit", 3), r
    assert r.output.startswith("reply 0x21 0x2 0x34 0x12 0x24 0x0 0x0 0x56 0x0 0x0 0x0 0x0 0x3")
    names = [c.to_dict()["name"] for c in r.calls]
    assert names[0] == "msgqueue_send" and set(names[1:]) == {"msgqueue_receive"}


def test_a_c_guest_under_kvm_finds_no_queue(guests: dict[str, Path]) -> None:
    r = VCpu(Hypervisor("kvm")).run(load_elf(guests["rm_vmid"]), {0: 0})
    assert r.exit_status == 100


# -- the command line --------------------------------------------------------------
def test_gunyah_rm_asks_and_decodes() -> None:
    code, d = gunyah_json("rm", "VM_GET_VMID")
    assert code == 0 and d["decoded"] == {"vmid": 3} and d["rm_error_name"] == "OK"
    code, d = gunyah_json("rm", "VM_GET_ID", "03000000")
    assert code == 0 and [e["value"] for e in d["decoded"]["ids"]] == ["00" * 16, "HLOS", "N/A"]
    code, d = gunyah_json("rm", "56001234")
    assert code == 1 and d["rm_error_name"] == "UNIMPLEMENTED"
    code, d = gunyah_json("rm", "VM_GET_VMID", "--persona", "kvm")
    assert code == 1 and d["reply"] is None and "no queue" in d["note"]
    p = gunyah("rm", "VM_GET_STATE")
    assert p.returncode == 1 and "MSG_INVALID" in p.stdout
    assert_usage_error(gunyah("rm", "VM_NOPE"), "neither a message name")
    assert_usage_error(gunyah("rm", "VM_GET_STATE", "0g"), "not hex bytes")
    assert_usage_error(gunyah("rm", "VM_GET_STATE", "00" * (rm.MAX_MSG_SIZE + 1)), "at most")


def test_decode_explains_what_a_kernel_logged() -> None:
    p = gunyah("decode", "--rm", "51000015", "--rm-error", "7")
    assert p.returncode == 0
    assert "MEM_RECLAIM" in p.stdout and "HANDLE_INVALID" in p.stdout
    code, d = gunyah_json("decode", "--rm", "0x56100080")
    assert d["message"] == "NOTIFY_VM_CONSOLE_CHARS" and d["notification"] is True
    assert_usage_error(gunyah("decode", "--rm-error", "7"), "goes with --rm")
