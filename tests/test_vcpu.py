"""Real AArch64 code against the model: traps, semihosting, faults, loading."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from gunyah import Hypervisor
from gunyah.vcpu import GuestError, RunResult, VCpu, engine, load_elf, load_raw

INFO = 0x5100000000008001


@pytest.fixture(autouse=True, params=["compiled", "python"])
def hook(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test here runs with both trap hooks: the compiled one the install
    builds, and the Python one an install without a C compiler falls back to."""
    if request.param == "python":
        monkeypatch.setattr(engine, "_vcpu", None)
    return str(request.param)


def test_the_compiled_hook_is_built(hook: str) -> None:
    """The test install has a C compiler: the hook runs use is the compiled one."""
    assert VCpu(Hypervisor()).compiled == (hook == "compiled")


class _Raises(Hypervisor):
    def handle(self, *args: object) -> None:  # type: ignore[override]
        raise ZeroDivisionError("a bug of ours")


def test_an_error_of_ours_is_an_internal_error_not_the_guests(guests: dict[str, Path]) -> None:
    r = VCpu(_Raises(), trace=True).run(load_elf(guests["calls"]), {0: 0})
    assert r.stopped_by == "fault" and r.fault is not None
    assert (r.fault.kind, r.fault.message) == ("internal-error", "ZeroDivisionError: a bug of ours")
    assert r.calls == []



def run(path: Path, mode: int | None = None, persona: str = "gunyah", **kw: object) -> RunResult:
    cpu = VCpu(Hypervisor(persona), trace=True, **kw)  # type: ignore[arg-type]
    return cpu.run(load_elf(path), {} if mode is None else {0: mode})


@pytest.mark.parametrize(("mode", "conduit"), [(0, "hvc"), (1, "smc")])
def test_uid_and_identify_over_smccc(guests: dict[str, Path], mode: int, conduit: str) -> None:
    r = run(guests["calls"], mode)
    assert (r.stopped_by, r.exit_status, r.fault) == ("semihosting-exit", 0, None)
    assert r.output == (
        "uid 0xcd8fd5c1 0xdb5f53a4 0x36ce6592 0x145f3d67\n"
        "identify 0x5100000000008001 0x10000fff 0x0 0x0\n"
    )
    uid, ident = (c.to_dict() for c in r.calls)
    assert uid["conduit"] == conduit and uid["imm"] == 0
    assert uid["function_id"] == 0x8600FF01
    assert ident["name"] == "hypervisor_identify" and ident["results"][0] == INFO


def test_native_hvc_6000(guests: dict[str, Path]) -> None:
    r = run(guests["calls"], 2)
    assert r.exit_status == 0
    call = r.calls[0].to_dict()
    assert (call["imm"], call["function_id"], call["name"]) == (0x6000, None, "hypervisor_identify")


def test_other_immediate_gets_minus_one(guests: dict[str, Path]) -> None:
    r = run(guests["calls"], 3)
    assert r.exit_status == 0
    assert r.calls[0].imm == 1 and r.calls[0].after[0] == 0xFFFFFFFFFFFFFFFF


def test_registers_the_abi_preserves_are_preserved(guests: dict[str, Path]) -> None:
    assert run(guests["calls"], 4).exit_status == 0


@pytest.mark.parametrize("persona", ["gunyah", "gunyah-qemu"])
def test_a_native_call_sanitises_the_guests_registers(
    guests: dict[str, Path], persona: str
) -> None:
    """As the real hypervisor's return path does (docs/real-gunyah.md section 3,
    the return path): seen by AArch64 code after its own hvc #0x6000 — X4..X7
    zero, X8 kept, X9 the address after the HVC, X10..X17 zero."""
    assert run(guests["calls"], 5, persona=persona).exit_status == 0


def test_trace_records_pc_and_registers(guests: dict[str, Path]) -> None:
    r = run(guests["calls"], 0)
    image = load_elf(guests["calls"])
    for c in r.calls:
        assert any(s.address <= c.pc < s.address + s.size for s in image.segments)
        assert len(c.before) == 18 and len(c.after) == 8
    assert r.calls[0].before[0] == 0x8600FF01


def test_persona_reaches_the_guest(guests: dict[str, Path]) -> None:
    r = run(guests["calls"], 0, persona="kvm")
    assert r.exit_status == 1
    assert r.output.startswith("uid 0xb66fb428 ")


@pytest.mark.parametrize(
    ("mode", "how", "status"),
    [
        (0, "semihosting-exit", 7),
        (1, "semihosting-exit", 42),
        (2, "brk", 0x1234),  # the whole of X0: 0x1234 is not 0x34
        (3, "semihosting-exit", 1),
    ],
)
def test_semihosting_output_and_exits(
    guests: dict[str, Path], mode: int, how: str, status: int
) -> None:
    r = run(guests["semihosting"], mode)
    assert (r.stopped_by, r.exit_status, r.fault) == (how, status, None)
    assert r.output == "A\nhello\nvia SYS_WRITE\nto stderr\n"


