"""The boot's memory map and the records the shim shares with the host, declared
once: the shim (shim/shim.c, shim/start.S, shim/shim.ld), the compiled serving loop
(_mailbox.c) and the Python side (channel.py, machine.py) all take them from
here.

Why one declaration: the shim and the host are two programs that meet in the
shim's memory, and a word that one of them puts in a different place from the
other is a silent wrong answer. The C side gets its copy from `c_header()`,
written to shim/layout.h, and the shim's link address from `linker_script()`
to shim/layout.ld (`python -m gunyah.boot.layout`, which
`python -m gunyah.toolchain` runs before it rebuilds the shim); they are in
the tree so that installing builds _mailbox.c without a generation step, and a
test fails when one is stale.

Where things are (QEMU's `virt` machine, docs/boot.md sections 2 and 3):
1 GiB of RAM at RAM_BASE, the shim in its top 2 MiB, which the guest's stage-2
map leaves out. In those 2 MiB: the shim's code, data and stacks, then the
host's configuration block, then one mailbox a vCPU. `REGIONS` lists them;
what hosting more VMs adds (per-VM contexts, stage-2 tables, a vGIC's state)
is one more region here, and the test that they do not overlap holds it.
"""

from __future__ import annotations

import dataclasses
import struct
import sys
from dataclasses import dataclass
from pathlib import Path

from ..abi.devicetree import RM_LINK, SPI_BASE
from ..conduit import NUM_REGS  # X0..X17 each way: the trap's registers

SHIM_DIR = Path(__file__).resolve().parent / "shim"

# QEMU virt's RAM and devices (hw/arm/virt.c, base_memmap; highmem=off keeps
# every device below 4 GiB, where the shim's 32-bit stage-2 map reaches)
RAM_BASE = 0x4000_0000
RAM_SIZE = 1 << 30
GUEST_DEVICES_END = RAM_BASE  # the guest's device window: every device below its RAM
# The machine's GIC is a GICv3 (gic-version=3), as the real hypervisor's QEMU
# machine and every Snapdragon have (docs/boot.md section 2): its distributor,
# then one redistributor a CPU, in CPU index order, each two 64 KiB frames
# (RD_base, then SGI_base with the SGIs' and PPIs' registers: Arm IHI 0069
# 12.10). Its CPU interface is system registers (ICC_*).
GICD_BASE = 0x0800_0000  # the GICv3 distributor
GICR_BASE = 0x080A_0000  # the first CPU's redistributor
GICR_STRIDE = 0x2_0000  # RD_base and SGI_base
GICR_SGI_FRAME = 0x1_0000  # SGI_base from RD_base
UART_BASE = 0x0900_0000  # the PL011
FW_CFG_PAGE = 0x0902_0000  # fw_cfg: its DMA interface writes physical memory, the shim's too

# QEMU virt's GIC: its GICv3 has 224 SPIs, interrupt IDs 32..255 (measured:
# GICD_TYPER.ITLinesNumber 7, bookworm's kernel says "GICv3: 224 SPIs
# implemented"; the GICv2 of before had 256, hw/arm/virt.c NUM_IRQS).
# hw/arm/virt.c's a15irqmap gives the machine's devices SPIs 1..9 (the UART,
# the RTC, PCIe's INTx 3..6, GPIO, the secure UART, ACPI's GED) and 16..175
# (32 virtio-mmio transports, GICv2m's 64 on a GICv2, the SMMU's 4 from 74,
# the platform bus's 64 from 112).
GIC_LINES = SPI_BASE + 224
VIRT_DEVICE_SPIS = (range(1, 10), range(16, 176))
# The RM link's interrupts under `gunyah boot` (docs/boot.md section 11): the
# measured SPIs 0x3a0 and 0x3a1 are not in this GIC, so the tree names
# SPIs 0xc0 (tx) and 0xc1 (rx), interrupt IDs 0xe0 and 0xe1, which no virt
# device uses, and the virqs the model hands out (vcpu_run's wake-up ones)
# start at the next interrupt ID, 0xe2, up to the GIC's last, 255: the
# host's are the 32 IDs of GICD_ISENABLER7, all of them.
BOOT_RM_LINK = dataclasses.replace(
    RM_LINK, tx_virq=0xC0, rx_virq=0xC1, free_irq_start=SPI_BASE + 0xC2
)

