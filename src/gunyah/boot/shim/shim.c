/* The EL2 shim: it puts the kernel at EL1 and forwards every HVC and SMC the
 * kernel makes to the hypervisor model on the host, through the calling
 * vCPU's mailbox in shared memory (shim.h), ringing the host's doorbell by
 * semihosting when the host is not polling; then it does what the model
 * asks: resume with its registers, start a vCPU, power one off, power the
 * machine off or reset it (the last three through QEMU's own PSCI, which an
 * SMC from EL2 reaches). It saves no FP state: built -mgeneral-regs-only. */
#include "shim.h"

#define SYS_OPEN  0x01
#define SYS_WRITE 0x05
#define SYS_WRITE0 0x04
#define OPEN_WB   5

#define EC_HVC64  0x16
#define EC_SMC64  0x17

#define QEMU_PSCI_CPU_OFF      0x84000002u
#define QEMU_PSCI_CPU_ON64     0xc4000003u
#define QEMU_PSCI_SYSTEM_OFF   0x84000008u
#define QEMU_PSCI_SYSTEM_RESET 0x84000009u

#define HCR_RW   (1ull << 31)
#define HCR_TSC  (1ull << 19)
#define HCR_APK  (1ull << 40)
#define HCR_API  (1ull << 41)
#define SPSR_EL1H_DAIF 0x3c5ull
#define SCTLR_EL1_RESET 0x30d00800ull   /* RES1 bits only: MMU and caches off */

struct cpu_slot {
    uint64_t entry, context;            /* where CPU_ON sends it at EL1 */
    int64_t bell;                       /* its doorbell's semihosting handle */
};

static struct cpu_slot slots[SHIM_MAX_CPUS];
#define config ((volatile struct shim_config *)SHIM_CONFIG)

#define sysreg_read(r) ({ uint64_t v_; __asm__ volatile("mrs %0, " #r : "=r"(v_)); v_; })
#define sysreg_write(r, v) __asm__ volatile("msr " #r ", %0" : : "r"((uint64_t)(v)))

static int64_t semihost(uint64_t op, void *block)
{
    register uint64_t x0 __asm__("x0") = op;
    register void *x1 __asm__("x1") = block;
    __asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
    return (int64_t)x0;
}

static uint64_t psci(uint64_t fn, uint64_t a1, uint64_t a2, uint64_t a3)
{
    register uint64_t x0 __asm__("x0") = fn;
    register uint64_t x1 __asm__("x1") = a1;
    register uint64_t x2 __asm__("x2") = a2;
    register uint64_t x3 __asm__("x3") = a3;
    __asm__ volatile("smc #0" : "+r"(x0), "+r"(x1), "+r"(x2), "+r"(x3) : : "memory");
    return x0;
}

static void say(const char *s) { semihost(SYS_WRITE0, (void *)s); }

static __attribute__((noreturn)) void power_off(void)
{
    psci(QEMU_PSCI_SYSTEM_OFF, 0, 0, 0);
    for (;;) __asm__ volatile("wfe");
}

static uint64_t cpu_index(void)
{
    uint64_t mpidr = sysreg_read(mpidr_el1);
    return (mpidr & 0xff) + ((mpidr >> 8) & 0xff) * 8;  /* QEMU virt: 8 per cluster */
}

static int64_t open_fifo(uint64_t cpu, const char *suffix, uint64_t mode)
{
    static char names[SHIM_MAX_CPUS][512];
    char *name = names[cpu];
    uint64_t n = 0;
    for (; n < sizeof(config->channel) && config->channel[n]; n++)
        name[n] = config->channel[n];
    name[n++] = (char)('0' + cpu);
    for (const char *s = suffix; *s; s++)
        name[n++] = *s;
    name[n] = 0;
    uint64_t block[3] = {(uint64_t)name, mode, n};
    return semihost(SYS_OPEN, block);
}

/* Move exactly len bytes; false when the host has gone. */
static int transfer(uint64_t op, int64_t handle, void *buf, uint64_t len)
{
    uint8_t *p = buf;
    while (len) {
        uint64_t block[3] = {(uint64_t)handle, (uint64_t)p, len};
        int64_t left = semihost(op, block);
        if (left < 0 || (uint64_t)left > len || (uint64_t)left == len)
            return 0;
        p += len - (uint64_t)left;
        len = (uint64_t)left;
    }
    return 1;
}

static volatile struct mailbox *mailbox(uint64_t cpu)
{
    return (volatile struct mailbox *)(SHIM_MAILBOXES + cpu * MAILBOX_SIZE);
}

