/* The EL2 shim: it puts the kernel at EL1 behind a stage-2 map that holds
 * the guest's RAM and QEMU's devices and nothing of the shim's, and forwards
 * every HVC and SMC the kernel makes to the hypervisor model on the host,
 * through the calling vCPU's mailbox in shared memory (layout.h); then it does
 * what the model asks: resume with its registers, start a vCPU, power one
 * off, power the machine off or reset it (the last four through QEMU's own
 * PSCI, which an SMC from EL2 reaches). The guest's stage 2 over its RAM is
 * the host's to decide (stage2_sync). A guest access outside its map gets
 * the synchronous external abort the real Gunyah (and KVM) injects; the host
 * never hears of it.
 * A WFI is trapped: the shim waits in its place, and tells the host when
 * nothing could ever wake the vCPU, so a guest that has stopped for good
 * ends the boot at once. The interrupts the model raised in the guest during
 * a call come with its answer; the shim sets them pending in the GIC before
 * the guest resumes.
 * It saves no FP state: built without FP/SIMD (toolchain.NO_FP).
 * A secondary VM's vCPU runs here too, inside the primary's vcpu_run call:
 * while the host answers that call it may ask, through the calling CPU's
 * mailbox (run_seq, world), for the vCPU to run on this CPU; the shim
 * switches worlds (run_guest), and its next exception from EL1 comes back
 * to the host as the vCPU's exit (docs/boot.md section 12). */
#include "layout.h"   /* generated from gunyah/boot/layout.py */

#define EC_WFX      0x01
#define EC_IABT_LOW 0x20
#define EC_DABT_LOW 0x24
#define EC_HVC64    0x16
#define EC_SMC64    0x17
#define ESR_IL      (1ull << 25)
#define FSC_EXTABT  0x10           /* synchronous external abort */
#define FSC_TRANSLATION 0x04       /* translation fault, level 0 (to 0x07, level 3) */

#define QEMU_PSCI_CPU_OFF      0x84000002u
#define QEMU_PSCI_CPU_ON64     0xc4000003u
#define QEMU_PSCI_SYSTEM_OFF   0x84000008u
#define QEMU_PSCI_SYSTEM_RESET 0x84000009u
#define PSCI_ALREADY_ON        (-4)
#define PSCI_ON_PENDING        (-5)
#define PSCI_INTERNAL_FAILURE  (-6)
#define CPU_ON_TRIES           (1u << 20)  /* a vCPU told to stop is off within a few */

#define HCR_VM   (1ull << 0)
#define HCR_RW   (1ull << 31)
#define HCR_TWI  (1ull << 13)
#define HCR_TSC  (1ull << 19)
#define HCR_FMO  (1ull << 3)
#define HCR_IMO  (1ull << 4)
#define HCR_AMO  (1ull << 5)
#define HCR_APK  (1ull << 40)
#define HCR_API  (1ull << 41)
#define ICH_HCR_EN 1ull              /* ICH_HCR_EL2.En: the virtual CPU interface on */
#define ICC_SRE_EL2_VALUE 0xfull   /* GICv3: Enable (EL1 may use ICC_SRE_EL1), DIB, DFB, SRE */
#define ICC_CTLR_EOIMODE 2ull      /* ICC_CTLR_EL1.EOImode: EOIR drops priority only */
#define SCTLR_EL1_RESET 0x30d00800ull   /* RES1 bits only: MMU and caches off */

/* Stage 2, 4 KiB granule (VMSAv8-64), the primary's and every secondary's
 * alike, so a world switch never rewrites VTCR_EL2 (each write of it, as of
 * VTTBR_EL2, SCTLR_EL1 or TCR_EL1, flushes QEMU's whole TLB): 40-bit IPA
 * (T0SZ 24) from level 0 (SL0 2), PS 44 bits (a walk from level 0 with PS
 * of 42 bits or less is inconsistent: Arm ARM AArch64.S2InconsistentSL; a
 * cortex-a57 has 44), inner shareable write-back walks; VS 0: 8-bit VMIDs.
 * The primary's map covers the first 4 GiB (s2_l1's first four entries). */
#define VTCR_VALUE ((1ull << 31) | (4ull << 16) | (3ull << 12) | (1ull << 10) | (1ull << 8) \
                    | (2ull << 6) | (64 - GUEST_IPA_BITS))
#define VTTBR_BADDR 0x0000fffffffffffeull
#define S2_TABLE   3ull
#define S2_BLOCK   1ull
#define S2_PAGE    3ull
#define S2_AF      (1ull << 10)
#define S2_RW      (3ull << 6)
#define S2_INNER   (3ull << 8)
#define S2_NORMAL  (0xfull << 2)        /* Normal, write-back */
#define S2_DEVICE  (0x1ull << 2)        /* Device-nGnRE */
#define S2_XN      (1ull << 54)
#define S2_RAM     (S2_AF | S2_RW | S2_INNER | S2_NORMAL)
#define S2_DEV     (S2_AF | S2_RW | S2_DEVICE | S2_XN)
#define S2_OA      0x0000fffffffff000ull   /* a descriptor's output address */
#define SZ_2M      0x200000ull
#define SZ_1G      0x40000000ull

/* PSTATE bits an injected exception keeps or sets (as KVM's enter_exception64) */
#define PSR_NZCV  (0xfull << 28)
#define PSR_DIT   (1ull << 24)
#define PSR_PAN   (1ull << 22)
#define PSR_SSBS  (1ull << 12)
#define PSR_DAIF  (0xfull << 6)
#define PSR_EL1H  0x5ull
#define PSR_EL1T  0x4ull
#define PSR_EL0T  0x0ull
#define PSR_MODE  0x1full                   /* M[4:0]: M[4] set is AArch32 */
#define SCTLR_SPAN   (1ull << 23)
#define SCTLR_DSSBS  (1ull << 44)

struct cpu_slot {
    uint64_t entry, context;            /* where CPU_ON sends it at EL1 */
};

static struct cpu_slot slots[SHIM_MAX_CPUS];
static uint64_t s2_l0[512] __attribute__((aligned(4096)));
static uint64_t s2_l1[512] __attribute__((aligned(4096)));
static uint64_t s2_l2[4][512] __attribute__((aligned(4096)));
static uint64_t s2_l3[512] __attribute__((aligned(4096)));   /* the 2 MiB around fw_cfg */
#define config ((volatile struct shim_config *)SHIM_CONFIG)
#define stage2_ctl ((volatile struct stage2_control *)STAGE2_CONTROL)
#define stage2_desired ((volatile const uint64_t *)STAGE2_DESIRED)

#define sysreg_read(r) ({ uint64_t v_; __asm__ volatile("mrs %0, " #r : "=r"(v_)); v_; })
#define sysreg_write(r, v) __asm__ volatile("msr " #r ", %0" : : "r"((uint64_t)(v)))

extern void __attribute__((noreturn)) enter_el1(uint64_t entry, uint64_t x0);


