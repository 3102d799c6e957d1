"""A secondary VM's vCPU on unicorn: the backend `model.vcpu_run` runs.

The VM's memory is the caller's bytes (a bytearray, or a writable mmap of the
parcel the RM was given), mapped at its IPA without a copy, so what the guest
writes is what the owner reads: IPA == base + offset in the buffer. Nothing
else is mapped: the VMMIO window, and every other address, stops the engine.
The stop becomes the syndrome the hardware would give the hypervisor:

* a data access there: a data abort (EC 0x24) whose ISS is valid (ISV) only
  for the single-register loads and stores the Arm ARM gives one for (LDR,
  STR, LDRB, STRB, LDRH, STRH, LDRSB, LDRSH, LDRSW with an unsigned
  immediate, an unscaled immediate or a register offset; their unprivileged
  forms; LDR (literal); LDAR and STLR with AR), decoded here from the
  instruction word; pairs, exclusives, writeback forms and SIMD registers get
  ISV clear;
* an instruction fetch there: an instruction abort (EC 0x20);
* HVC (EC 0x16), SMC (EC 0x17) and WFI (EC 0x01): the traps Gunyah sets.

What the hardware takes to the guest's own EL1 without the hypervisor (an
undefined instruction, SVC, BRK) is taken here too: the exception entry at
VBAR_EL1 is done by hand, since unicorn hands exceptions to the interrupt
hook instead (docs/vcpu.md section 1). The guest runs with its MMU off (no
stage 1 walk is modelled for a fault's IPA); its stage-1 aborts, with the MMU
on, end the run as a fault.
"""

from __future__ import annotations

import bisect
import ctypes
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import unicorn
from unicorn import arm64_const as a64
from unicorn.unicorn_py3.unicorn import Uc, UcError

from ..model import vmmio
from ..model.vcpu_run import PSTATE_DAIF, PSTATE_EL1H, vector_offset
from ..model.vmmio import Syndrome
from .engine import EXCP_BKPT, EXCP_HVC, EXCP_SMC, EXCP_SWI, WFI, RegisterBatch, el1_engine
from .loader import ADDRESS_LIMIT, PAGE

RESET_PSTATE = PSTATE_DAIF | PSTATE_EL1H  # 0x3c5: EL1h, D A I F masked
GPR_IDS = [a64.UC_ARM64_REG_X0 + i for i in range(29)] + [a64.UC_ARM64_REG_X29,
                                                          a64.UC_ARM64_REG_X30]  # fmt: skip
_PROT = {4: unicorn.UC_PROT_READ, 2: unicorn.UC_PROT_WRITE, 1: unicorn.UC_PROT_EXEC}
SPSR_EL1 = (4, 0, 3, 0, 0)  # CRn, CRm, op0, op1, op2: unicorn names no register for it
_STOP = 0xFFFF_FFFF_FFFF_FFFC  # an `until` no guest reaches: its page is never mapped


class RegionError(ValueError):
    """A region the vCPU cannot map (not page-aligned, overlapping, too big)."""


@dataclass(frozen=True)
class Region:
    """Guest memory: `buffer` at IPA `ipa`, with the RM's rights (R 4, W 2, X 1)."""

    ipa: int
    buffer: Any  # bytearray, memoryview or mmap: writable, page-sized
    rights: int = 7


