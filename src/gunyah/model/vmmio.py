"""A guest's trap to EL2 as the hardware reports it (the syndrome), and the
VMMIO access a data abort's syndrome describes.

Every vCPU backend (the unicorn engine, the EL2 shim's world switch) hands the
model the same thing the hardware hands the hypervisor: ESR_EL2 (exception
class, and for a data abort ISV, SAS, SSE, SRT, SF, AR, WnR, DFSC), FAR, the
IPA (HPFAR_EL2 with FAR's page offset), X0..X30 and the PC. What the model does
with a data abort follows the hypervisor's emulation
(quic/gunyah-hypervisor: hyp/core/vdevice/aarch64/src/vdevice.c,
vdevice_handle_vcpu_trap_data_abort_guest; docs/real-gunyah.md section 17),
which is not what a load would do on hardware:

* only a syndrome with ISV set is emulated; any other data abort is unhandled
  and becomes an abort injected into the guest;
* a store's value is the WHOLE source register, whatever the access size
  (docs/real-gunyah.md section 13: `strb w21` reports all 64 bits of x21);
  SRT 31 reads as zero (XZR);
* a load's value is the owner's resume word, not masked to the access size:
  with SSE set and a size below 8 it is "sign-extended" as
  `(value ^ bit) - bit` with bit the size's top bit (which sign-extends only a
  value that fits the size), and with SF clear it is cut to 32 bits; SRT 31
  discards it.

The bit layouts are the Arm ARM's ESR_ELx and its data-abort ISS, as the
hypervisor declares them (hyp/core/base/aarch64/sysregs.tc,
ESR_EL2_ISS_DATA_ABORT; hyp/core/base/armv8/enums.tc for the exception
classes and fault status codes).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..bitfield import Bitfield, Field, flag

MASK64 = (1 << 64) - 1
MASK32 = (1 << 32) - 1
XZR = 31  # register number 31 in a load/store's Rt: the zero register
GPRS = 31  # X0..X30

ESR = Bitfield("ESR_EL2", 32, Field("ISS", 0, 25), flag("IL", 25), Field("EC", 26, 6))

DATA_ABORT_ISS = Bitfield(
    "ESR_EL2.ISS (data abort)", 25,
    Field("DFSC", 0, 6), flag("WnR", 6), flag("S1PTW", 7), flag("CM", 8), flag("EA", 9),
    flag("FnV", 10), Field("SET", 11, 2), flag("VNCR", 13), flag("AR", 14), flag("SF", 15),
    Field("SRT", 16, 5), flag("SSE", 21), Field("SAS", 22, 2), flag("ISV", 24),
)  # fmt: skip

# Exception classes (Arm ARM ESR_ELx.EC; hyp/core/base/armv8/enums.tc)
EC_UNKNOWN = 0x00
EC_WFX = 0x01
EC_SVC64 = 0x15
EC_HVC64 = 0x16
EC_SMC64 = 0x17
EC_SYSREG = 0x18  # MSR, MRS or system instruction trapped
EC_INST_ABORT_LOWER = 0x20
EC_INST_ABORT = 0x21  # from the same EL: what the guest's own vector sees
EC_DATA_ABORT_LOWER = 0x24
EC_DATA_ABORT = 0x25
EC_BRK = 0x3C

# ESR_EL2.ISS for EC_SYSREG (Arm ARM D17.2.37; hyp/core/base/armv8/*.tc
# ESR_EL2_ISS_MSR_MRS): Direction 1 is a read (MRS)
SYSREG_ISS = Bitfield(
    "ESR_EL2.ISS (MSR/MRS)", 25,
    flag("Direction", 0), Field("CRm", 1, 4), Field("Rt", 5, 5), Field("CRn", 10, 4),
    Field("Op1", 14, 3), Field("Op2", 17, 3), Field("Op0", 20, 2),
)  # fmt: skip


def sysreg_esr(op0: int, op1: int, crn: int, crm: int, op2: int, rt: int, read: bool) -> int:
    """ESR_EL2 of a trapped MSR (read False) or MRS of S<op0>_<op1>_C<crn>_C<crm>_<op2>."""
    iss = SYSREG_ISS.encode({"Op0": op0, "Op1": op1, "CRn": crn, "CRm": crm, "Op2": op2,
                             "Rt": rt, "Direction": read})  # fmt: skip
    return ESR.encode({"EC": EC_SYSREG, "IL": True, "ISS": iss})


# Fault status codes (ISS.DFSC / IFSC)
FSC_TRANSLATION = (0x04, 0x05, 0x06, 0x07)  # levels 0..3
FSC_PERMISSION = (0x0D, 0x0E, 0x0F)  # levels 1..3
FSC_SYNC_EXTERNAL = 0x10
FSC_TRANSLATION_3 = 0x07
FSC_PERMISSION_3 = 0x0F


def data_abort_esr(
    *, write: bool, size: int | None = None, reg: int = 0, sign_extend: bool = False,
    sf: bool = True, acquire_release: bool = False, dfsc: int = FSC_TRANSLATION_3,
) -> int:
    """ESR_EL2 of a data abort from the guest (EC 0x24, IL set): with a valid
    ISS (ISV) when `size` is given, without one otherwise."""
    iss: dict[str, int | bool] = {"DFSC": dfsc, "WnR": write}
    if size is not None:
        iss.update(ISV=True, SAS=size.bit_length() - 1, SSE=sign_extend, SRT=reg, SF=sf,
                   AR=acquire_release)  # fmt: skip
    return ESR.encode({"EC": EC_DATA_ABORT_LOWER, "IL": True,
                       "ISS": DATA_ABORT_ISS.encode(iss)})  # fmt: skip


@dataclass(frozen=True)
class Syndrome:
    """One trap of a guest to EL2: ESR_EL2, FAR_EL2, the faulting IPA (None
    where HPFAR_EL2 holds none), X0..X30 and the PC of the instruction."""

    esr: int
    far: int = 0
    ipa: int | None = None
    regs: tuple[int, ...] = (0,) * GPRS
    pc: int = 0

    @property
    def ec(self) -> int:
        return ESR.get(self.esr, "EC")

    @property
    def iss(self) -> int:
        return ESR.get(self.esr, "ISS")

    def reg(self, n: int) -> int:
        """Xn as an instruction reads it: XZR (31) is zero."""
        return 0 if n >= GPRS else self.regs[n] & MASK64


@dataclass(frozen=True)
class Access:
    """A data access the hypervisor can emulate: from a syndrome with ISV."""

    ipa: int
    size: int  # 1, 2, 4 or 8 bytes
    write: bool
    value: int  # a store's: the whole source register; a load's: 0
    reg: int  # SRT: the load's destination, the store's source (31: XZR)
    sign_extend: bool  # SSE
    sf: bool  # SF: a 64-bit destination register
    acquire_release: bool  # AR

    def loaded(self, value: int) -> int:
        """What the load's register receives when the owner resumes it with
        `value` (vdevice.c: no size mask; SSE's xor-subtract; SF's 32-bit cut)."""
        value &= MASK64
        if self.sign_extend and self.size != 8:
            bit = 1 << (self.size * 8 - 1)
            value = ((value ^ bit) - bit) & MASK64
        if not self.sf:
            value &= MASK32
        return value

    def writeback(self, value: int) -> tuple[int, int] | None:
        """(register, value) a load's resume writes; None for a store or XZR."""
        if self.write or self.reg == XZR:
            return None
        return self.reg, self.loaded(value)


def decode_access(s: Syndrome) -> Access | None:
    """The access of a data abort from the guest whose ISS is valid; None for
    any other syndrome (another class, or ISV clear: not emulated)."""
    if s.ec != EC_DATA_ABORT_LOWER or s.ipa is None:
        return None
    iss, get = s.iss, DATA_ABORT_ISS.get
    if not get(iss, "ISV"):
        return None
    write = bool(get(iss, "WnR"))
    reg = get(iss, "SRT")
    return Access(
        ipa=s.ipa,
        size=1 << get(iss, "SAS"),
        write=write,
        value=s.reg(reg) if write else 0,
        reg=reg,
        sign_extend=bool(get(iss, "SSE")),
        sf=bool(get(iss, "SF")),
        acquire_release=bool(get(iss, "AR")),
    )


def dfsc(s: Syndrome) -> int:
    """The fault status code of an abort's syndrome."""
    return DATA_ABORT_ISS.get(s.iss, "DFSC")