static uint64_t psci(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
    register uint64_t x0 __asm__("x0") = fn;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

/* Only before any guest code runs: afterwards the UART is the guest's. */
static void say(const char *s)
{
    volatile uint32_t *dr = (volatile uint32_t *)UART_BASE;
    for (; *s; s++)
        *dr = (uint32_t)*s;
}

static __attribute__((noreturn)) void power_off(void)
{
    psci(QEMU_PSCI_SYSTEM_OFF, 0, 0, 0);
    for (;;) __asm__ volatile("wfe");
}

static uint64_t hcr_primary;            /* HCR_EL2 while the primary runs */
/* Whether this CPU's EL2 timer PPI is enabled in the distributor since the
 * CPU last started: the primary's GIC driver disables every PPI as it
 * brings a CPU up (after the shim's start), and never touches this one
 * after (a kernel at EL1 does not use the EL2 timer). */
static uint8_t htimer_enabled[SHIM_MAX_CPUS];

static uint64_t cpu_index(void)
{
    uint64_t mpidr = sysreg_read(mpidr_el1);
    return (mpidr & 0xff) + ((mpidr >> 8) & 0xff) * 16;  /* QEMU virt, GICv3: 16 per cluster */
}

static volatile struct mailbox *mailbox(uint64_t cpu)
{
    return (volatile struct mailbox *)(SHIM_MAILBOXES + cpu * MAILBOX_SIZE);
}

static void set_pending(uint64_t irqs);
static void run_guest(volatile struct mailbox *box);
static void gic_cpu_setup(uint64_t cpu);

/* Post the request in the vCPU's mailbox and wait for the answer there; the
 * host polls every mailbox, so nothing needs to wake it. The interrupts the
 * answer names are pending before it returns. */
static void exchange(uint64_t cpu, struct request *req, struct response *resp)
{
    volatile struct mailbox *box = mailbox(cpu);
    const uint64_t *src = (const uint64_t *)req;
    volatile uint64_t *dst = (volatile uint64_t *)&box->req;
    for (unsigned i = 0; i < sizeof *req / 8; i++)
        dst[i] = src[i];
    uint64_t seq = box->req_seq + 1;
    __asm__ volatile("dmb ish" ::: "memory");
    box->req_seq = seq;
    while (box->resp_seq != seq) {
        if (box->run_seq != box->exit_seq)   /* the host runs a secondary here */
            run_guest(box);
        else
            __asm__ volatile("yield");
    }
    __asm__ volatile("dmb ish" ::: "memory");
    const volatile uint64_t *from = (const volatile uint64_t *)&box->resp;
    uint64_t *to = (uint64_t *)resp;
    for (unsigned i = 0; i < sizeof *resp / 8; i++)
        to[i] = from[i];
    if (resp->irqs)
        set_pending(resp->irqs);
}

/* The guest's IPA space, identity-mapped: devices (not fw_cfg), then RAM. */
static void build_stage2(uint64_t ram_base, uint64_t ram_end)
{
    uint64_t fw_block = FW_CFG_PAGE & ~(SZ_2M - 1);
    s2_l0[0] = (uint64_t)s2_l1 | S2_TABLE;
    for (uint64_t gib = 0; gib < 4; gib++)
        s2_l1[gib] = (uint64_t)s2_l2[gib] | S2_TABLE;
    for (uint64_t i = 0; i < GUEST_DEVICES_END / SZ_2M; i++) {
        uint64_t pa = i * SZ_2M;
        s2_l2[0][i] = pa == fw_block ? (uint64_t)s2_l3 | S2_TABLE : pa | S2_DEV | S2_BLOCK;
    }
    for (uint64_t j = 0; j < 512; j++) {
        uint64_t pa = fw_block + j * 0x1000;
        s2_l3[j] = pa == FW_CFG_PAGE ? 0 : pa | S2_DEV | S2_PAGE;
    }
    (void)ram_base, (void)ram_end;      /* the host's desired table maps them */
    for (uint64_t j = 0; j < 512; j++)
        s2_l2[STAGE2_WINDOW / SZ_1G][j] = stage2_desired[j];
    __asm__ volatile("dsb ish" ::: "memory");
}

/* The primary's stage 2 follows the host (gunyah/boot/stage2.py): when the
 * host has posted a new level-2 table for the RAM's GiB (stage2_control.gen
 * moved), one vCPU at a time swaps each entry that differs, break-before-make
 * (Arm ARM D8.17: invalid, DSB, TLBI, DSB, then the new entry), and sets
 * `applied`. The host has already edited in place what needs no break, so
 * the final TLBI covers those too. */
static void stage2_lock(void)
{
    while (__atomic_exchange_n(&stage2_ctl->lock, 1, __ATOMIC_ACQUIRE))
        while (stage2_ctl->lock)
            __asm__ volatile("yield");
}

static void stage2_unlock(void)
{
    __atomic_store_n(&stage2_ctl->lock, 0, __ATOMIC_RELEASE);
}

static void stage2_sync(void)
{
    if (stage2_ctl->gen == stage2_ctl->applied)
        return;
    stage2_lock();
    uint64_t gen = stage2_ctl->gen;
    __asm__ volatile("dmb ish" ::: "memory");   /* the tables before the generation */
    if (gen != stage2_ctl->applied) {
        volatile uint64_t *live = s2_l2[STAGE2_WINDOW / SZ_1G];
        for (uint64_t j = 0; j < 512; j++) {
            uint64_t want = stage2_desired[j];
            if (live[j] == want)
                continue;
            if (live[j] & 1) {
                live[j] = 0;
                __asm__ volatile("dsb ishst; tlbi vmalls12e1is; dsb ish" ::: "memory");
            }
            live[j] = want;
        }
        __asm__ volatile("dsb ishst; tlbi vmalls12e1is; dsb ish; isb" ::: "memory");
        stage2_ctl->applied = gen;
    }
    stage2_unlock();
}

/* Whether the live tables map `ipa` now. */
static int stage2_mapped(uint64_t ipa)
{
    if (ipa >> 32)
        return 0;
    uint64_t l1 = s2_l1[ipa >> 30];
    if ((l1 & 3) != S2_TABLE)
        return 0;
    uint64_t l2 = ((volatile uint64_t *)(l1 & S2_OA))[ipa >> 21 & 511];
    if ((l2 & 3) == S2_BLOCK)
        return 1;
    if ((l2 & 3) != S2_TABLE)
        return 0;
    return (((volatile uint64_t *)(l2 & S2_OA))[ipa >> 12 & 511] & 3) == S2_PAGE;
}

/* A stage-2 translation fault another vCPU's swap may have caused: once no
 * swap is in progress, retry the access if its IPA is mapped now (the real
 * hypervisor does the same: hyp/mem/addrspace/armv8/src/abort.c,
 * addrspace_handle_guest_translation_fault). */
static int stage2_retry(uint64_t esr)
{
    uint64_t fsc = esr & 0x3f;
    if (fsc < FSC_TRANSLATION || fsc > FSC_TRANSLATION + 3)
        return 0;
    stage2_sync();
    while (stage2_ctl->lock)
        __asm__ volatile("yield");
    __asm__ volatile("dmb ish" ::: "memory");
    return stage2_mapped((sysreg_read(hpfar_el2) >> 4) << 12 & S2_OA);
}

static void setup_el2(void)
{
    uint64_t hcr = HCR_VM | HCR_RW | HCR_TSC | HCR_TWI;
    uint64_t isar1 = sysreg_read(id_aa64isar1_el1);
    if (isar1 & (0xffull << 4 | 0xffull << 24))   /* APA/API or GPA/GPI: pointer auth */
        hcr |= HCR_API | HCR_APK;
    sysreg_write(vtcr_el2, VTCR_VALUE);
    sysreg_write(vttbr_el2, (uint64_t)s2_l0);        /* VMID 0 */
    sysreg_write(hcr_el2, hcr);
    hcr_primary = hcr;
    sysreg_write(cptr_el2, 0x33ff);                 /* no FP/SIMD traps */
    sysreg_write(hstr_el2, 0);
    sysreg_write(cnthctl_el2, 3);                   /* EL1 reads the physical counter and timer */
    sysreg_write(cntvoff_el2, 0);
    sysreg_write(cnthp_ctl_el2, 0);                 /* the EL2 timer: only while a secondary runs */
    sysreg_write(icc_sre_el2, ICC_SRE_EL2_VALUE);   /* the GICv3's system registers at EL1 */
    sysreg_write(ich_hcr_el2, 0);                   /* no virtual CPU interface for the primary */
    sysreg_write(vpidr_el2, sysreg_read(midr_el1));
    sysreg_write(vmpidr_el2, sysreg_read(mpidr_el1));
    sysreg_write(mdcr_el2, (sysreg_read(pmcr_el0) >> 11) & 0x1f);  /* HPMN = PMCR.N */
    sysreg_write(sctlr_el1, SCTLR_EL1_RESET);
    __asm__ volatile("isb; tlbi vmalls12e1; dsb nsh; isb" ::: "memory");
}

static int config_ok(uint64_t index)
{
    uint64_t base = config->ram_base, end = config->ram_end;
    return config->magic == CONFIG_MAGIC && index < SHIM_MAX_CPUS && index < config->cpus
        && config->host_irqs >= 32
        && base >= GUEST_DEVICES_END && base < end && end <= SHIM_BASE
        && base % SZ_2M == 0 && end % SZ_2M == 0;
}

void __attribute__((noreturn)) shim_main(uint64_t index)
{
    if (!config_ok(index)) {
        say("gunyah-shim: no valid configuration from the host; powering off\n");
        power_off();
    }
    htimer_enabled[index] = 0;          /* its kernel's GIC set-up is to come */
    if (index == 0) {
        build_stage2(config->ram_base, config->ram_end);
        setup_el2();
        enter_el1(config->kernel_entry, config->dtb);
    }
    setup_el2();
    enter_el1(slots[index].entry, slots[index].context);
}

/* A stage-2 abort: the guest touched an address outside its map. Inject the
 * synchronous external abort KVM injects (inject_abt64, enter_exception64):
 * ESR_EL1 with the EC of the guest's level, IL as trapped and FSC 0x10,
 * FAR_EL1 the faulting address, and the guest's own EL1 vector. */
static void inject_external_abort(int instruction)
{
    uint64_t spsr = sysreg_read(spsr_el2);
    uint64_t mode = spsr & 0x1f;
    int from_el0 = mode == 0 || (spsr & 0x10);     /* EL0t, or any AArch32 mode */
    uint64_t ec = instruction ? (from_el0 ? 0x20 : 0x21) : (from_el0 ? 0x24 : 0x25);
    uint64_t offset = (spsr & 0x10) ? 0x600 : mode == 0 ? 0x400 : mode == 4 ? 0x000 : 0x200;
    uint64_t sctlr = sysreg_read(sctlr_el1);
    uint64_t pstate = (spsr & (PSR_NZCV | PSR_DIT | PSR_PAN)) | PSR_DAIF | PSR_EL1H;
    if (!(sctlr & SCTLR_SPAN))
        pstate |= PSR_PAN;
    if (sctlr & SCTLR_DSSBS)
        pstate |= PSR_SSBS;
    sysreg_write(esr_el1, (sysreg_read(esr_el2) & ESR_IL) | ec << 26 | FSC_EXTABT);
    sysreg_write(far_el1, sysreg_read(far_el2));
    sysreg_write(elr_el1, sysreg_read(elr_el2));
    sysreg_write(spsr_el1, spsr);
    sysreg_write(elr_el2, sysreg_read(vbar_el1) + offset);
    sysreg_write(spsr_el2, pstate);
}

/* QEMU's CPU_ON, tried again while the target is still stopping (the model
 * counts a vCPU off once its CPU_OFF was taken; QEMU a moment later). */
static int64_t start_cpu(uint64_t target, uint64_t mpidr)
{
    extern char secondary_start[];
    int64_t r = PSCI_INTERNAL_FAILURE;
    for (uint32_t i = 0; i < CPU_ON_TRIES; i++) {
        r = (int64_t)psci(QEMU_PSCI_CPU_ON64, mpidr, (uint64_t)secondary_start, target);
        if (r != PSCI_ALREADY_ON && r != PSCI_ON_PENDING)
            break;
    }
    return r == 0 ? 0 : PSCI_INTERNAL_FAILURE;
}

/* The GICv3's registers (Arm IHI 0069: 12.9 the distributor, 12.10 the
 * redistributor, 12.2 the CPU interface's system registers) and the virt
 * machine's timer PPIs */
#define GICD_CTLR      0x0000
#define GICD_TYPER     0x0004
#define GICD_ISENABLER 0x0100
#define GICD_ISPENDR   0x0200
#define GICD_PIDR2     0xffe8
#define GICD_LINES(typer) (32u * (((typer) & 0x1fu) + 1))  /* ITLinesNumber */
#define GICR_IGROUPR0  0x0080          /* in the SGI_base frame */
#define GICR_ISENABLER0 0x0100
#define GIC_ARCH_REV(pidr2) ((pidr2) >> 4 & 0xf)
#define FIRST_SPI      32
#define GIC_ENABLES    0x3u            /* GICD_CTLR: Group 0 and Group 1 (DS 1: no EL3) */
#define SGIS           0xffffu         /* only another vCPU sends one */
#define PPI_HTIMER     26              /* the EL2 physical timer's (virt.c ARCH_TIMER_NS_EL2_IRQ) */
#define PPI_VTIMER     27
#define PPI_PTIMER     30
#define TIMER_PPIS     ((1u << 26) | (1u << PPI_VTIMER) | (1u << 29) | (1u << PPI_PTIMER))
#define CNT_ARMED(ctl) (((ctl) & 3) == 1)   /* ENABLE set, IMASK clear */
#define CNT_IMASK      2ull
#define CNT_STATE      7ull                  /* ENABLE, IMASK, ISTATUS */
#define CNT_FIRED      5ull                  /* ENABLE and ISTATUS, IMASK clear */

static uint32_t gic(uint64_t base, uint64_t offset)
{
    return *(volatile uint32_t *)(base + offset);
}

/* This CPU's redistributor's SGI_base frame: QEMU lays them out in CPU index
 * order (hw/intc/arm_gicv3_common.c), one GICR_STRIDE each. */
static uint64_t gicr_sgi(uint64_t cpu)
{
    return GICR_BASE + cpu * GICR_STRIDE + GICR_SGI_FRAME;
}

/* Set pending each interrupt ID the host's answer names (IRQ_SLOTS of
 * IRQ_BITS, the first 0 ending them): a write of its bit to GICD_ISPENDR
 * (IHI 0069 12.9.21), which changes no other interrupt's state. Only SPIs
 * the distributor has: an SGI or PPI ID, or one past its lines, is refused. */
static void set_pending(uint64_t irqs)
{
    uint32_t lines = GICD_LINES(gic(GICD_BASE, GICD_TYPER));
    for (unsigned n = 0; n < IRQ_SLOTS; n++) {
        uint32_t id = (uint32_t)(irqs >> (n * IRQ_BITS)) & ((1u << IRQ_BITS) - 1);
        if (id == 0)
            break;
        if (id < FIRST_SPI || id >= lines)
            continue;
        *(volatile uint32_t *)(GICD_BASE + GICD_ISPENDR + 4ull * (id / 32)) = 1u << (id % 32);
    }
    __asm__ volatile("dsb sy" ::: "memory");
}

/* Could anything but another vCPU wake this one from WFI? An armed EL1
 * timer whose interrupt is enabled, or any other enabled interrupt but an
 * SGI or an SPI only the host raises (from config->host_irqs up: the host
 * raises those during some vCPU's call, so only another vCPU could bring
 * one), with the distributor and this CPU's interface (ICC_IGRPEN0/1_EL1,
 * the primary's own while it runs: HCR_EL2.IMO is clear) passing them on.
 * A GIC that is not the GICv3 we know: assume something could. */
static int can_wake(uint64_t cpu)
{
    if (GIC_ARCH_REV(gic(GICD_BASE, GICD_PIDR2)) != 3 || cpu >= SHIM_MAX_CPUS)
        return 1;
    uint64_t groups = (sysreg_read(icc_igrpen0_el1) | sysreg_read(icc_igrpen1_el1)) & 1;
    if (!(gic(GICD_BASE, GICD_CTLR) & GIC_ENABLES) || !groups)
        return 0;                       /* no interrupt reaches this vCPU */
    uint32_t banked = gic(gicr_sgi(cpu), GICR_ISENABLER0);  /* its SGIs and PPIs */
    if ((banked & 1u << PPI_VTIMER) && CNT_ARMED(sysreg_read(cntv_ctl_el0)))
        return 1;
    if ((banked & 1u << PPI_PTIMER) && CNT_ARMED(sysreg_read(cntp_ctl_el0)))
        return 1;
    if (banked & ~(SGIS | TIMER_PPIS))
        return 1;
    uint32_t words = (gic(GICD_BASE, GICD_TYPER) & 0x1f) + 1;
    uint64_t host = config->host_irqs;
    for (uint32_t n = 1; n < words; n++) {
        uint32_t enabled = gic(GICD_BASE, GICD_ISENABLER + 4 * n);
        if (host <= 32 * n)
            enabled = 0;                /* all the host's */
        else if (host < 32 * (n + 1))
            enabled &= (1u << (host - 32 * n)) - 1;
        if (enabled)
            return 1;                   /* an SPI: a device may raise it */
    }
    return 0;
}

/* A trapped WFI: wait in its place (the guest's interrupt is taken at EL1
 * once we return past it). Where nothing could wake the vCPU, the host hears
 * so first, and again if it wakes all the same. WFE is not trapped. */
static void wait_for_interrupt(uint64_t cpu, struct request *req)
{
    struct response resp;
    sysreg_write(elr_el2, req->pc + 4);
    uint64_t at = cpu < SHIM_MAX_CPUS ? mailbox(cpu)->wake_at : 0;
    if (at) {   /* a secondary's vCPU waits for its timer: the host hears when it fires */
        gic_cpu_setup(cpu);
        sysreg_write(cnthp_cval_el2, at);
        sysreg_write(cnthp_ctl_el2, 1);             /* ENABLE, IMASK clear */
        __asm__ volatile("isb; dsb sy; wfi" ::: "memory");
        sysreg_write(cnthp_ctl_el2, 0);             /* its level falls: the primary never sees it */
        __asm__ volatile("isb" ::: "memory");
        if (sysreg_read(cntpct_el0) >= at) {
            req->kind = REQ_TICK;
            req->x[0] = sysreg_read(cntpct_el0);
            exchange(cpu, req, &resp);              /* its answer's interrupts: now pending */
        }
        return;
    }
    if (can_wake(cpu)) {
        __asm__ volatile("dsb sy; wfi" ::: "memory");
        return;
    }
    req->kind = REQ_WAIT;
    exchange(cpu, req, &resp);
    __asm__ volatile("dsb sy; wfi" ::: "memory");
    req->kind = REQ_WOKE;
    exchange(cpu, req, &resp);
}

/* x0..x30 of the trapping vCPU, as start.S saved them. */
void shim_trap(uint64_t *frame)
{
    uint64_t esr = sysreg_read(esr_el2);
    uint64_t ec = esr >> 26 & 0x3f;
    uint64_t elr = sysreg_read(elr_el2);
    uint64_t cpu = cpu_index();
    struct request req;                 /* every field set below: no zeroing on the hot path */
    struct response resp;

    req.cpu = cpu;
    req.esr = esr;
    req.far = sysreg_read(far_el2);

    if (ec == EC_IABT_LOW || ec == EC_DABT_LOW) {
        if (!stage2_retry(esr))
            inject_external_abort(ec == EC_IABT_LOW);
        return;
    }
    if (ec == EC_WFX && (esr & 3) == 0) {   /* ISS.TI 0: WFI (a cortex-a57 has no WFIT) */
        req.pc = elr;
        req.imm = 0;
        for (int i = 0; i < 18; i++)
            req.x[i] = frame[i];
        wait_for_interrupt(cpu, &req);
        return;
    }
    if (ec == EC_HVC64) {
        req.kind = REQ_HVC;
        req.pc = elr - 4;               /* ELR is already past an HVC */
    } else if (ec == EC_SMC64) {
        req.kind = REQ_SMC;
        req.pc = elr;                   /* a trapped SMC leaves ELR on itself */
        sysreg_write(elr_el2, elr + 4);
    } else {
        req.kind = REQ_FAULT;
        req.pc = elr;
    }
    req.imm = req.kind == REQ_FAULT ? 0 : esr & 0xffff;
    for (int i = 0; i < 18; i++)
        req.x[i] = frame[i];
    if (req.kind != REQ_FAULT) {
        volatile struct translation *mmu = &mailbox(cpu)->mmu;
        mmu->sctlr = sysreg_read(sctlr_el1);
        mmu->tcr = sysreg_read(tcr_el1);
        mmu->ttbr0 = sysreg_read(ttbr0_el1);
        mmu->ttbr1 = sysreg_read(ttbr1_el1);
    }
    exchange(cpu, &req, &resp);
    stage2_sync();                      /* what the call changed, before the guest goes on */
    if (req.kind == REQ_FAULT)
        power_off();
    for (int i = 0; i < 18; i++)
        frame[i] = resp.x[i];

    switch (resp.action) {
    case ACT_CPU_ON:
        if (resp.target < SHIM_MAX_CPUS) {
            slots[resp.target].entry = resp.entry;
            slots[resp.target].context = resp.context;
            frame[0] = (uint64_t)start_cpu(resp.target, resp.mpidr);
        } else {
            frame[0] = (uint64_t)PSCI_INTERNAL_FAILURE;
        }
        req.kind = REQ_RESULT;          /* the same call: how carrying it out went */
        for (int i = 0; i < 18; i++)
            req.x[i] = frame[i];
        exchange(cpu, &req, &resp);
        break;
    case ACT_CPU_OFF:
        psci(QEMU_PSCI_CPU_OFF, 0, 0, 0);
        break;
    case ACT_SYSTEM_OFF:
        power_off();
    case ACT_SYSTEM_RESET:
        psci(QEMU_PSCI_SYSTEM_RESET, 0, 0, 0);
        power_off();
    default:
        break;
    }
}

/* -- the world switch (docs/boot.md section 12) ---------------------------- */

/* The EL1 registers a guest can write, in layout.EL1_SYSREGS's order */
#define EL1_SYSREGS(X) X(sctlr_el1) X(ttbr0_el1) X(ttbr1_el1) X(tcr_el1) X(mair_el1) \
    X(amair_el1) X(vbar_el1) X(contextidr_el1) X(tpidr_el0) X(tpidr_el1) X(tpidrro_el0) \
    X(esr_el1) X(far_el1) X(afsr0_el1) X(afsr1_el1) X(par_el1) X(sp_el0) X(sp_el1) \
    X(elr_el1) X(spsr_el1) X(cpacr_el1) X(cntkctl_el1) X(csselr_el1) \
    X(cntv_ctl_el0) X(cntv_cval_el0) X(cntp_ctl_el0) X(cntp_cval_el0)
#define COUNT_ONE(r) +1
_Static_assert(0 EL1_SYSREGS(COUNT_ONE) == sizeof(((struct vcpu_context *)0)->sysregs) / 8,
               "EL1_SYSREGS matches layout.EL1_SYSREGS");

static void el1_save(uint64_t *to)
{
    unsigned n = 0;
#define SAVE_ONE(r) to[n++] = sysreg_read(r);
    EL1_SYSREGS(SAVE_ONE)
#undef SAVE_ONE
}

/* From the EL1 registers `now` holds (as el1_save left them) to `want`,
 * writing only those that differ: under QEMU a write of SCTLR, TCR or a
 * TTBR with another ASID flushes its whole TLB, and the worlds often agree
 * on them. A timer whose control or compare value changes is turned off
 * first, so that neither world's timer fires in the other's compare value
 * on the way, and its control is then written whatever `now` held: equal
 * saved controls (both worlds' timers armed, say) must not leave it off. */
static void el1_switch(const uint64_t *now, const uint64_t *want)
{
    unsigned n = 0;
    int vtimer_off = now[SYSREG_CNTV_CTL] != want[SYSREG_CNTV_CTL]
        || now[SYSREG_CNTV_CVAL] != want[SYSREG_CNTV_CVAL];
    int ptimer_off = now[SYSREG_CNTP_CTL] != want[SYSREG_CNTP_CTL]
        || now[SYSREG_CNTP_CVAL] != want[SYSREG_CNTP_CVAL];
    if (vtimer_off)
        sysreg_write(cntv_ctl_el0, 0);
    if (ptimer_off)
        sysreg_write(cntp_ctl_el0, 0);
#define SWITCH_ONE(r) if (now[n] != want[n]) sysreg_write(r, want[n]); n++;
    EL1_SYSREGS(SWITCH_ONE)
#undef SWITCH_ONE
    if (vtimer_off && now[SYSREG_CNTV_CTL] == want[SYSREG_CNTV_CTL])
        sysreg_write(cntv_ctl_el0, want[SYSREG_CNTV_CTL]);
    if (ptimer_off && now[SYSREG_CNTP_CTL] == want[SYSREG_CNTP_CTL])
        sysreg_write(cntp_ctl_el0, want[SYSREG_CNTP_CTL]);
}

extern uint64_t world_switch(volatile struct vcpu_context *ctx);

#define SLICE_HZ 100        /* a secondary's run lasts at most 10 ms */
#define QUANTUM_HZ 1000     /* and, unless a host interrupt comes, at least 1 ms */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
    return a < b ? a : b;
}