# The shim's 2 MiB at the top of RAM
SHIM_SIZE = 2 << 20
SHIM_BASE = RAM_BASE + RAM_SIZE - SHIM_SIZE
SHIM_CONFIG = SHIM_BASE + 0x10_0000  # the host's configuration block
CONFIG_SIZE = 0x1_0000
SHIM_MAILBOXES = SHIM_CONFIG + CONFIG_SIZE  # struct mailbox, one per vCPU
MAILBOX_SIZE = 0x400
# At most 8 vCPUs: the project's bound, not the machine's (the virt machine's
# GICv3 has room for 123 redistributors below 4 GiB: 0xf60000 bytes of them,
# 0x20000 each). The shim's slots and stacks, the mailboxes and the compiled
# loop's arrays are all sized by this one number; QEMU numbers up to 16 CPUs
# in a cluster with a GICv3 (hw/arm/virt.c virt_cpu_mp_affinity), so 8 are
# MPIDR Aff0 0 to 7.
MAX_CPUS = 8
SHIM_STACK = 0x4000  # per vCPU, and one more for the boot CPU's start
FRAME_SIZE = 32 * 8  # an exception frame on the shim's stack: x0..x30 and a pad
CONFIG_MAGIC = 0x3330474643485947  # "GYHCFG03" little-endian

# The guest's RAM: from RAM_BASE up to the shim, mapped in 2 MiB blocks
MAX_MEMORY = SHIM_BASE - RAM_BASE  # the most a guest is given, and the default
MIN_MEMORY = 16 << 20
MEMORY_GRANULE = 2 << 20
# A Linux Image loads at the first 2 MiB boundary above RAM's first MiB,
# where QEMU without -kernel keeps its own device tree (Linux's
# Documentation/arch/arm64/booting.rst: an Image is placed 2 MiB aligned)
KERNEL_ADDR = RAM_BASE + 0x20_0000
QEMU_DTB_END = RAM_BASE + 0x10_0000


@dataclass(frozen=True)
class Region:
    """A range of the shim's memory that has one use."""

    name: str
    start: int
    size: int

    @property
    def end(self) -> int:
        return self.start + self.size


# The primary VM's stage 2 as the host wants it (boot/stage2.py): a page of
# control words, the level-2 table for the GiB at STAGE2_WINDOW (the guest's
# RAM), then a pool of level-3 tables. The host writes them; the shim swaps
# its own level-2 entries to match when `gen` moves.
STAGE2_BASE = SHIM_BASE + 0x12_0000
STAGE2_WINDOW = RAM_BASE  # the 1 GiB the host's level-2 table covers
STAGE2_POOL_PAGES = 192  # level-3 tables: at most this many 2 MiB blocks split or changed
STAGE2_CONTROL = STAGE2_BASE
STAGE2_DESIRED = STAGE2_BASE + 0x1000
STAGE2_POOL = STAGE2_BASE + 0x2000
STAGE2_SIZE = STAGE2_POOL + STAGE2_POOL_PAGES * 0x1000 - STAGE2_BASE
STAGE2_DESIRED_WORD = (STAGE2_DESIRED - STAGE2_BASE) // 8  # word indexes in the region
STAGE2_POOL_WORD = (STAGE2_POOL - STAGE2_BASE) // 8

# A secondary VM's vCPU runs on the physical CPU whose primary called
# vcpu_run, entered by the shim with a world switch (docs/boot.md section 12).
# Its whole state (struct vcpu_context) lives in one of VCPU_CONTEXTS slots
# between the mailboxes and the primary's stage 2: the shim loads it at the
# switch in and saves it at the switch out, the host reads and edits it
# between runs (the vCPU's registers as vcpu_run's backend sees them). Each
# secondary VM's stage-2 tables (IPA -> the primary's physical pages, its
# parcels and nothing else) come from a pool after the primary's: the host
# builds them when the VM starts (boot/world.py). No guest's stage 2 maps
# either region.
VCPU_CONTEXTS_BASE = SHIM_MAILBOXES + MAX_CPUS * MAILBOX_SIZE
VCPU_CONTEXT_SIZE = 0x800
VCPU_CONTEXTS = (STAGE2_BASE - VCPU_CONTEXTS_BASE) // VCPU_CONTEXT_SIZE
GUEST_STAGE2_POOL = STAGE2_BASE + STAGE2_SIZE
GUEST_STAGE2_PAGES = (SHIM_BASE + SHIM_SIZE - GUEST_STAGE2_POOL) // 0x1000
# The secondaries' stage 2: 40-bit IPAs (VTCR_EL2.T0SZ 24), walked from level 0
# (SL0 2), 4 KiB granule, 8-bit VMIDs; the primary keeps VMID 0
GUEST_IPA_BITS = 40
PRIMARY_HW_VMID = 0
HW_VMIDS = 256

