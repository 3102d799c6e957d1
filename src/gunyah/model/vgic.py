"""A secondary VM's virtual GICv3, as the host model keeps it: the
distributor and redistributors the VM sees at the addresses its tree gives
(the RM writes them: gunyah/rm/vm_config.py, GICD_BASE and GICR_BASE), the
state of every interrupt, and the list-register values that deliver them.

Why the model keeps it: under `gunyah boot` the vGIC's pages stay unmapped in
the secondary's stage 2, so each access the guest makes comes back to the
host as a data-abort syndrome (gunyah/model/vmmio.py decodes it) and is
answered here, as the real hypervisor answers it from its own state
(quic/gunyah-hypervisor hyp/vm/vgic/src/vdevice.c); the interrupts reach
the guest through the virtual CPU interface's list registers
(ICH_LR<n>_EL2), which the shim loads with the vCPU (docs/boot.md section
12, "What the vGIC stage needs").

What the guest reads is the real vGIC's, where its source says (a GICv3 of
one security state, GICD_CTLR.DS; no LPIs; 988 SPIs; the IIDR of Qualcomm's
JEP106 code and product 'G'); register offsets and bit positions are Arm IHI
0069 (12.9, 12.10, 12.4.6) as the hypervisor declares them
(hyp/platform/gicv3/gicv3.tc, hyp/platform/gicv3/aarch64/gicv3-regs.tc).

The guest is hostile: every access, of any offset, size and value, is
answered (an offset no register has reads as zero and ignores writes, as
the real one does, which also sets GICD_STATUSR) and never raises; the state
is fixed-size arrays, sized when the VM is made.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..bitfield import Bitfield, Field, flag

# Interrupt IDs (IHI 0069 2.2)
SGIS = 16
PRIVATE = 32  # SGIs and PPIs: one bank a vCPU
SPI_NUM = 988  # hyp/platform/gicv3/gicv3.tc GIC_SPI_NUM
SPECIAL = 1020  # 1020..1023: special IDs, no interrupt
IDBITS = 10  # hyp/vm/vgic/vgic.tc VGIC_IDBITS without LPIs or extended IRQs
PIDR2 = 0x30  # hyp/vm/vgic/vgic.tc VGIC_PIDR2: ArchRev 3, a GICv3
IIDR = 0x47 << 24 | 0x070  # vdevice.c: ProductID 'G', Implementer JEP106 0x70
LIST_REGISTERS = 4  # ICH_VTR_EL2.ListRegs + 1 on QEMU's cortex-a57 (config/arch: CPU_GICH_LR_COUNT)

# The SGI generation registers (IHI 0069 12.11.15, 12.11.3, 12.11.14), as
# (Op0, Op1, CRn, CRm, Op2): writes trap to EL2 while HCR_EL2.IMO/FMO are set,
# and the hypervisor emulates them (hyp/vm/vgic/src/sysregs.c)
ICC_SGI1R_EL1 = (3, 0, 12, 11, 5)
ICC_ASGI1R_EL1 = (3, 0, 12, 11, 6)  # an alias of SGI0R: virtual accesses are non-secure
ICC_SGI0R_EL1 = (3, 0, 12, 11, 7)
SGIR = Bitfield(  # gicv3-regs.tc ICC_SGIR_EL1
    "ICC_SGIR_EL1", 64,
    Field("TargetList", 0, 16), Field("Aff1", 16, 8), Field("INTID", 24, 4), Field("Aff2", 32, 8),
    flag("IRM", 40), Field("RS", 44, 4), Field("Aff3", 48, 8),
)  # fmt: skip

# Frames (IHI 0069 12.1): the distributor's 64 KiB, each redistributor's two
FRAME = 0x1_0000
GICD_SIZE = FRAME
GICR_SIZE = 2 * FRAME  # RD_base then SGI_base

# Distributor offsets (gicv3.tc gicd_t)
GICD_CTLR, GICD_TYPER, GICD_IIDR, GICD_TYPER2, GICD_STATUSR = 0x0, 0x4, 0x8, 0xC, 0x10
GICD_SETSPI_NSR, GICD_CLRSPI_NSR = 0x40, 0x48
GICD_IGROUPR, GICD_ISENABLER, GICD_ICENABLER = 0x80, 0x100, 0x180
GICD_ISPENDR, GICD_ICPENDR, GICD_ISACTIVER, GICD_ICACTIVER = 0x200, 0x280, 0x300, 0x380
GICD_IPRIORITYR, GICD_ICFGR, GICD_IROUTER = 0x400, 0xC00, 0x6100
GICD_SGIR, GICD_PIDR2 = 0xF00, 0xFFE8
# Redistributor offsets: RD_base (gicv3.tc gicr_rd_base_t), SGI_base (gicr_sgi_base_t)
GICR_CTLR, GICR_IIDR, GICR_TYPER, GICR_STATUSR, GICR_WAKER = 0x0, 0x4, 0x8, 0x10, 0x14
GICR_PIDR2 = 0xFFE8
GICR_IGROUPR0, GICR_ISENABLER0, GICR_ICENABLER0 = 0x80, 0x100, 0x180
GICR_ISPENDR0, GICR_ICPENDR0, GICR_ISACTIVER0, GICR_ICACTIVER0 = 0x200, 0x280, 0x300, 0x380
GICR_IPRIORITYR, GICR_ICFGR0 = 0x400, 0xC00

GICD_CTLR_DS = Bitfield(
    "GICD_CTLR (DS)", 32,
    flag("EnableGrp0", 0), flag("EnableGrp1", 1), flag("ARE", 4), flag("DS", 6),
    flag("E1NWF", 7), flag("nASSGIreq", 8), flag("RWP", 31),
)  # fmt: skip
GICD_TYPER_FIELDS = Bitfield(
    "GICD_TYPER", 32,
    Field("ITLinesNumber", 0, 5), Field("CPUNumber", 5, 3), flag("ESPI", 8),
    flag("SecurityExtn", 10), Field("num_LPIs", 11, 5), flag("MBIS", 16), flag("LPIS", 17),
    flag("DVIS", 18), Field("IDbits", 19, 5), flag("A3V", 24), flag("No1N", 25), flag("RSS", 26),
    Field("ESPI_range", 27, 5),
)  # fmt: skip
GICR_TYPER_FIELDS = Bitfield(
    "GICR_TYPER", 64,
    flag("PLPIS", 0), flag("VLPIS", 1), flag("Dirty", 2), flag("DirectLPI", 3), flag("Last", 4),
    flag("DPGS", 5), flag("MPAM", 6), flag("RVPEID", 7), Field("Processor_Num", 8, 16),
    Field("CommonLPIAff", 24, 2), flag("VSGI", 26), Field("PPInum", 27, 5),
    Field("Aff0", 32, 8), Field("Aff1", 40, 8), Field("Aff2", 48, 8), Field("Aff3", 56, 8),
)  # fmt: skip
GICR_WAKER_FIELDS = Bitfield(
    "GICR_WAKER", 32, flag("IMPDEF", 0), flag("ProcessorSleep", 1), flag("ChildrenAsleep", 2),
    flag("IMPDEF2", 31),
)  # fmt: skip
# GICD_STATUSR: why an access failed (read or write of a reserved or RO/WO register)
STATUSR_RRD, STATUSR_WRD, STATUSR_RWOD, STATUSR_WROD = 1, 2, 4, 8

# The list registers (gicv3-regs.tc ICH_LR_EL2_HW0/HW1: EOI and pINTID share bits)
ICH_LR = Bitfield(
    "ICH_LR<n>_EL2", 64,
    Field("vINTID", 0, 32), Field("pINTID", 32, 13), Field("Priority", 48, 8), flag("Group", 60),
    flag("HW", 61), Field("State", 62, 2),
)  # fmt: skip
_VINTID = ICH_LR["vINTID"]
LR_INVALID, LR_PENDING, LR_ACTIVE, LR_PENDING_ACTIVE = 0, 1, 2, 3
LR_EOI = 1 << 41  # HW 0: a maintenance interrupt at the guest's EOI (pINTID's bit 9)

GICD_TYPER_VALUE = GICD_TYPER_FIELDS.encode({
    "ITLinesNumber": (SPI_NUM + 31) // 32, "MBIS": True, "IDbits": IDBITS - 1, "A3V": True,
    "No1N": True,  # config/arch/gic-qemu.conf GICV3_HAS_1N=0
})  # fmt: skip


@dataclass(frozen=True)
class ListRegister:
    """One ICH_LR<n>_EL2 value, decoded."""

    vintid: int
    state: int = LR_PENDING
    priority: int = 0
    group1: bool = True
    hw: bool = False
    pintid: int = 0  # HW 1: the physical interrupt the guest's EOI deactivates

    def encode(self) -> int:
        return ICH_LR.encode({"vINTID": self.vintid, "pINTID": self.pintid if self.hw else 0,
                              "Priority": self.priority, "Group": self.group1, "HW": self.hw,
                              "State": self.state})  # fmt: skip

    @classmethod
    def decode(cls, word: int) -> ListRegister:
        """Any 64-bit word (bits no field names are dropped; a HW 0 entry's
        pINTID bits, EOI among them, read as 0)."""
        d = ICH_LR.decode(word & (1 << 64) - 1)
        hw = bool(d["HW"])
        return cls(int(d["vINTID"]), int(d["State"]), int(d["Priority"]), bool(d["Group"]), hw,
                   int(d["pINTID"]) if hw else 0)  # fmt: skip


@dataclass
class _Irq:
    """One interrupt's delivery state (vgic.tc vgic_delivery_state, in part)."""

    group1: bool = False
    enabled: bool = False
    pending: bool = False
    active: bool = False
    listed: bool = False  # in a list register now
    priority: int = 0
    edge: bool = False
    route: int = 0  # SPIs: GICD_IROUTER's affinity (Aff0 here: the vCPU index)
    level: bool = False  # asserted as a level by its source, not withdrawn (level_sw)