/* Whether the host's request names a context slot and a stage-2 root of the
 * shim's own regions: nothing else may become a guest's state or tables.
 * (run_guest also refuses a context whose PSTATE is not AArch64 EL0 or EL1:
 * the slot is the host's to write, and an ERET to EL2 would hand the shim
 * over.) */
static int world_ok(uint64_t context, uint64_t vttbr)
{
    uint64_t root = vttbr & VTTBR_BADDR;
    uint64_t vmid = vttbr >> 48 & 0xff;
    return context >= VCPU_CONTEXTS_BASE
        && context < VCPU_CONTEXTS_BASE + VCPU_CONTEXTS * (uint64_t)VCPU_CONTEXT_SIZE
        && (context - VCPU_CONTEXTS_BASE) % VCPU_CONTEXT_SIZE == 0
        && root >= GUEST_STAGE2_POOL && root < GUEST_STAGE2_POOL + GUEST_STAGE2_PAGES * 0x1000ull
        && root % 0x1000 == 0 && vmid != 0 && (vttbr & ~(VTTBR_BADDR | 0xffull << 48)) == 0;
}

/* Other CPUs' secondaries have news they must take at once (an SGI one of
 * their vCPUs was sent): end their runs with KICK_SGI, Aff0 the CPU index as
 * QEMU's virt machine numbers them, Aff1..3 0 (docs/boot.md section 15). */