/* Post the request in the vCPU's mailbox and wait for the answer there. */
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
    __asm__ volatile("dmb ish" ::: "memory");
    if (!box->host_polling) {
        uint64_t ring = seq;
        if (!transfer(SYS_WRITE, slots[cpu].bell, &ring, sizeof ring)) {
            say("gunyah-shim: the host side has gone; powering off\n");
            power_off();
        }
    }
    while (box->resp_seq != seq)
        ;
    __asm__ volatile("dmb ish" ::: "memory");
    const volatile uint64_t *from = (const volatile uint64_t *)&box->resp;
    uint64_t *to = (uint64_t *)resp;
    for (unsigned i = 0; i < sizeof *resp / 8; i++)
        to[i] = from[i];
}

static void setup_el2(void)
{
    uint64_t hcr = HCR_RW | HCR_TSC;
    uint64_t isar1 = sysreg_read(id_aa64isar1_el1);
    if (isar1 & (0xffull << 4 | 0xffull << 24))   /* APA/API or GPA/GPI: pointer auth */
        hcr |= HCR_API | HCR_APK;
    sysreg_write(hcr_el2, hcr);
    sysreg_write(cptr_el2, 0x33ff);                 /* no FP/SIMD traps */
    sysreg_write(hstr_el2, 0);
    sysreg_write(cnthctl_el2, 3);                   /* EL1 reads the physical counter and timer */
    sysreg_write(cntvoff_el2, 0);
    sysreg_write(vpidr_el2, sysreg_read(midr_el1));
    sysreg_write(vmpidr_el2, sysreg_read(mpidr_el1));
    sysreg_write(mdcr_el2, (sysreg_read(pmcr_el0) >> 11) & 0x1f);  /* HPMN = PMCR.N */
    sysreg_write(vttbr_el2, 0);
    sysreg_write(sctlr_el1, SCTLR_EL1_RESET);
    __asm__ volatile("isb");
}

static __attribute__((noreturn)) void enter_el1(uint64_t entry, uint64_t x0)
{
    sysreg_write(spsr_el2, SPSR_EL1H_DAIF);
    sysreg_write(elr_el2, entry);
    register uint64_t r0 __asm__("x0") = x0;
    register uint64_t r1 __asm__("x1") = 0;
    register uint64_t r2 __asm__("x2") = 0;
    register uint64_t r3 __asm__("x3") = 0;
    __asm__ volatile("eret" : : "r"(r0), "r"(r1), "r"(r2), "r"(r3));
    __builtin_unreachable();
}

void __attribute__((noreturn)) shim_main(uint64_t index)
{
    if (config->magic != CONFIG_MAGIC || index >= SHIM_MAX_CPUS || index >= config->cpus) {
        say("gunyah-shim: no configuration from the host; powering off\n");
        power_off();
    }
    struct cpu_slot *slot = &slots[index];
    slot->bell = open_fifo(index, ".bell", OPEN_WB);
    if (slot->bell < 0) {
        say("gunyah-shim: cannot open the channel to the host; powering off\n");
        power_off();
    }
    setup_el2();
    if (index == 0)
        enter_el1(config->kernel_entry, config->dtb);
    enter_el1(slot->entry, slot->context);
}

/* x0..x30 of the trapping vCPU, as start.S saved them. */
void shim_trap(uint64_t *frame)
{
    uint64_t esr = sysreg_read(esr_el2);
    uint64_t ec = esr >> 26 & 0x3f;
    uint64_t elr = sysreg_read(elr_el2);
    uint64_t cpu = cpu_index();
    struct request req = {.cpu = cpu, .esr = esr, .far = sysreg_read(far_el2)};
    struct response resp;

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
    req.imm = esr & 0xffff;
    for (int i = 0; i < 18; i++)
        req.x[i] = frame[i];
    exchange(cpu, &req, &resp);
    if (req.kind == REQ_FAULT)
        power_off();
    for (int i = 0; i < 18; i++)
        frame[i] = resp.x[i];

    switch (resp.action) {
    case ACT_CPU_ON:
        if (resp.target < SHIM_MAX_CPUS) {
            extern char secondary_start[];
            slots[resp.target].entry = resp.entry;
            slots[resp.target].context = resp.context;
            if (psci(QEMU_PSCI_CPU_ON64, resp.mpidr, (uint64_t)secondary_start, resp.target))
                frame[0] = (uint64_t)-6;   /* INTERNAL_FAILURE: QEMU would not start it */
        }
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
    if (cpu < SHIM_MAX_CPUS && slots[cpu].bell > 0)
        exchange(cpu, &req, &resp);
    say("gunyah-shim: unexpected exception; powering off\n");
    power_off();
}