REGIONS = (
    Region("code, data and stacks", SHIM_BASE, SHIM_CONFIG - SHIM_BASE),
    Region("configuration", SHIM_CONFIG, CONFIG_SIZE),
    Region("mailboxes", SHIM_MAILBOXES, MAX_CPUS * MAILBOX_SIZE),
    Region("vcpu contexts", VCPU_CONTEXTS_BASE, VCPU_CONTEXTS * VCPU_CONTEXT_SIZE),
    Region("stage 2", STAGE2_BASE, STAGE2_SIZE),
    Region("secondaries' stage 2", GUEST_STAGE2_POOL, GUEST_STAGE2_PAGES * 0x1000),
)


@dataclass(frozen=True)
class Field:
    """A member of a shared struct: `words` 64-bit words, or a struct of them."""

    name: str
    comment: str = ""
    words: int = 1
    array: bool = False  # declared as name[words]
    struct: Record | None = None
    volatile: bool = False

    @property
    def size_words(self) -> int:
        return self.struct.words if self.struct is not None else self.words


@dataclass(frozen=True)
class Record:
    """A struct both sides read, all 64-bit little-endian words."""

    name: str
    comment: str
    fields: tuple[Field, ...]

    @property
    def words(self) -> int:
        return sum(f.size_words for f in self.fields)

    def offset(self, name: str) -> int:
        """The word index of field `name` from the struct's first word."""
        at = 0
        for f in self.fields:
            if f.name == name:
                return at
            at += f.size_words
        raise KeyError(name)

    def format(self) -> struct.Struct:
        return struct.Struct(f"<{self.words}Q")


_CONFIG_WHY = "Written by the host at SHIM_CONFIG before the CPUs start."
SHIM_CONFIG_RECORD = Record("shim_config", _CONFIG_WHY, (
    Field("magic", "CONFIG_MAGIC"),
    Field("kernel_entry", "the kernel Image's first instruction"),
    Field("dtb", "the device tree, for x0"),
    Field("cpus", "vCPUs in the VM"),
    Field("ram_base", "the guest's RAM, 2 MiB aligned, below 4 GiB"),
    Field("ram_end"),
    Field("host_irqs", "SPIs from this ID up: raised by the host, in a call"),
))  # fmt: skip

REQUEST = Record("request", "One trapped call, shim -> host.", (
    Field("cpu"),
    Field("kind", "REQ_*"),
    Field("imm", "the immediate; for REQ_FAULT, 1 when it was at EL2"),
    Field("pc", "the trapping instruction"),
    Field("esr"),
    Field("far"),
    Field("x", "REQ_RESULT: x[0] is what the guest received", NUM_REGS, array=True),
))  # fmt: skip

RESPONSE = Record("response", "The answer, host -> shim.", (
    Field("action", "ACT_*"),
    Field("target", "ACT_CPU_ON: the vCPU index to start"),
    Field("mpidr", "ACT_CPU_ON: its MPIDR"),
    Field("entry", "ACT_CPU_ON: where it starts at EL1"),
    Field("context", "ACT_CPU_ON: its x0"),
    Field("irqs", "interrupt IDs to set pending, IRQ_BITS each, 0 ends"),
    Field("x", "", NUM_REGS, array=True),
))  # fmt: skip

TRANSLATION = Record(
    "translation",
    "The calling vCPU's EL1 translation at the trap, shim -> host: what the\n"
    "host needs to follow a guest virtual address (a message queue's buffer)\n"
    "through the guest's own page tables, which lie in RAM it maps.",
    (Field("sctlr", "SCTLR_EL1"), Field("tcr", "TCR_EL1"), Field("ttbr0", "TTBR0_EL1"),
     Field("ttbr1", "TTBR1_EL1")),
)  # fmt: skip

WORLD = Record(
    "world",
    "What the host asks the shim to run, host -> shim, read when run_seq moves.",
    (
        Field("context", "the vCPU's struct vcpu_context (a slot's physical address)"),
        Field("vttbr", "its VM's stage-2 root and hardware VMID (VTTBR_EL2)"),
        Field("flush", "1: invalidate the VMID's TLB entries first (a new VM on it)"),
        Field("kick", "a bit a CPU: send it KICK_SGI first, to end its secondary's run"),
        Field("slice_us", "the run's longest time in us, 0: the shim's slice (10 ms)"),
    ),
)