static void send_kicks(uint64_t cpu, uint64_t kick)
{
    for (uint64_t t = 0; kick && t < SHIM_MAX_CPUS; t++)
        if (kick >> t & 1 && t != cpu)
            sysreg_write(icc_sgi0r_el1, (uint64_t)KICK_SGI << 24 | 1ull << t);
}

/* This CPU's redistributor, once a CPU start, after the primary's GIC
 * driver has set it up (it leaves these alone afterwards): the EL2 timer's
 * PPI enabled, and KICK_SGI in Group 0 and enabled (the driver put every SGI
 * in Group 1). An MMIO access costs 26 us. */
static void gic_cpu_setup(uint64_t cpu)
{
    if (cpu >= SHIM_MAX_CPUS || htimer_enabled[cpu])
        return;
    volatile uint32_t *groups = (volatile uint32_t *)(gicr_sgi(cpu) + GICR_IGROUPR0);
    *groups = *groups & ~(1u << KICK_SGI);
    *(volatile uint32_t *)(gicr_sgi(cpu) + GICR_ISENABLER0) = 1u << PPI_HTIMER | 1u << KICK_SGI;
    htimer_enabled[cpu] = 1;
}

/* -- a vCPU's debug and PMU registers, switched lazily ---------------------
 * As the real hypervisor switches them (hyp/vm/vdebug/aarch64/src/vdebug.c,
 * hyp/vm/arm_vm_pmu/aarch64/src/arm_vm_pmu.c; docs/boot.md section 19): a
 * secondary runs with its accesses to them trapped (MDCR_EL2.TDA, TPM,
 * TPMCR) until it first touches them; then its own are loaded (all zero the
 * first time), the trap lifted and the access retried, here at EL2 with no
 * exit to the host. They are switched at its runs while it uses them (a
 * breakpoint or watchpoint enabled with MDSCR_EL1.MDE and KDE, or TDCC, or
 * SS; its PMU's counters enabled), and trapped again once it does not. The
 * OS lock and debug ROM registers (TDOSA, TDRA) always trap, and read as
 * zero and ignore writes once its debug registers are its own, as
 * sysreg_traps.c's fallbacks answer a debug register. While it does not use
 * them the primary's breakpoints cannot hit in it (MDSCR_EL1 is 0) and the
 * primary's counters do not count it (disabled for the run). */