@pytest.mark.parametrize(
    ("mode", "kind", "address"),
    [
        (0, "unmapped-read", 0x10),
        (1, "unmapped-write", 0x10),
        (2, "unmapped-fetch", 0x10),
        (3, "undefined-instruction", None),
        (4, "svc", None),
        (6, "semihosting", None),
    ],
)
def test_faults(guests: dict[str, Path], mode: int, kind: str, address: int | None) -> None:
    r = run(guests["faults"], mode)
    assert r.stopped_by == "fault" and r.exit_status is None
    assert r.fault is not None
    assert (r.fault.kind, r.fault.address) == (kind, address)
    assert r.fault.message
    assert [c.before[0] for c in r.recent] == [0x8600FF01]  # the last trapped call


def test_fault_pc_points_at_the_instruction(guests: dict[str, Path]) -> None:
    r = run(guests["faults"], 3)
    assert r.fault is not None
    word = _word_at(guests["faults"], r.fault.pc)
    assert word == 0x00000000
    r = run(guests["faults"], 4)
    assert r.fault is not None and _word_at(guests["faults"], r.fault.pc) == 0xD4000001


def _word_at(path: Path, address: int) -> int:
    for s in load_elf(path).segments:
        if s.address <= address < s.address + len(s.data):
            off = address - s.address
            return int(struct.unpack("<I", s.data[off : off + 4])[0])
    raise AssertionError(f"{address:#x} not in the image")


def test_budget(guests: dict[str, Path]) -> None:
    r = run(guests["faults"], 5, max_instructions=10_000, timeout=60)
    assert r.stopped_by == "budget" and r.fault is not None and r.fault.kind == "budget"


def test_timeout(guests: dict[str, Path]) -> None:
    r = run(guests["faults"], 5, max_instructions=10**15, timeout=0.3)
    assert r.stopped_by == "timeout" and r.fault is not None and r.fault.kind == "timeout"


def test_foreign_guest(guests: dict[str, Path]) -> None:
    assert run(guests["foreign"]).exit_status == 0
    assert run(guests["foreign"], persona="qualcomm").exit_status == 1
    assert run(guests["foreign"], persona="none").exit_status == 1


def test_raw_binary(tmp_path: Path) -> None:
    code = struct.pack(
        "<4I",
        0xD2800020,  # mov x0, #1
        0xD4000002,  # hvc #0  (function ID 1: yielding arch call -> -1)
        0x92401C00,  # and x0, x0, #0xff
        0xD4200000,  # brk #0
    )
    p = tmp_path / "guest.bin"
    p.write_bytes(code)
    r = VCpu(Hypervisor(), trace=True).run(load_raw(p, 0x80000))
    assert r.stopped_by == "brk" and r.exit_status == 0xFF
    assert r.calls[0].pc == 0x80004


def _elf_header(cls: int = 2, data: int = 1, machine: int = 183, etype: int = 2) -> bytes:
    ident = b"\x7fELF" + bytes([cls, data, 1]) + bytes(9)
    return ident + struct.pack(
        "<HHIQQQIHHHHHH", etype, machine, 1, 0, 64, 0, 0, 64, 56, 0, 64, 0, 0
    )


@pytest.mark.parametrize(
    ("blob", "fragment"),
    [
        (b"hello", "not an ELF"),
        (b"\x7fELF\x02", "truncated"),
        (_elf_header(cls=1), "32-bit"),
        (_elf_header(data=2), "big-endian"),
        (_elf_header(machine=62), "EM_X86_64"),
        (_elf_header(etype=3), "not a static executable"),
        (_elf_header(), "no loadable segment"),
    ],
)
def test_bad_guest_files(tmp_path: Path, blob: bytes, fragment: str) -> None:
    p = tmp_path / "bad.elf"
    p.write_bytes(blob)
    with pytest.raises(GuestError, match=fragment) as e:
        load_elf(p)
    assert str(p) in str(e.value)


def test_truncated_segment(guests: dict[str, Path], tmp_path: Path) -> None:
    blob = guests["calls"].read_bytes()
    p = tmp_path / "cut.elf"
    p.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(GuestError, match="truncated|corrupt"):
        load_elf(p)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(GuestError, match="cannot read"):
        load_elf(tmp_path / "nope")


def test_bad_limits() -> None:
    for kw in ({"max_instructions": 0}, {"timeout": 0}, {"stack_size": 17}):
        with pytest.raises(ValueError):
            VCpu(Hypervisor(), **kw)  # type: ignore[arg-type]