# EL1 registers a guest can write, saved and restored whole at every switch,
# in the order of struct vcpu_context (shim.c names each one's MRS/MSR)
EL1_SYSREGS = (
    "sctlr_el1", "ttbr0_el1", "ttbr1_el1", "tcr_el1", "mair_el1", "amair_el1", "vbar_el1",
    "contextidr_el1", "tpidr_el0", "tpidr_el1", "tpidrro_el0", "esr_el1", "far_el1",
    "afsr0_el1", "afsr1_el1", "par_el1", "sp_el0", "sp_el1", "elr_el1", "spsr_el1",
    "cpacr_el1", "cntkctl_el1", "csselr_el1",
    "cntv_ctl_el0", "cntv_cval_el0", "cntp_ctl_el0", "cntp_cval_el0",
)  # fmt: skip

# A vCPU's debug and PMU registers, switched lazily as the real hypervisor
# switches them (docs/boot.md section 19): the shim traps them (MDCR_EL2.TDA,
# TPM, TPMCR) until the vCPU first touches them, then loads its own and
# switches them at its runs while it uses them. Room for the architecture's
# 16 breakpoints and 16 watchpoints, and for 16 event counters (more are
# left to EL2: the secondary's MDCR_EL2.HPMN is at most 16).
DEBUG_PAIRS = 16
DEBUG_WORDS = 1 + 4 * DEBUG_PAIRS
PMU_REGS = ("pmcr_el0", "pmselr_el0", "pmuserenr_el0", "pmccfiltr_el0", "pmccntr_el0",
            "pmcntenset_el0", "pmintenset_el1", "pmovsset_el0")  # fmt: skip
PMU_COUNTERS = 16
PMU_WORDS = len(PMU_REGS) + 2 * PMU_COUNTERS
# vcpu_context.lazy, the shim's: the vCPU's debug registers, or PMU, are its own now
LAZY_DEBUG, LAZY_PMU = 1, 2

VCPU_CONTEXT = Record(
    "vcpu_context",
    "A secondary VM's vCPU, whole, in its slot at VCPU_CONTEXTS_BASE: the shim\n"
    "loads it at the switch in and saves it at the switch out (with why it\n"
    "came back); the host reads and sets it between runs.",
    (
        Field("x", "X0..X30", 31, array=True),
        Field("pc", "ELR_EL2: where it goes on"),
        Field("pstate", "SPSR_EL2"),
        Field("exit", "shim: EXIT_*, why it came back"),
        Field("esr", "shim: ESR_EL2 of a trap"),
        Field("far", "shim: FAR_EL2"),
        Field("hpfar", "shim: HPFAR_EL2"),
        Field("vmpidr", "VMPIDR_EL2: the MPIDR the vCPU reads"),
        Field("cntvoff", "CNTVOFF_EL2"),
        Field("flags", "host: RUN_* for this run"),
        Field("ich_vmcr", "ICH_VMCR_EL2: the virtual CPU interface's state"),
        Field("ich_ap0r", "ICH_AP0R0_EL2"),
        Field("ich_ap1r", "ICH_AP1R0_EL2"),
        Field("ich_lr", "ICH_LR0..3_EL2: the vGIC's list registers", 4, array=True),
        Field("sysregs", "EL1 registers, in layout.EL1_SYSREGS's order", len(EL1_SYSREGS),
              array=True),
        Field("fpcr"),
        Field("fpsr"),
        Field("q", "Q0..Q31, two words each (16-byte aligned)", 64, array=True),
        Field("lazy", "shim: LAZY_* state the vCPU uses, switched at each of its runs"),
        Field("debug", "LAZY_DEBUG's: MDSCR_EL1, then DBGBVR, DBGBCR, DBGWVR, DBGWCR 0..15",
              DEBUG_WORDS, array=True),
        Field("pmu", "LAZY_PMU's: PMU_REGS's, then PMEVCNTR and PMEVTYPER 0..15",
              PMU_WORDS, array=True),
    ),
)
VCPU_CONTEXT_X = VCPU_CONTEXT.offset("x")
VCPU_CONTEXT_PC = VCPU_CONTEXT.offset("pc")
VCPU_CONTEXT_PSTATE = VCPU_CONTEXT.offset("pstate")
VCPU_CONTEXT_EXIT = VCPU_CONTEXT.offset("exit")
VCPU_CONTEXT_SYSREGS = VCPU_CONTEXT.offset("sysregs")
VCPU_CONTEXT_FPCR = VCPU_CONTEXT.offset("fpcr")
VCPU_CONTEXT_Q = VCPU_CONTEXT.offset("q")
# Why a secondary came back (vcpu_context.exit): the lower EL's exception
# vector it took (synchronous: a trap with ESR_EL2; IRQ, FIQ or SError: the
# host's interrupt), or the host's request refused (a context or table
# outside the shim's regions)
EXIT_SYNC, EXIT_IRQ, EXIT_FIQ, EXIT_SERROR, EXIT_REFUSED = range(5)
# vcpu_context.flags, the host's for one run: RUN_VGIC, the virtual CPU
# interface on (ICH_HCR_EL2.En) with the list registers, VMCR and active
# priorities loaded and saved back (docs/boot.md section 13). (2 was
# RUN_WFI_WAITS, a WFI waiting on the CPU: since section 17 every WFI traps.)
# RUN_VTIMER_FIRED, the shim's at the exit: the vCPU's virtual timer fired (ENABLE and ISTATUS,
# IMASK clear) and the shim set its IMASK, so that its level falls and the
# vCPU can run; the host makes its PPI 27 pending in the vGIC. RUN_PTIMER_FIRED
# the same for its EL1 physical timer and PPI 30 (docs/boot.md section 20).
RUN_VGIC, RUN_VTIMER_FIRED, RUN_PTIMER_FIRED = 1, 4, 8
ICH_LRS = 4  # ICH_VTR_EL2.ListRegs + 1 on QEMU's cortex-a57: model.vgic.LIST_REGISTERS
EXITS = {"EXIT_SYNC": EXIT_SYNC, "EXIT_IRQ": EXIT_IRQ, "EXIT_FIQ": EXIT_FIQ,
         "EXIT_SERROR": EXIT_SERROR, "EXIT_REFUSED": EXIT_REFUSED}  # fmt: skip