@dataclass
class _Redistributor:
    irqs: list[_Irq] = field(default_factory=lambda: [_Irq(edge=i < SGIS) for i in range(PRIVATE)])
    sleep: bool = True  # GICR_WAKER.ProcessorSleep, set out of reset


class VGic:
    """One VM's vGIC: a distributor at `gicd` and `vcpus` redistributors
    from `gicr`, `stride` apart (GICR_SIZE or more, a multiple of 64 KiB,
    as the RM's parser requires: gunyah/rm/vm_config.py)."""

    def __init__(self, vcpus: int, gicd: int, gicr: int, stride: int = GICR_SIZE) -> None:
        if not 1 <= vcpus <= 256 or stride < GICR_SIZE or stride % FRAME:
            raise ValueError("a vGIC has 1 to 256 redistributors, 128 KiB or more apart")
        self.vcpus, self.gicd, self.gicr, self.stride = vcpus, gicd, gicr, stride
        self.ctlr = 0  # EnableGrp0 | EnableGrp1 as the guest set them
        self.statusr = 0
        self.spis = [_Irq() for _ in range(SPI_NUM)]
        self.redist = [_Redistributor() for _ in range(vcpus)]
        # the interrupts that may be pending, active or listed, by key (_key):
        # delivery looks at these only, not at all 1020 a run
        self._hot: set[int] = set()
        # an SPI's source, asked whether its level still holds when the guest
        # ends the interrupt (the virq_check_pending event); without one it holds
        self.level_checks: dict[int, Callable[[], bool]] = {}

    @staticmethod
    def _key(vcpu: int, intid: int) -> int:
        return intid if intid >= PRIVATE else (vcpu + 1) << 16 | intid

    def _touch(self, vcpu: int, intid: int) -> None:
        self._hot.add(self._key(vcpu, intid))

    # -- the guest's accesses ------------------------------------------------
    def claims(self, ipa: int) -> bool:
        """Whether `ipa` is in the distributor's or a redistributor's frames."""
        return (self.gicd <= ipa < self.gicd + GICD_SIZE
                or self.gicr <= ipa < self.gicr + self.vcpus * self.stride
                and (ipa - self.gicr) % self.stride < GICR_SIZE)  # fmt: skip

    def access(self, vcpu: int, ipa: int, size: int, write: bool, value: int = 0) -> int:
        """The guest's load (the value) or store (0) of `size` bytes at `ipa`
        from vCPU `vcpu`. Any offset, size and value is answered: an access
        the registers do not take (not 4 bytes, or 8 to a 64-bit register,
        or 1 to a priority byte; misaligned; unknown) reads 0 and changes
        nothing but GICD_STATUSR."""
        if not self.claims(ipa) or not 0 <= vcpu < self.vcpus or size not in (1, 2, 4, 8):
            return 0
        value &= (1 << 8 * size) - 1
        if ipa % size:
            return self._bad(write)
        if self.gicd <= ipa < self.gicd + GICD_SIZE:
            return self._gicd(vcpu, ipa - self.gicd, size, write, value)
        index, offset = divmod(ipa - self.gicr, self.stride)
        return self._gicr(vcpu, index, offset, size, write, value)

    def _bad(self, write: bool, distributor: bool = True) -> int:
        """An access no register takes: RAZ/WI, noted in GICD_STATUSR when
        it was the distributor's (a redistributor's GICR_STATUSR reads 0)."""
        if distributor:
            self.statusr |= STATUSR_WRD if write else STATUSR_RRD
        return 0

    def _irq(self, vcpu: int, intid: int) -> _Irq | None:
        if 0 <= intid < PRIVATE:
            return self.redist[vcpu].irqs[intid]
        if PRIVATE <= intid < PRIVATE + SPI_NUM:
            return self.spis[intid - PRIVATE]
        return None

    def _bits(self, vcpu: int, first: int, offset: int, write: bool, value: int) -> int:
        """A one-bit-an-interrupt register (IGROUPR, I[SC]ENABLER, I[SC]PENDR,
        I[SC]ACTIVER) for the 32 interrupts from `first`: which one, by its
        offset's bits 9:7 (the redistributor's SGI_base frame has them at the
        distributor's offsets)."""
        kind = offset & 0x380
        word = 0
        for bit in range(32):
            irq = self._irq(vcpu, first + bit)
            if irq is None:
                continue
            if write and value >> bit & 1 or write and kind == GICD_IGROUPR:
                one = bool(value >> bit & 1)
                if kind == GICD_IGROUPR:
                    irq.group1 = one
                elif kind in (GICD_ISENABLER, GICD_ICENABLER):
                    irq.enabled = kind == GICD_ISENABLER
                elif kind in (GICD_ISPENDR, GICD_ICPENDR):
                    irq.pending = kind == GICD_ISPENDR
                    self._touch(vcpu, first + bit)
                else:
                    irq.active = kind == GICD_ISACTIVER
                    self._touch(vcpu, first + bit)
            state = {GICD_IGROUPR: irq.group1, GICD_ISENABLER: irq.enabled,
                     GICD_ICENABLER: irq.enabled, GICD_ISPENDR: irq.pending,
                     GICD_ICPENDR: irq.pending}.get(kind, irq.active)  # fmt: skip
            word |= int(state) << bit
        return 0 if write else word

    def _bytes(self, vcpu: int, first: int, size: int, write: bool, value: int) -> int:
        """IPRIORITYR: a byte an interrupt, byte or word accesses."""
        word = 0
        for n in range(size):
            irq = self._irq(vcpu, first + n)
            if irq is None:
                continue
            if write:
                irq.priority = value >> 8 * n & 0xFF
            word |= irq.priority << 8 * n
        return 0 if write else word

    def _config(self, vcpu: int, first: int, write: bool, value: int) -> int:
        """ICFGR: two bits an interrupt, bit 1 set for an edge. SGIs are
        always edge; the rest take the guest's choice."""
        word = 0
        for n in range(16):
            irq = self._irq(vcpu, first + n)
            if irq is None:
                continue
            if write and first + n >= SGIS:
                irq.edge = bool(value >> (2 * n + 1) & 1)
            word |= int(irq.edge) << (2 * n + 1)
        return 0 if write else word

    def _gicd(self, vcpu: int, offset: int, size: int, write: bool, value: int) -> int:
        if GICD_IROUTER <= offset < GICD_IROUTER + 8 * (PRIVATE + SPI_NUM):
            if size not in (4, 8):
                return self._bad(write)
            spi = (offset - GICD_IROUTER) // 8 - PRIVATE
            if not 0 <= spi < SPI_NUM:
                return 0  # IROUTER<n> for n < 32 is reserved: RAZ/WI
            irq = self.spis[spi]
            high = offset % 8 == 4
            if write and not high:
                irq.route = value & 0xFF
            return 0 if write or high else irq.route
        if GICD_IPRIORITYR <= offset < GICD_IPRIORITYR + SPECIAL:
            if size not in (1, 4):
                return self._bad(write)
            first = offset - GICD_IPRIORITYR
            return 0 if first < PRIVATE else self._bytes(vcpu, first, size, write, value)
        if size != 4:
            return self._bad(write)
        if GICD_IGROUPR <= offset < GICD_IPRIORITYR:
            first = 32 * (offset % 0x80 // 4)
            if first < PRIVATE:
                return 0  # with ARE set, the SGIs' and PPIs' bits are the redistributor's
            return self._bits(vcpu, first, offset, write, value)
        if GICD_ICFGR <= offset < GICD_ICFGR + 4 * 64:
            first = 16 * ((offset - GICD_ICFGR) // 4)
            return 0 if first < PRIVATE else self._config(vcpu, first, write, value)
        if offset == GICD_CTLR:
            if write:
                self.ctlr = value & 0x3  # EnableGrp0, EnableGrp1
            return 0 if write else self.ctlr | 1 << 4 | 1 << 6  # ARE and DS read as one
        if offset in (GICD_SETSPI_NSR, GICD_CLRSPI_NSR, GICD_SGIR):
            if not write:
                return self._bad_rw(write_only=True)
            line = self._irq(vcpu, value & 0x3FF)
            if line is not None and value & 0x3FF >= PRIVATE and offset != GICD_SGIR:
                line.pending = offset == GICD_SETSPI_NSR
                self._touch(vcpu, value & 0x3FF)
            return 0
        if offset == GICD_STATUSR:
            if write:
                self.statusr &= ~value
            return 0 if write else self.statusr
        fixed = {GICD_TYPER: GICD_TYPER_VALUE, GICD_IIDR: IIDR, GICD_TYPER2: 0, GICD_PIDR2: PIDR2}
        if offset in fixed:
            if write:
                self.statusr |= STATUSR_WROD
                return 0
            return fixed[offset]
        return self._bad(write)

    def _bad_rw(self, write_only: bool) -> int:
        self.statusr |= STATUSR_RWOD if write_only else STATUSR_WROD
        return 0

    def typer(self, index: int) -> int:
        """GICR_TYPER of redistributor `index`: its vCPU's affinity (Aff0 the
        index, as the RM's VMPIDR gives), Last on the last one."""
        return GICR_TYPER_FIELDS.encode({"Processor_Num": index, "Aff0": index & 0xFF,
                                         "Last": index == self.vcpus - 1})  # fmt: skip

    def _gicr(self, vcpu: int, index: int, offset: int, size: int, write: bool, value: int) -> int:
        rd = self.redist[index]
        if offset >= FRAME:  # SGI_base
            offset -= FRAME
            if GICR_IPRIORITYR <= offset < GICR_IPRIORITYR + PRIVATE:
                if size not in (1, 4):
                    return self._bad(write, False)
                return self._bytes(index, offset - GICR_IPRIORITYR, size, write, value)
            if size != 4:
                return self._bad(write, False)
            if offset in (GICR_IGROUPR0, GICR_ISENABLER0, GICR_ICENABLER0, GICR_ISPENDR0,
                          GICR_ICPENDR0, GICR_ISACTIVER0, GICR_ICACTIVER0):  # fmt: skip
                return self._bits(index, 0, offset, write, value)
            if offset in (GICR_ICFGR0, GICR_ICFGR0 + 4):
                return self._config(index, 16 * ((offset - GICR_ICFGR0) // 4), write, value)
            return self._bad(write, False)
        if offset == GICR_TYPER or offset == GICR_TYPER + 4:
            if size == 8 and offset == GICR_TYPER or size == 4:
                if write:
                    return 0
                return self.typer(index) >> 8 * (offset - GICR_TYPER) & (1 << 8 * size) - 1
            return self._bad(write, False)
        if size != 4:
            return self._bad(write, False)
        if offset == GICR_WAKER:
            if write:
                rd.sleep = bool(value & 2)
                return 0
            return GICR_WAKER_FIELDS.encode(
                {"ProcessorSleep": rd.sleep, "ChildrenAsleep": rd.sleep}
            )
        fixed = {GICR_CTLR: 0, GICR_IIDR: IIDR, GICR_PIDR2: PIDR2, GICR_STATUSR: 0}
        if offset in fixed:
            return 0 if write else fixed[offset]
        return self._bad(write, False)

    # -- interrupts from outside the guest ----------------------------------
    def raise_irq(self, intid: int, vcpu: int = 0) -> bool:
        """Set `intid` pending (a PPI or SGI in vCPU `vcpu`'s bank); False
        for an ID the vGIC does not have."""
        irq = self._irq(vcpu, intid) if 0 <= vcpu < self.vcpus else None
        if irq is not None:
            irq.pending = True
            self._touch(vcpu, intid)
        return irq is not None

    def lower_irq(self, intid: int, vcpu: int = 0) -> bool:
        """A level-sensitive source of `intid` (vCPU `vcpu`'s bank for a PPI)
        has let its line fall: its pending state goes with it, as the GIC's
        for a level-sensitive interrupt (GICv3 architecture specification,
        4.1.1); an active one stays active. False for an ID it lacks."""
        irq = self._irq(vcpu, intid) if 0 <= vcpu < self.vcpus else None
        if irq is not None:
            irq.pending = False
        return irq is not None

    def generate_sgi(self, sender: int, value: int, group1: bool) -> list[int]:
        """A write of ICC_SGIR_EL1 `value` by vCPU `sender` (ICC_SGI1R_EL1:
        `group1`; ICC_SGI0R_EL1 and ICC_ASGI1R_EL1: not), as
        vgic_icc_generate_sgi does it (hyp/vm/vgic/src/deliver.c): every vCPU
        but the sender with IRM, else each TargetList bit's vCPU (Aff0 the
        bit plus 16 times RS, with Aff1..3: vCPU n is Aff0 n, the rest 0; a
        target no vCPU has is ignored); the SGI made pending there, unless
        the write is not group 1 and the target has that SGI in Group 1.
        The vCPUs it was made pending for, lowest first."""
        if not 0 <= sender < self.vcpus:
            return []
        f = SGIR.decode(value)
        intid = int(f["INTID"])
        if f["IRM"]:
            targets = [v for v in range(self.vcpus) if v != sender]
        elif f["Aff1"] or f["Aff2"] or f["Aff3"]:
            targets = []
        else:
            base, bits = 16 * int(f["RS"]), int(f["TargetList"])
            targets = [base + b for b in range(16) if bits >> b & 1 and base + b < self.vcpus]
        sent = []
        for v in targets:
            irq = self.redist[v].irqs[intid]
            if not group1 and irq.group1:
                continue  # SGI0R and ASGI1R do not generate group 1 SGIs
            irq.pending = True
            self._touch(v, intid)
            sent.append(v)
        return sent

    def assert_spi(self, intid: int, edge_only: bool = False) -> bool:
        """virq_assert of a bound SPI (hyp/vm/vgic/src/distrib.c): pending,
        unless `edge_only` and the guest configured it level-triggered
        (GICD_ICFGR), when nothing happens. Whether it was made pending. A
        level assertion of a level-triggered SPI holds: when the guest ends
        the interrupt, its source is asked again (`save`)."""
        irq = self._irq(0, intid) if PRIVATE <= intid < PRIVATE + SPI_NUM else None
        if irq is None or edge_only and not irq.edge:
            return False
        irq.pending = True
        irq.level = irq.level or not edge_only
        self._touch(0, intid)
        return True

    def clear_spi(self, intid: int) -> None:
        """virq_clear: a level assertion withdrawn; a level-triggered SPI
        waiting (pending, not yet listed) for it no longer is; an
        edge-triggered one keeps its edge."""
        irq = self._irq(0, intid) if PRIVATE <= intid < PRIVATE + SPI_NUM else None
        if irq is None:
            return
        irq.level = False
        if not irq.edge and not irq.listed:
            irq.pending = False

    def _ended(self, intid: int, irq: _Irq) -> None:
        """A level-triggered SPI the guest has ended (neither pending nor
        active): pending again while its source's level holds (doorbell.c
        doorbell_handle_virq_check_pending), else its level falls."""
        if not irq.level or irq.edge or irq.pending or irq.active or intid < PRIVATE:
            return
        check = self.level_checks.get(intid)
        if check is None or check():
            irq.pending = True
            self._touch(0, intid)
        else:
            irq.level = False

    def _target(self, intid: int, irq: _Irq) -> int:
        return irq.route if intid >= PRIVATE and irq.route < self.vcpus else 0

    def deliverable(self, vcpu: int) -> list[int]:
        """The interrupt IDs that could be signalled to vCPU `vcpu` now,
        highest priority (lowest value) first, then lowest ID: pending, not
        active, enabled, and its group enabled in the distributor."""
        found = []
        for intid in self._candidates(vcpu):
            irq = self._irq(vcpu, intid)
            assert irq is not None
            if intid >= PRIVATE and self._target(intid, irq) != vcpu:
                continue
            group_on = self.ctlr >> int(irq.group1) & 1
            if irq.pending and not irq.active and not irq.listed and irq.enabled and group_on:
                found.append((irq.priority, intid))
        return [intid for _, intid in sorted(found)]

    def load(self, vcpu: int, count: int = LIST_REGISTERS) -> list[int]:
        """List register values for vCPU `vcpu`'s next run (at most `count`,
        the rest zero: invalid). First the interrupts it has active, so that
        its EOI finds them, then what `deliverable` names; each is listed
        there, with its pending and active state, until `save`."""
        count = max(0, min(count, LIST_REGISTERS))
        active = [i for i in self._candidates(vcpu) if self._is_active_in(vcpu, i)]
        words = []
        for intid in (active + self.deliverable(vcpu))[:count]:
            irq = self._irq(vcpu, intid)
            assert irq is not None
            state = (LR_ACTIVE if irq.active else 0) | (LR_PENDING if irq.pending else 0)
            irq.listed, irq.pending, irq.active = True, False, False
            words.append(ListRegister(intid, state, irq.priority, irq.group1).encode())
        return words + [0] * (count - len(words))

    def _candidates(self, vcpu: int) -> list[int]:
        """The IDs of vCPU `vcpu`'s bank and the SPIs that may be pending,
        active or listed, lowest first; the rest are dropped from the set."""
        ids = []
        for key in sorted(self._hot):
            bank, intid = key >> 16, key & 0xFFFF
            irq = self._irq(max(bank - 1, 0), intid)
            if irq is None or not (irq.pending or irq.active or irq.listed):
                self._hot.discard(key)
            elif bank in (0, vcpu + 1):
                ids.append(intid)
        return ids

    def _is_active_in(self, vcpu: int, intid: int) -> bool:
        irq = self._irq(vcpu, intid)
        assert irq is not None
        mine = intid < PRIVATE or self._target(intid, irq) == vcpu
        return mine and irq.active and not irq.listed

    def save(self, vcpu: int, words: list[int]) -> None:
        """The list registers as the run left them: each listed interrupt's
        state comes back (invalid: acknowledged and ended; active; pending
        still). A word naming an interrupt not listed for it is ignored."""
        if not 0 <= vcpu < self.vcpus:
            return
        for word in words[:LIST_REGISTERS]:
            irq = self._irq(vcpu, _VINTID.get(word))
            if irq is None or not irq.listed:  # an empty one among them: each exit has some
                continue
            lr = ListRegister.decode(word)
            irq.listed = False
            irq.pending = irq.pending or lr.state in (LR_PENDING, LR_PENDING_ACTIVE)
            irq.active = lr.state in (LR_ACTIVE, LR_PENDING_ACTIVE)
            self._ended(lr.vintid, irq)