def access_syndrome_iss(word: int) -> dict[str, int | bool] | None:
    """The ISS fields a data abort on this instruction would carry when the
    Arm ARM gives it a valid ISS (ISV, SAS, SSE, SRT, SF, AR, WnR); None for
    every other instruction."""
    rt = word & 0x1F
    size = word >> 30
    if word & 0x3FBFFC00 == 0x089FFC00:  # STLR / LDAR (o2=1, o1=0, o0=1; L bit 22)
        load = bool(word >> 22 & 1)
        return {"ISV": True, "SAS": size, "SSE": False, "SRT": rt, "SF": size == 3,
                "AR": True, "WnR": not load}  # fmt: skip
    if word & 0x3F000000 == 0x18000000:  # LDR (literal): W, X, LDRSW; PRFM
        if size == 3:
            return None
        return {"ISV": True, "SAS": 3 if size == 1 else 2, "SSE": size == 2, "SRT": rt,
                "SF": size != 0, "AR": False, "WnR": False}  # fmt: skip
    group, bit21, idx = word >> 24 & 0x3F, word >> 21 & 1, word >> 10 & 3
    unsigned_imm = group == 0x39  # V = 0
    unscaled = group == 0x38 and not bit21 and idx in (0, 2)  # LDUR/STUR, LDTR/STTR
    register = group == 0x38 and bit21 and idx == 2
    if not (unsigned_imm or unscaled or register):
        return None  # writeback forms, pairs, exclusives, SIMD&FP, the rest
    opc = word >> 22 & 3
    if opc == 0:  # store
        return {"ISV": True, "SAS": size, "SSE": False, "SRT": rt, "SF": size == 3,
                "AR": False, "WnR": True}  # fmt: skip
    if opc == 1:  # load, zero-extended
        return {"ISV": True, "SAS": size, "SSE": False, "SRT": rt, "SF": size == 3,
                "AR": False, "WnR": False}  # fmt: skip
    if size == 3 or (size == 2 and opc == 3):  # PRFM, unallocated
        return None
    # LDRSB/LDRSH to X (opc 2) or W (opc 3); LDRSW (size 2, opc 2) to X
    return {"ISV": True, "SAS": size, "SSE": True, "SRT": rt, "SF": opc == 2,
            "AR": False, "WnR": False}  # fmt: skip


# Exceptions one vcpu_run takes in the guest before it ends "ready": an
# exception whose vector raises the next retires no instruction, so the
# instruction budget alone would never end that run (a host interrupt ends it
# on the real one)
MAX_INJECTED = 1024