MAILBOX = Record(
    "mailbox",
    "A vCPU's mailbox in the shim's memory, which the host maps too (the\n"
    "guest's RAM is a shared memory file) and the guest cannot reach (it is\n"
    "outside its stage-2 map). The shim writes a request, then bumps req_seq;\n"
    "the host answers, then sets resp_seq to it. Nothing else passes between\n"
    "them: no doorbell, no host file, no semihosting.",
    (
        Field("req_seq", volatile=True),
        Field("resp_seq", volatile=True),
        Field("pad", "", 2, array=True),
        Field("req", struct=REQUEST),
        Field("resp", struct=RESPONSE),
        Field("mmu", "written with each HVC or SMC request", struct=TRANSLATION),
        Field("run_seq", "host: bumped to run `world`, inside a call of this CPU's",
              volatile=True),
        Field("exit_seq", "shim: set to run_seq once the secondary came back", volatile=True),
        Field("world", struct=WORLD),
        Field("wake_at", "host: the counter value at which the first secondary vCPU waiting "
              "in WFI has its timer fire, 0 none: this CPU's idle WFI wakes there and asks "
              "with REQ_TICK", volatile=True),
    ),
)

STAGE2_CONTROL_RECORD = Record(
    "stage2_control",
    "At STAGE2_CONTROL: the host bumps gen once the desired tables are written;\n"
    "a vCPU that sees gen move takes lock, swaps its level-2 entries to the\n"
    "desired ones (break-before-make), sets applied to gen and lets go.",
    (
        Field("gen", "host: the batch posted", volatile=True),
        Field("applied", "shim: the batch carried out", volatile=True),
        Field("lock", "shim: 1 while a vCPU swaps", volatile=True),
    ),
)

RECORDS = (SHIM_CONFIG_RECORD, REQUEST, RESPONSE, TRANSLATION, WORLD, MAILBOX,
           STAGE2_CONTROL_RECORD, VCPU_CONTEXT)

# The interrupts the model raised in the guest during a call ride on its
# response: up to IRQ_SLOTS interrupt IDs, IRQ_BITS each from bit 0, the
# first 0 ending them (no SGI is ever raised this way). The shim sets each
# pending in the distributor before the guest resumes; the rest wait for
# the next response (an ID pending twice is one edge).
IRQ_BITS = 16
# The SGI one CPU's shim sends another to end the secondary's run there at
# once (docs/boot.md section 15): Group 0, so an FIQ, which reaches EL2 while
# a secondary runs (HCR_EL2.FMO) and is signalled only then (ICC_IGRPEN0_EL1);
# Linux's GICv3 driver takes SGIs 0 to 7 for its IPIs (gic_smp_init)
KICK_SGI = 15
IRQ_SLOTS = 64 // IRQ_BITS


def pack_irqs(ids: list[int]) -> int:
    """The response's irqs word for up to IRQ_SLOTS interrupt IDs, each 1 to
    0xffff (ValueError otherwise)."""
    if len(ids) > IRQ_SLOTS or not all(0 < i < 1 << IRQ_BITS for i in ids):
        raise ValueError(f"at most {IRQ_SLOTS} interrupt IDs of 1 to {(1 << IRQ_BITS) - 1}")
    return sum(i << (IRQ_BITS * n) for n, i in enumerate(ids))