#define EC_SYSREG   0x18
#define MDCR_HPMN   0x1full
#define MDCR_TPMCR  (1ull << 5)
#define MDCR_TPM    (1ull << 6)
#define MDCR_TDA    (1ull << 9)
#define MDCR_TDOSA  (1ull << 10)
#define MDCR_TDRA   (1ull << 11)
#define MDSCR_SS    (1ull << 0)
#define MDSCR_TDCC  (1ull << 12)
#define MDSCR_KDE   (1ull << 13)
#define MDSCR_MDE   (1ull << 15)
#define DBGXCR_E    1ull             /* DBGBCR/DBGWCR.E */
#define PMCR_E      1ull
#define DEBUG_WORDS (1 + 4 * DEBUG_PAIRS)
#define PMU_WORDS   (PMU_REGS + 2 * PMU_COUNTERS)
#define BVR(n) (1 + (n))
#define BCR(n) (1 + DEBUG_PAIRS + (n))
#define WVR(n) (1 + 2 * DEBUG_PAIRS + (n))
#define WCR(n) (1 + 3 * DEBUG_PAIRS + (n))
#define PAIRS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) \
    X(14) X(15)
/* In layout.PMU_REGS's order; the last three are sets of bits, loaded below */
#define PMU_PLAIN(X) X(pmcr_el0) X(pmselr_el0) X(pmuserenr_el0) X(pmccfiltr_el0) X(pmccntr_el0)
_Static_assert(DEBUG_PAIRS == 16 && PMU_COUNTERS == 16 && PMU_REGS == 8, "PAIRS, PMU_PLAIN");