class UnicornSecondary:
    """vcpu_run's backend on unicorn (model.vcpu_run.VcpuBackend)."""

    def __init__(self, regions: list[Region]) -> None:
        self.uc = uc = el1_engine()
        self._keep: list[Any] = []  # the buffers and their ctypes views, alive as long as uc
        spans: list[tuple[int, int]] = []
        for r in regions:
            size = len(memoryview(r.buffer).cast("B"))
            if r.ipa % PAGE or size % PAGE or size == 0:
                raise RegionError(f"region at {r.ipa:#x}: {size:#x} bytes, not whole pages")
            if r.ipa < 0 or r.ipa + size > ADDRESS_LIMIT:
                raise RegionError(f"region at {r.ipa:#x} is outside the 48-bit IPA space")
            at = bisect.bisect_right(spans, (r.ipa, ADDRESS_LIMIT))  # sorted: no scan of all
            before, after = spans[at - 1] if at else None, spans[at] if at < len(spans) else None
            if (before and before[1] > r.ipa) or (after and after[0] < r.ipa + size):
                raise RegionError(f"region at {r.ipa:#x} overlaps another")
            if not 0 <= r.rights <= 7:
                raise RegionError(f"region at {r.ipa:#x}: rights {r.rights} are not R/W/X bits")
            try:
                view = (ctypes.c_char * size).from_buffer(r.buffer)
            except TypeError as e:  # read-only bytes: refused rather than copied
                raise RegionError(f"region at {r.ipa:#x}: the buffer is not writable") from e
            perms = sum(p for bit, p in _PROT.items() if r.rights & bit)
            uc.mem_map_ptr(r.ipa, size, perms, ctypes.addressof(view))
            self._keep += [r.buffer, view]
            spans.insert(at, (r.ipa, r.ipa + size))
        self._gprs = RegisterBatch(uc, [*GPR_IDS, a64.UC_ARM64_REG_PC])
        self._pc = RegisterBatch(uc, [a64.UC_ARM64_REG_PC])
        self._stop: Syndrome | None = None
        self._mem: tuple[int, int] | None = None  # (access type, address) that failed
        self._injected = 0  # exceptions taken in the guest during this run
        uc.hook_add(unicorn.UC_HOOK_INTR, self._on_intr)
        uc.hook_add(unicorn.UC_HOOK_MEM_UNMAPPED | unicorn.UC_HOOK_MEM_PROT, self._on_mem)

    # -- VcpuBackend --------------------------------------------------------
    def poweron(self, entry: int, context: int) -> None:
        uc = self.uc
        self._gprs.write([context] + [0] * 30 + [entry])
        uc.reg_write(a64.UC_ARM64_REG_PSTATE, RESET_PSTATE)
        uc.reg_write(a64.UC_ARM64_REG_VBAR_EL1, 0)
        uc.reg_write(a64.UC_ARM64_REG_SP, 0)

    def enter(self, budget: int) -> Syndrome | None:
        uc = self.uc
        self._stop = None
        self._mem = None
        self._injected = 0
        try:
            uc.emu_start(self.pc, _STOP, count=budget)
        except UcError:
            if self._mem is None:  # an exception the engine gave no hook: a fault
                return self._syndrome(vmmio.ESR.encode({"EC": vmmio.EC_UNKNOWN, "IL": True}))
            return self._abort(*self._mem)
        if self._stop is not None:
            return self._stop
        pc = self.pc
        if self._word(pc - 4) == WFI:  # the engine stops after a WFI
            self.pc = pc - 4
            return self._syndrome(vmmio.ESR.encode({"EC": vmmio.EC_WFX, "IL": True}))
        return None

    def write_regs(self, values: dict[int, int]) -> None:
        for n, v in values.items():
            if 0 <= n < 31:
                self.uc.reg_write(GPR_IDS[n], v & vmmio.MASK64)

    def skip(self) -> None:
        self.pc = (self.pc + 4) & vmmio.MASK64

    @property
    def pc(self) -> int:
        return self._pc.read()[0]

    @pc.setter
    def pc(self, value: int) -> None:
        self._pc.write([value])

    def exception_state(self) -> tuple[int, int, int]:
        uc = self.uc
        return (uc.reg_read(a64.UC_ARM64_REG_PSTATE), uc.reg_read(a64.UC_ARM64_REG_VBAR_EL1),
                uc.reg_read(a64.UC_ARM64_REG_PC))  # fmt: skip

    def inject(self, esr_el1: int, far: int, offset: int) -> None:
        uc = self.uc
        pstate = uc.reg_read(a64.UC_ARM64_REG_PSTATE)
        uc.reg_write(a64.UC_ARM64_REG_CP_REG, (*SPSR_EL1, pstate))
        uc.reg_write(a64.UC_ARM64_REG_ELR_EL1, uc.reg_read(a64.UC_ARM64_REG_PC))
        uc.reg_write(a64.UC_ARM64_REG_ESR_EL1, esr_el1)
        uc.reg_write(a64.UC_ARM64_REG_FAR_EL1, far)
        uc.reg_write(a64.UC_ARM64_REG_PSTATE, (pstate & ~0x3FF) | RESET_PSTATE)
        vbar = uc.reg_read(a64.UC_ARM64_REG_VBAR_EL1)
        uc.reg_write(a64.UC_ARM64_REG_PC, (vbar + offset) & vmmio.MASK64)

    def kick(self) -> None:
        """Nothing to end: on unicorn one vCPU runs at a time, in its caller."""

    def sleep(self, wake: Callable[[], None]) -> None:
        """Nothing to wake it: unicorn has no timer; its owner's next
        vcpu_run finds it waiting."""

    # -- registers and words -----------------------------------------------
    def registers(self) -> tuple[list[int], int]:
        """X0..X30 and the PC."""
        values = self._gprs.read()
        return values[:31], values[31]

    def _word(self, address: int) -> int | None:
        try:
            return int(struct.unpack("<I", self.uc.mem_read(address, 4))[0])
        except UcError:
            return None

    def _syndrome(self, esr: int, far: int = 0, ipa: int | None = None) -> Syndrome:
        values = self._gprs.read()
        return Syndrome(esr=esr, far=far, ipa=ipa, regs=tuple(values[:31]), pc=values[31])

    def _abort(self, access: int, address: int) -> Syndrome:
        """The abort the hardware would take to EL2 for this failed access."""
        fetch = access in (unicorn.UC_MEM_FETCH_UNMAPPED, unicorn.UC_MEM_FETCH_PROT)
        prot = access in (unicorn.UC_MEM_READ_PROT, unicorn.UC_MEM_WRITE_PROT,
                          unicorn.UC_MEM_FETCH_PROT)  # fmt: skip
        fsc = vmmio.FSC_PERMISSION_3 if prot else vmmio.FSC_TRANSLATION_3
        if fetch:
            self.pc = address
            esr = vmmio.ESR.encode({"EC": vmmio.EC_INST_ABORT_LOWER, "IL": True, "ISS": fsc})
            return self._syndrome(esr, address, address)
        write = access in (unicorn.UC_MEM_WRITE_UNMAPPED, unicorn.UC_MEM_WRITE_PROT)
        word = self._word(self.pc)
        fields = access_syndrome_iss(word) if word is not None else None
        iss: dict[str, int | bool] = {"DFSC": fsc, "WnR": write}
        if fields is not None:
            iss.update(fields)
        esr = vmmio.ESR.encode({"EC": vmmio.EC_DATA_ABORT_LOWER, "IL": True,
                                "ISS": vmmio.DATA_ABORT_ISS.encode(iss)})  # fmt: skip
        return self._syndrome(esr, address, address)

    # -- hooks ----------------------------------------------------------------
    def _on_mem(self, uc: Uc, access: int, address: int, size: int, value: int, _d: object) -> bool:
        if self._mem is None:
            self._mem = (access, address)
        return False

    def _on_intr(self, uc: Uc, intno: int, _d: object) -> None:
        pc = uc.reg_read(a64.UC_ARM64_REG_PC)
        if intno in (EXCP_HVC, EXCP_SMC):
            word = self._word(pc - 4) or 0
            imm = word >> 5 & 0xFFFF
            if intno == EXCP_HVC:
                ec = vmmio.EC_HVC64
            else:  # a trapped SMC stays on its instruction (ELR_EL2)
                ec = vmmio.EC_SMC64
                uc.reg_write(a64.UC_ARM64_REG_PC, pc - 4)
            regs, _ = self.registers()
            esr = vmmio.ESR.encode({"EC": ec, "IL": True, "ISS": imm})
            self._stop = Syndrome(esr, regs=tuple(regs), pc=pc - 4)
            uc.emu_stop()
            return
        # the guest's own exceptions, taken at its EL1 as the hardware would
        if intno == EXCP_SWI:
            word = self._word(pc - 4) or 0
            esr = vmmio.ESR.encode({"EC": vmmio.EC_SVC64, "IL": True, "ISS": word >> 5 & 0xFFFF})
        elif intno == EXCP_BKPT:
            word = self._word(pc) or 0
            esr = vmmio.ESR.encode({"EC": vmmio.EC_BRK, "IL": True, "ISS": word >> 5 & 0xFFFF})
        else:  # undefined instruction, and whatever else the engine raises
            esr = vmmio.ESR.encode({"EC": vmmio.EC_UNKNOWN, "IL": True})
        self.inject(esr, 0, vector_offset(uc.reg_read(a64.UC_ARM64_REG_PSTATE)))
        self._injected += 1
        if self._injected >= MAX_INJECTED:  # no instruction completes to spend the budget
            uc.emu_stop()  # "ready": the next run goes on at the vector