def unpack_irqs(word: int) -> list[int]:
    """The interrupt IDs an irqs word names, up to its first 0."""
    ids = []
    for n in range(IRQ_SLOTS):
        i = word >> (IRQ_BITS * n) & ((1 << IRQ_BITS) - 1)
        if not i:
            break
        ids.append(i)
    return ids


# The request's kinds (shim -> host). REQ_RESULT follows an ACT_CPU_ON: how
# carrying it out went. REQ_WAIT: the vCPU waits in WFI with nothing that could
# wake it (no armed timer, no interrupt the GIC would pass on but another
# vCPU's); REQ_WOKE: it woke all the same (another vCPU changed that).
# REQ_TICK: the counter (x[0]) has come to the mailbox's wake_at: a
# secondary's vCPU waiting in WFI has its timer fire (docs/boot.md section 17).
REQ_HVC, REQ_SMC, REQ_FAULT, REQ_RESULT, REQ_WAIT, REQ_WOKE, REQ_TICK = range(7)
REQUESTS = {"REQ_HVC": REQ_HVC, "REQ_SMC": REQ_SMC, "REQ_FAULT": REQ_FAULT,
            "REQ_RESULT": REQ_RESULT, "REQ_WAIT": REQ_WAIT, "REQ_WOKE": REQ_WOKE,
            "REQ_TICK": REQ_TICK}  # fmt: skip
# The response's actions (host -> shim), by the model's action kind (None: resume)
ACT_RESUME, ACT_CPU_ON, ACT_CPU_OFF, ACT_SYSTEM_OFF, ACT_SYSTEM_RESET = range(5)
ACTIONS = {None: ACT_RESUME, "cpu_on": ACT_CPU_ON, "cpu_off": ACT_CPU_OFF,
           "system_off": ACT_SYSTEM_OFF, "system_reset": ACT_SYSTEM_RESET}  # fmt: skip

# Derived: the Python side's view of the same records
CONFIG = SHIM_CONFIG_RECORD.format()
RECORD = REQUEST.format()  # a request and a response are the same size
HEADER_WORDS = REQUEST.offset("x")
MAILBOX_REQ_SEQ = MAILBOX.offset("req_seq")  # word indexes in a mailbox
MAILBOX_RESP_SEQ = MAILBOX.offset("resp_seq")
MAILBOX_REQ = MAILBOX.offset("req")
MAILBOX_RESP = MAILBOX.offset("resp")
MAILBOX_MMU = MAILBOX.offset("mmu")
RESPONSE_IRQS = RESPONSE.offset("irqs")  # word index in a response
MAILBOX_RUN_SEQ = MAILBOX.offset("run_seq")
MAILBOX_EXIT_SEQ = MAILBOX.offset("exit_seq")
MAILBOX_WORLD = MAILBOX.offset("world")
MAILBOX_WAKE_AT = MAILBOX.offset("wake_at")