/* The primary's registers while a secondary runs, and what the run lifted. */
struct lazy_run {
    uint64_t mdcr;              /* the primary's MDCR_EL2, put back at the switch out */
    uint64_t mdscr;             /* the primary's MDSCR_EL1 */
    uint64_t cntenset, intenset;   /* the primary's enabled counters and overflow interrupts */
    uint64_t counters;          /* event counters the secondary has: its HPMN */
    uint64_t debug[DEBUG_WORDS];   /* the primary's, once the secondary's are loaded */
    uint64_t pmu[PMU_WORDS];
};

/* This CPU's debug registers into `to` (vcpu_context.debug's layout); whether
 * they are in use, as debug_save_common judges it
 * (hyp/core/debug/aarch64/templates/debug_bps.h.tmpl). */
static int debug_save(volatile uint64_t *to)
{
    uint64_t dfr = sysreg_read(id_aa64dfr0_el1), enabled = 0;
    uint64_t bps = (dfr >> 12 & 0xf) + 1, wps = (dfr >> 20 & 0xf) + 1;
#define SAVE_PAIR(n) \
    if (n < bps) { to[BVR(n)] = sysreg_read(dbgbvr##n##_el1); \
                   enabled |= to[BCR(n)] = sysreg_read(dbgbcr##n##_el1); } \
    if (n < wps) { to[WVR(n)] = sysreg_read(dbgwvr##n##_el1); \
                   enabled |= to[WCR(n)] = sysreg_read(dbgwcr##n##_el1); }
    PAIRS(SAVE_PAIR)
#undef SAVE_PAIR
    uint64_t mdscr = to[0] = sysreg_read(mdscr_el1);
    return ((enabled & DBGXCR_E) && (mdscr & MDSCR_MDE) && (mdscr & MDSCR_KDE))
        || (mdscr & (MDSCR_TDCC | MDSCR_SS));
}

/* From the debug registers `now` holds to `want`, writing those that differ. */
static void debug_switch(const volatile uint64_t *now, const volatile uint64_t *want)
{
    uint64_t dfr = sysreg_read(id_aa64dfr0_el1);
    uint64_t bps = (dfr >> 12 & 0xf) + 1, wps = (dfr >> 20 & 0xf) + 1;
#define LOAD_ONE(r, i) if (now[i] != want[i]) sysreg_write(r, want[i]);
#define LOAD_PAIR(n) \
    if (n < bps) { LOAD_ONE(dbgbvr##n##_el1, BVR(n)) LOAD_ONE(dbgbcr##n##_el1, BCR(n)) } \
    if (n < wps) { LOAD_ONE(dbgwvr##n##_el1, WVR(n)) LOAD_ONE(dbgwcr##n##_el1, WCR(n)) }
    PAIRS(LOAD_PAIR)
#undef LOAD_PAIR
    LOAD_ONE(mdscr_el1, 0)
#undef LOAD_ONE
}

/* This CPU's PMU state into `to` (vcpu_context.pmu's layout), its first
 * `counters` event counters; whether its counters count (arm_vm_pmu.c
 * arm_vm_pmu_counters_enabled). */
static int pmu_save(volatile uint64_t *to, uint64_t counters)
{
    unsigned i = 0;
#define SAVE_REG(r) to[i++] = sysreg_read(r);
    PMU_PLAIN(SAVE_REG)
#undef SAVE_REG
    to[PMU_CNTENSET] = sysreg_read(pmcntenset_el0);
    to[PMU_INTENSET] = sysreg_read(pmintenset_el1);
    to[PMU_OVSSET] = sysreg_read(pmovsset_el0);
#define SAVE_COUNTER(n) if (n < counters) { to[PMU_REGS + n] = sysreg_read(pmevcntr##n##_el0); \
    to[PMU_REGS + PMU_COUNTERS + n] = sysreg_read(pmevtyper##n##_el0); }
    PAIRS(SAVE_COUNTER)
#undef SAVE_COUNTER
    return (to[0] & PMCR_E) && to[PMU_CNTENSET] != 0;
}

/* Load the PMU state `from`, in arm_vm_pmu_load_state's order: counters and
 * their types, interrupts, overflows, the plain registers, the enables. */
static void pmu_load(const volatile uint64_t *from, uint64_t counters)
{
#define LOAD_COUNTER(n) if (n < counters) { \
    sysreg_write(pmevcntr##n##_el0, from[PMU_REGS + n]); \
    sysreg_write(pmevtyper##n##_el0, from[PMU_REGS + PMU_COUNTERS + n]); }
    PAIRS(LOAD_COUNTER)
#undef LOAD_COUNTER
    sysreg_write(pmintenclr_el1, ~from[PMU_INTENSET]);
    sysreg_write(pmintenset_el1, from[PMU_INTENSET]);
    sysreg_write(pmovsclr_el0, ~from[PMU_OVSSET]);
    sysreg_write(pmovsset_el0, from[PMU_OVSSET]);
    unsigned i = 0;
#define LOAD_REG(r) sysreg_write(r, from[i++]);
    PMU_PLAIN(LOAD_REG)
#undef LOAD_REG
    sysreg_write(pmcntenclr_el0, ~from[PMU_CNTENSET]);
    sysreg_write(pmcntenset_el0, from[PMU_CNTENSET]);
}

/* The secondary's MDCR_EL2: its counters (HPMN), and the traps of what is
 * not its own yet. */
static void lazy_mdcr(volatile struct vcpu_context *ctx, struct lazy_run *run)
{
    sysreg_write(mdcr_el2, run->counters | MDCR_TDOSA | MDCR_TDRA
        | (ctx->lazy & LAZY_DEBUG ? 0 : MDCR_TDA)
        | (ctx->lazy & LAZY_PMU ? 0 : MDCR_TPM | MDCR_TPMCR));
}

/* The secondary's debug registers loaded over the primary's, which wait in
 * `run` (MDSCR_EL1 as the primary left it: the hardware's may be the 0 the
 * run began with). */
static void debug_take(volatile struct vcpu_context *ctx, struct lazy_run *run)
{
    debug_save(run->debug);
    debug_switch(run->debug, ctx->debug);
    run->debug[0] = run->mdscr;
}

/* The secondary's PMU loaded over the primary's, which waits in `run` (its
 * enables as the primary left them: the run may have begun with them off). */
static void pmu_take(volatile struct vcpu_context *ctx, struct lazy_run *run)
{
    pmu_save(run->pmu, run->counters);
    run->pmu[PMU_CNTENSET] = run->cntenset;   /* as the primary left them */
    run->pmu[PMU_INTENSET] = run->intenset;
    pmu_load(ctx->pmu, run->counters);
}

/* The switch in: what the secondary uses is loaded; what it does not is
 * trapped, and the primary's breakpoints and counters are off for it. */
static void lazy_in(volatile struct vcpu_context *ctx, struct lazy_run *run)
{
    run->mdcr = sysreg_read(mdcr_el2);     /* its HPMN is PMCR_EL0.N: setup_el2 */
    run->counters = min_u64(run->mdcr & MDCR_HPMN, PMU_COUNTERS);
    run->mdscr = sysreg_read(mdscr_el1);
    run->cntenset = sysreg_read(pmcntenset_el0);
    run->intenset = sysreg_read(pmintenset_el1);
    if (ctx->lazy & LAZY_DEBUG)
        debug_take(ctx, run);
    else if (run->mdscr)
        sysreg_write(mdscr_el1, 0);
    if (ctx->lazy & LAZY_PMU) {
        pmu_take(ctx, run);
    } else {
        if (run->cntenset)
            sysreg_write(pmcntenclr_el0, ~0ull);
        if (run->intenset)
            sysreg_write(pmintenclr_el1, ~0ull);
    }
    lazy_mdcr(ctx, run);
}

/* The switch out: the secondary's saved where it used them (and kept
 * switched only while it still does), the primary's back. */
static void lazy_out(volatile struct vcpu_context *ctx, struct lazy_run *run)
{
    sysreg_write(mdcr_el2, run->mdcr);
    if (ctx->lazy & LAZY_DEBUG) {
        if (!debug_save(ctx->debug))
            ctx->lazy &= ~LAZY_DEBUG;
        debug_switch(ctx->debug, run->debug);
    } else if (run->mdscr) {
        sysreg_write(mdscr_el1, run->mdscr);
    }
    if (ctx->lazy & LAZY_PMU) {
        if (!pmu_save(ctx->pmu, run->counters))
            ctx->lazy &= ~LAZY_PMU;
        pmu_load(run->pmu, run->counters);
    } else {
        if (run->intenset)
            sysreg_write(pmintenset_el1, run->intenset);
        if (run->cntenset)
            sysreg_write(pmcntenset_el0, run->cntenset);
    }
}

/* Whether a trapped MSR/MRS (ISS of EC 0x18) names a PMU register that
 * TPM/TPMCR trap, as arm_vm_pmu_handle_vcpu_trap_sysreg_access lists them. */
static int pmu_register(uint64_t iss)
{
    uint64_t op0 = iss >> 20 & 3, op2 = iss >> 17 & 7, op1 = iss >> 14 & 7;
    uint64_t crn = iss >> 10 & 0xf, crm = iss >> 1 & 0xf;
    if (op0 != 3)
        return 0;
    if (op1 == 0)       /* PMINTENSET_EL1, PMINTENCLR_EL1 */
        return crn == 9 && crm == 14 && (op2 == 1 || op2 == 2);
    if (op1 != 3)
        return 0;
    if (crn == 14)      /* PMEVCNTR<n>, PMEVTYPER<n>, PMCCFILTR */
        return crm >= 8;
    return crn == 9 && (crm == 12 || (crm == 13 && op2 <= 2) || (crm == 14 && (op2 == 0 || op2 == 3)));
}

/* A trap of the secondary's that is the shim's to answer: the first touch of
 * its debug registers or PMU (made its own, then retried), or a debug
 * register still trapped once they are (read as zero, write ignored). 1 when
 * answered: the secondary goes on without the host. */
static int lazy_trap(volatile struct vcpu_context *ctx, struct lazy_run *run)
{
    uint64_t esr = sysreg_read(esr_el2);
    if ((esr >> 26 & 0x3f) != EC_SYSREG)
        return 0;
    uint64_t iss = esr & 0x1ffffff;
    if ((iss >> 20 & 3) == 2) {         /* Op0 2: a debug register */
        if (!(ctx->lazy & LAZY_DEBUG)) {
            ctx->lazy |= LAZY_DEBUG;
            debug_take(ctx, run);
            lazy_mdcr(ctx, run);        /* TDA lifted */
        } else {
            uint64_t rt = iss >> 5 & 0x1f;
            if ((iss & 1) && rt != 31)  /* a read: RAZ */
                ctx->x[rt] = 0;
            ctx->pc += 4;
        }
    } else if (pmu_register(iss) && !(ctx->lazy & LAZY_PMU)) {
        ctx->lazy |= LAZY_PMU;
        pmu_take(ctx, run);
        lazy_mdcr(ctx, run);            /* TPM, TPMCR lifted */
    } else {
        return 0;
    }
    __asm__ volatile("isb" ::: "memory");
    return 1;
}

/* Run the secondary's vCPU the host names in `box->world` on this CPU until
 * it traps or an interrupt comes for the host, then come back to the primary
 * exactly as it was: its EL1 registers, FP/SIMD, timers, debug and PMU
 * registers, ELR/SPSR_EL2, its stage 2 (VMID 0) and HCR_EL2. Physical
 * interrupts are routed here (IMO, FMO, AMO) only while the secondary runs;
 * the primary takes its own at EL1 once it resumes, as it always did. */
static void run_guest(volatile struct mailbox *box)
{
    uint64_t cpu = cpu_index();
    uint64_t run = box->run_seq;
    __asm__ volatile("dmb ish" ::: "memory");   /* the request after its number */
    uint64_t context = box->world.context, vttbr = box->world.vttbr, flush = box->world.flush;
    uint64_t mode = world_ok(context, vttbr)
        ? ((volatile struct vcpu_context *)context)->pstate & PSR_MODE : ~0ull;
    if (mode != PSR_EL0T && mode != PSR_EL1T && mode != PSR_EL1H) {  /* AArch64 EL0 or EL1 */
        if (context >= VCPU_CONTEXTS_BASE
            && context < VCPU_CONTEXTS_BASE + VCPU_CONTEXTS * (uint64_t)VCPU_CONTEXT_SIZE)
            ((volatile struct vcpu_context *)(context - context % 8))->exit = EXIT_REFUSED;
        __asm__ volatile("dmb ish" ::: "memory");
        box->exit_seq = run;
        return;
    }
    volatile struct vcpu_context *ctx = (volatile struct vcpu_context *)context;
    uint64_t primary[sizeof ctx->sysregs / 8];
    uint64_t elr = sysreg_read(elr_el2), spsr = sysreg_read(spsr_el2);
    uint64_t vmpidr = sysreg_read(vmpidr_el2);

    /* The primary's timers stop while the secondary's are loaded: the EL2
     * timer stands in for them, at the earlier of their deadlines, and ends
     * the run at the latest a slice from now, so the host's tick, or the
     * slice, brings the CPU back whatever the secondary does. Not before a
     * quantum from now: a deadline that passed while this CPU waited for
     * the host (serving another CPU's run) would end the run before the
     * secondary's first instruction, again and again (docs/boot.md section
     * 15); the primary's tick is then late by at most the quantum. */
    uint64_t now = sysreg_read(cntpct_el0), frq = sysreg_read(cntfrq_el0);
    uint64_t slice = frq / SLICE_HZ, quantum = frq / QUANTUM_HZ, us = box->world.slice_us;
    if (us && us < 1000000 / SLICE_HZ) {    /* the host's shorter one (a nested run) */
        slice = frq * us / 1000000;
        quantum = min_u64(quantum, slice);
    }
    uint64_t deadline = now + slice;
    if (CNT_ARMED(sysreg_read(cntv_ctl_el0)))
        deadline = min_u64(deadline, sysreg_read(cntv_cval_el0));   /* CNTVOFF 0 */
    if (CNT_ARMED(sysreg_read(cntp_ctl_el0)))
        deadline = min_u64(deadline, sysreg_read(cntp_cval_el0));
    if (deadline < now + quantum)
        deadline = now + quantum;
    el1_save(primary);
    el1_switch(primary, (const uint64_t *)ctx->sysregs);
    struct lazy_run lazy;
    lazy_in(ctx, &lazy);
    sysreg_write(cnthp_cval_el2, deadline);
    sysreg_write(cnthp_ctl_el2, 1);                 /* ENABLE, IMASK clear */
    gic_cpu_setup(cpu);
    send_kicks(cpu, box->world.kick);
    uint64_t group0 = sysreg_read(icc_igrpen0_el1);
    sysreg_write(icc_igrpen0_el1, 1);   /* Group 0 (a kick) signalled while it runs */
    if (ctx->vmpidr != vmpidr)
        sysreg_write(vmpidr_el2, ctx->vmpidr);
    if (ctx->cntvoff != 0)                          /* the primary's is 0 */
        sysreg_write(cntvoff_el2, ctx->cntvoff);
    uint64_t flags = ctx->flags;
    if (flags & RUN_VGIC) {       /* its virtual CPU interface (ICC_* reach it: IMO) */
        sysreg_write(ich_ap0r0_el2, ctx->ich_ap0r);
        sysreg_write(ich_ap1r0_el2, ctx->ich_ap1r);
        sysreg_write(ich_lr0_el2, ctx->ich_lr[0]);
        sysreg_write(ich_lr1_el2, ctx->ich_lr[1]);
        sysreg_write(ich_lr2_el2, ctx->ich_lr[2]);
        sysreg_write(ich_lr3_el2, ctx->ich_lr[3]);
        sysreg_write(ich_vmcr_el2, ctx->ich_vmcr);
        sysreg_write(ich_hcr_el2, ICH_HCR_EN);
    }
    uint64_t hcr = hcr_primary | HCR_IMO | HCR_FMO | HCR_AMO;   /* TWI: its WFI traps */
    sysreg_write(vttbr_el2, vttbr);
    sysreg_write(hcr_el2, hcr);
    __asm__ volatile("isb" ::: "memory");
    if (flush)      /* a VMID new to these tables: nothing cached for it may serve */
        __asm__ volatile("tlbi vmalls12e1is; dsb ish; isb" ::: "memory");

    uint64_t exit;
    do
        exit = world_switch(ctx);
    while (exit == EXIT_SYNC && lazy_trap(ctx, &lazy));
    if (exit == EXIT_FIQ) {     /* a kick (the only Group 0 interrupt): taken here, ended */
        uint64_t id = sysreg_read(icc_iar0_el1);
        if (id < 1020) {
            sysreg_write(icc_eoir0_el1, id);
            if (sysreg_read(icc_ctlr_el1) & ICC_CTLR_EOIMODE)
                sysreg_write(icc_dir_el1, id);
        }
    }
    sysreg_write(icc_igrpen0_el1, group0);  /* the primary's (Linux leaves it 0) */
    uint64_t vtimer = sysreg_read(cntv_ctl_el0), ptimer = sysreg_read(cntp_ctl_el0);
    if ((vtimer & CNT_STATE) == CNT_FIRED) {   /* its timer fired: masked before it goes on */
        sysreg_write(cntv_ctl_el0, vtimer | CNT_IMASK);
        flags |= RUN_VTIMER_FIRED;
    }
    if ((ptimer & CNT_STATE) == CNT_FIRED) {   /* its EL1 physical timer, the same */
        sysreg_write(cntp_ctl_el0, ptimer | CNT_IMASK);
        flags |= RUN_PTIMER_FIRED;
    }
    ctx->flags = flags;

    ctx->exit = exit;
    ctx->esr = sysreg_read(esr_el2);
    ctx->far = sysreg_read(far_el2);
    ctx->hpfar = sysreg_read(hpfar_el2);
    ctx->cntvoff = sysreg_read(cntvoff_el2);
    el1_save((uint64_t *)ctx->sysregs);
    lazy_out(ctx, &lazy);
    if (flags & RUN_VGIC) {
        sysreg_write(ich_hcr_el2, 0);
        ctx->ich_lr[0] = sysreg_read(ich_lr0_el2);
        ctx->ich_lr[1] = sysreg_read(ich_lr1_el2);
        ctx->ich_lr[2] = sysreg_read(ich_lr2_el2);
        ctx->ich_lr[3] = sysreg_read(ich_lr3_el2);
        ctx->ich_vmcr = sysreg_read(ich_vmcr_el2);
        ctx->ich_ap0r = sysreg_read(ich_ap0r0_el2);
        ctx->ich_ap1r = sysreg_read(ich_ap1r0_el2);
    }
    sysreg_write(cnthp_ctl_el2, 0);                 /* its level falls: nothing pending */
    sysreg_write(hcr_el2, hcr_primary);
    sysreg_write(vttbr_el2, (uint64_t)s2_l0);   /* VMID 0 */
    if (ctx->cntvoff != 0)
        sysreg_write(cntvoff_el2, 0);
    if (ctx->vmpidr != vmpidr)
        sysreg_write(vmpidr_el2, vmpidr);
    el1_switch((const uint64_t *)ctx->sysregs, primary);
    sysreg_write(elr_el2, elr);
    sysreg_write(spsr_el2, spsr);
    __asm__ volatile("isb; dmb ish" ::: "memory");
    box->exit_seq = run;
}

/* Any other exception: tell the host what and where, then power off. */
void __attribute__((noreturn)) shim_fault(uint64_t *frame, uint64_t at_el2)
{
    uint64_t cpu = cpu_index();
    struct request req = {
        .cpu = cpu, .kind = REQ_FAULT, .imm = at_el2,
        .pc = sysreg_read(elr_el2), .esr = sysreg_read(esr_el2), .far = sysreg_read(far_el2),
    };
    struct response resp;
    for (int i = 0; i < 18; i++)
        req.x[i] = frame[i];
    if (cpu < SHIM_MAX_CPUS)
        exchange(cpu, &req, &resp);
    power_off();
}