_DEFINES = (
    ("RAM_BASE", RAM_BASE, "QEMU virt's RAM"),
    ("RAM_SIZE", RAM_SIZE, ""),
    ("SHIM_BASE", SHIM_BASE, "the top 2 MiB of RAM, outside the guest's stage-2 map"),
    ("SHIM_CONFIG", SHIM_CONFIG, "the host's configuration block"),
    ("SHIM_MAILBOXES", SHIM_MAILBOXES, "struct mailbox, one per vCPU"),
    ("MAILBOX_SIZE", MAILBOX_SIZE, ""),
    ("SHIM_MAX_CPUS", MAX_CPUS, "the project's bound: MPIDR Aff0 0 to 7"),
    ("SHIM_STACK", SHIM_STACK, "per vCPU"),
    ("FRAME_SIZE", FRAME_SIZE, "x0..x30 and a pad"),
    ("GUEST_DEVICES_END", GUEST_DEVICES_END, "the guest's devices: all below it but fw_cfg"),
    ("FW_CFG_PAGE", FW_CFG_PAGE, "its DMA interface writes physical memory"),
    ("UART_BASE", UART_BASE, "PL011: the shim's last words before any guest runs"),
    ("GICD_BASE", GICD_BASE, "the virt machine's GICv3: distributor"),
    ("GICR_BASE", GICR_BASE, "CPU 0's redistributor (RD_base)"),
    ("GICR_STRIDE", GICR_STRIDE, "one a CPU, in CPU index order"),
    ("GICR_SGI_FRAME", GICR_SGI_FRAME, "SGI_base from RD_base"),
    ("STAGE2_CONTROL", STAGE2_CONTROL, "struct stage2_control"),
    ("STAGE2_DESIRED", STAGE2_DESIRED, "the level-2 table the host wants"),
    ("STAGE2_POOL", STAGE2_POOL, "the level-3 tables it points at"),
    ("STAGE2_WINDOW", STAGE2_WINDOW, "the GiB that table covers"),
    ("NUM_REGS", NUM_REGS, "X0..X17 each way"),
    ("IRQ_BITS", IRQ_BITS, "response.irqs: interrupt IDs of this many bits"),
    ("KICK_SGI", KICK_SGI, "Group 0 SGI that ends a CPU's secondary run (Linux: 0-7)"),
    ("IRQ_SLOTS", IRQ_SLOTS, "at most this many in one response"),
    ("RESPONSE_IRQS", RESPONSE_IRQS, "word index of irqs in struct response"),
    ("RECORD_HEADER_WORDS", HEADER_WORDS, "a request's or response's words before x[]"),
    ("RECORD_WORDS", REQUEST.words, ""),
    ("MAILBOX_REQ_SEQ", MAILBOX_REQ_SEQ, "word indexes in struct mailbox"),
    ("MAILBOX_RESP_SEQ", MAILBOX_RESP_SEQ, ""),
    ("MAILBOX_REQ", MAILBOX_REQ, ""),
    ("MAILBOX_RESP", MAILBOX_RESP, ""),
    ("MAILBOX_MMU", MAILBOX_MMU, ""),
    ("VCPU_CONTEXTS_BASE", VCPU_CONTEXTS_BASE, "struct vcpu_context slots"),
    ("VCPU_CONTEXT_SIZE", VCPU_CONTEXT_SIZE, ""),
    ("VCPU_CONTEXTS", VCPU_CONTEXTS, ""),
    ("GUEST_STAGE2_POOL", GUEST_STAGE2_POOL, "the secondaries' stage-2 tables"),
    ("GUEST_STAGE2_PAGES", GUEST_STAGE2_PAGES, ""),
    ("GUEST_IPA_BITS", GUEST_IPA_BITS, "the secondaries' IPA size"),
    ("SYSREG_CNTV_CTL", EL1_SYSREGS.index("cntv_ctl_el0"), "indexes in vcpu_context.sysregs"),
    ("SYSREG_CNTV_CVAL", EL1_SYSREGS.index("cntv_cval_el0"), ""),
    ("SYSREG_CNTP_CTL", EL1_SYSREGS.index("cntp_ctl_el0"), ""),
    ("SYSREG_CNTP_CVAL", EL1_SYSREGS.index("cntp_cval_el0"), ""),
    ("CTX_X", 8 * VCPU_CONTEXT_X, "byte offsets in struct vcpu_context, for start.S"),
    ("CTX_PC", 8 * VCPU_CONTEXT_PC, ""),
    ("CTX_PSTATE", 8 * VCPU_CONTEXT_PSTATE, ""),
    ("CTX_EXIT", 8 * VCPU_CONTEXT_EXIT, ""),
    ("CTX_FPCR", 8 * VCPU_CONTEXT_FPCR, ""),
    ("CTX_Q", 8 * VCPU_CONTEXT_Q, ""),
    ("EXIT_SYNC", EXIT_SYNC, "vcpu_context.exit"),
    ("EXIT_IRQ", EXIT_IRQ, ""),
    ("EXIT_FIQ", EXIT_FIQ, ""),
    ("EXIT_SERROR", EXIT_SERROR, ""),
    ("EXIT_REFUSED", EXIT_REFUSED, ""),
    ("RUN_VGIC", RUN_VGIC, "vcpu_context.flags"),
    ("RUN_VTIMER_FIRED", RUN_VTIMER_FIRED, ""),
    ("RUN_PTIMER_FIRED", RUN_PTIMER_FIRED, ""),
    ("LAZY_DEBUG", LAZY_DEBUG, "vcpu_context.lazy"),
    ("LAZY_PMU", LAZY_PMU, ""),
    ("DEBUG_PAIRS", DEBUG_PAIRS, "vcpu_context.debug and .pmu"),
    ("PMU_COUNTERS", PMU_COUNTERS, ""),
    ("PMU_REGS", len(PMU_REGS), ""),
    ("PMU_CNTENSET", PMU_REGS.index("pmcntenset_el0"), "indexes in vcpu_context.pmu"),
    ("PMU_INTENSET", PMU_REGS.index("pmintenset_el1"), ""),
    ("PMU_OVSSET", PMU_REGS.index("pmovsset_el0"), ""),
)


def _comment(text: str, indent: str = "") -> list[str]:
    lines = text.splitlines()
    if len(lines) == 1:
        return [f"{indent}/* {lines[0]} */"]
    return [f"{indent}/* {lines[0]}", *(f"{indent} * {ln}" for ln in lines[1:]), f"{indent} */"]


def _struct(record: Record) -> list[str]:
    out = _comment(record.comment) + [f"struct {record.name} {{"]
    for f in record.fields:
        kind = f"struct {f.struct.name}" if f.struct is not None else "uint64_t"
        decl = f"{'volatile ' if f.volatile else ''}{kind} {f.name}"
        decl += f"[{f.words}];" if f.array else ";"
        out.append(f"    {decl:<28} /* {f.comment} */" if f.comment else f"    {decl}")
    out.append("};")
    return out


def _enum(names: dict[str, int]) -> str:
    return "enum { " + ", ".join(f"{k} = {v}" for k, v in names.items()) + " };"


def c_header() -> str:
    """shim/layout.h: the layout and the records, for C and assembly."""
    out = [
        "/* Written by gunyah.boot.layout (python -m gunyah.boot.layout); do not edit. */",
        "#ifndef GUNYAH_BOOT_LAYOUT_H",
        "#define GUNYAH_BOOT_LAYOUT_H",
        "",
    ]
    for name, value, comment in _DEFINES:
        line = f"#define {name:<20} {value:#x}" if value >= 4096 else f"#define {name:<20} {value}"
        out.append(f"{line:<40} /* {comment} */" if comment else line)
    out += [
        f"#define CONFIG_MAGIC         {CONFIG_MAGIC:#x}ull",
        "",
        "#ifndef __ASSEMBLER__",
        "#include <stdint.h>",
        "",
    ]
    for record in RECORDS:
        out += [*_struct(record), ""]
    out += [_enum(REQUESTS), _enum({f"ACT_{k or 'resume'}".upper(): v for k, v in ACTIONS.items()})]
    out.append("")
    for record in RECORDS:
        out.append(f"_Static_assert(sizeof(struct {record.name}) == {8 * record.words}, "
                   f"\"struct {record.name}\");")  # fmt: skip
    out.append("_Static_assert(__builtin_offsetof(struct response, irqs) == "
               "8 * RESPONSE_IRQS, \"response.irqs\");")  # fmt: skip
    for name, field in (("REQ_SEQ", "req_seq"), ("RESP_SEQ", "resp_seq"), ("REQ", "req"),
                        ("RESP", "resp"), ("MMU", "mmu")):  # fmt: skip
        out.append(f"_Static_assert(__builtin_offsetof(struct mailbox, {field}) == "
                   f"8 * MAILBOX_{name}, \"mailbox.{field}\");")  # fmt: skip
    for name, field in (("X", "x"), ("PC", "pc"), ("PSTATE", "pstate"), ("EXIT", "exit"),
                        ("FPCR", "fpcr"), ("Q", "q")):  # fmt: skip
        out.append(f"_Static_assert(__builtin_offsetof(struct vcpu_context, {field}) == "
                   f"CTX_{name}, \"vcpu_context.{field}\");")  # fmt: skip
    out.append("_Static_assert(CTX_Q % 16 == 0, \"vcpu_context.q is 16-byte aligned\");")
    out.append("_Static_assert(sizeof(struct vcpu_context) <= VCPU_CONTEXT_SIZE, "
               "\"a vcpu_context fits its slot\");")
    out += ["#endif", "#endif", ""]
    return "\n".join(out)


def linker_script() -> str:
    """shim/layout.ld: where the shim links (shim.ld includes it)."""
    return (
        "/* Written by gunyah.boot.layout (python -m gunyah.boot.layout); do not edit. */\n"
        f"SHIM_BASE = {SHIM_BASE:#x};\n"
    )


def generated() -> dict[str, str]:
    """Each generated file's name in shim/ and the text it must hold."""
    return {"layout.h": c_header(), "layout.ld": linker_script()}


def write_generated(directory: Path = SHIM_DIR) -> list[Path]:
    """(Re)write the generated files from this declaration."""
    written = []
    for name, text in generated().items():
        (directory / name).write_text(text)
        written.append(directory / name)
    return written


if __name__ == "__main__":
    print(*write_generated(Path(sys.argv[1]) if len(sys.argv) > 1 else SHIM_DIR), sep="\n")
