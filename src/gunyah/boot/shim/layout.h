/* Written by gunyah.boot.layout (python -m gunyah.boot.layout); do not edit. */
#ifndef GUNYAH_BOOT_LAYOUT_H
#define GUNYAH_BOOT_LAYOUT_H

#define RAM_BASE             0x40000000  /* QEMU virt's RAM */
#define RAM_SIZE             0x40000000
#define SHIM_BASE            0x7fe00000  /* the top 2 MiB of RAM, outside the guest's stage-2 map */
#define SHIM_CONFIG          0x7ff00000  /* the host's configuration block */
#define SHIM_MAILBOXES       0x7ff10000  /* struct mailbox, one per vCPU */
#define MAILBOX_SIZE         1024
#define SHIM_MAX_CPUS        8           /* the project's bound: MPIDR Aff0 0 to 7 */
#define SHIM_STACK           0x4000      /* per vCPU */
#define FRAME_SIZE           256         /* x0..x30 and a pad */
#define GUEST_DEVICES_END    0x40000000  /* the guest's devices: all below it but fw_cfg */
#define FW_CFG_PAGE          0x9020000   /* its DMA interface writes physical memory */
#define UART_BASE            0x9000000   /* PL011: the shim's last words before any guest runs */
#define GICD_BASE            0x8000000   /* the virt machine's GICv3: distributor */
#define GICR_BASE            0x80a0000   /* CPU 0's redistributor (RD_base) */
#define GICR_STRIDE          0x20000     /* one a CPU, in CPU index order */
#define GICR_SGI_FRAME       0x10000     /* SGI_base from RD_base */
#define STAGE2_CONTROL       0x7ff20000  /* struct stage2_control */
#define STAGE2_DESIRED       0x7ff21000  /* the level-2 table the host wants */
#define STAGE2_POOL          0x7ff22000  /* the level-3 tables it points at */
#define STAGE2_WINDOW        0x40000000  /* the GiB that table covers */
#define NUM_REGS             18          /* X0..X17 each way */
#define IRQ_BITS             16          /* response.irqs: interrupt IDs of this many bits */
#define KICK_SGI             15          /* Group 0 SGI that ends a CPU's secondary run (Linux: 0-7) */
#define IRQ_SLOTS            4           /* at most this many in one response */
#define RESPONSE_IRQS        5           /* word index of irqs in struct response */
#define RECORD_HEADER_WORDS  6           /* a request's or response's words before x[] */
#define RECORD_WORDS         24
#define MAILBOX_REQ_SEQ      0           /* word indexes in struct mailbox */
#define MAILBOX_RESP_SEQ     1
#define MAILBOX_REQ          4
#define MAILBOX_RESP         28
#define MAILBOX_MMU          52
#define VCPU_CONTEXTS_BASE   0x7ff12000  /* struct vcpu_context slots */
#define VCPU_CONTEXT_SIZE    2048
#define VCPU_CONTEXTS        28
#define GUEST_STAGE2_POOL    0x7ffe2000  /* the secondaries' stage-2 tables */
#define GUEST_STAGE2_PAGES   30
#define GUEST_IPA_BITS       40          /* the secondaries' IPA size */
#define SYSREG_CNTV_CTL      23          /* indexes in vcpu_context.sysregs */
#define SYSREG_CNTV_CVAL     24
#define SYSREG_CNTP_CTL      25
#define SYSREG_CNTP_CVAL     26
#define CTX_X                0           /* byte offsets in struct vcpu_context, for start.S */
#define CTX_PC               248
#define CTX_PSTATE           256
#define CTX_EXIT             264
#define CTX_FPCR             592
#define CTX_Q                608
#define EXIT_SYNC            0           /* vcpu_context.exit */
#define EXIT_IRQ             1
#define EXIT_FIQ             2
#define EXIT_SERROR          3
#define EXIT_REFUSED         4
#define RUN_VGIC             1           /* vcpu_context.flags */
#define RUN_VTIMER_FIRED     4
#define RUN_PTIMER_FIRED     8
#define LAZY_DEBUG           1           /* vcpu_context.lazy */
#define LAZY_PMU             2
#define DEBUG_PAIRS          16          /* vcpu_context.debug and .pmu */
#define PMU_COUNTERS         16
#define PMU_REGS             8
#define PMU_CNTENSET         5           /* indexes in vcpu_context.pmu */
#define PMU_INTENSET         6
#define PMU_OVSSET           7
#define CONFIG_MAGIC         0x3330474643485947ull

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Written by the host at SHIM_CONFIG before the CPUs start. */
struct shim_config {
    uint64_t magic;              /* CONFIG_MAGIC */
    uint64_t kernel_entry;       /* the kernel Image's first instruction */
    uint64_t dtb;                /* the device tree, for x0 */
    uint64_t cpus;               /* vCPUs in the VM */
    uint64_t ram_base;           /* the guest's RAM, 2 MiB aligned, below 4 GiB */
    uint64_t ram_end;
    uint64_t host_irqs;          /* SPIs from this ID up: raised by the host, in a call */
};

/* One trapped call, shim -> host. */
struct request {
    uint64_t cpu;
    uint64_t kind;               /* REQ_* */
    uint64_t imm;                /* the immediate; for REQ_FAULT, 1 when it was at EL2 */
    uint64_t pc;                 /* the trapping instruction */
    uint64_t esr;
    uint64_t far;
    uint64_t x[18];              /* REQ_RESULT: x[0] is what the guest received */
};

/* The answer, host -> shim. */
struct response {
    uint64_t action;             /* ACT_* */
    uint64_t target;             /* ACT_CPU_ON: the vCPU index to start */
    uint64_t mpidr;              /* ACT_CPU_ON: its MPIDR */
    uint64_t entry;              /* ACT_CPU_ON: where it starts at EL1 */
    uint64_t context;            /* ACT_CPU_ON: its x0 */
    uint64_t irqs;               /* interrupt IDs to set pending, IRQ_BITS each, 0 ends */
    uint64_t x[18];
};

/* The calling vCPU's EL1 translation at the trap, shim -> host: what the
 * host needs to follow a guest virtual address (a message queue's buffer)
 * through the guest's own page tables, which lie in RAM it maps.
 */
struct translation {
    uint64_t sctlr;              /* SCTLR_EL1 */
    uint64_t tcr;                /* TCR_EL1 */
    uint64_t ttbr0;              /* TTBR0_EL1 */
    uint64_t ttbr1;              /* TTBR1_EL1 */
};

/* What the host asks the shim to run, host -> shim, read when run_seq moves. */
struct world {
    uint64_t context;            /* the vCPU's struct vcpu_context (a slot's physical address) */
    uint64_t vttbr;              /* its VM's stage-2 root and hardware VMID (VTTBR_EL2) */
    uint64_t flush;              /* 1: invalidate the VMID's TLB entries first (a new VM on it) */
    uint64_t kick;               /* a bit a CPU: send it KICK_SGI first, to end its secondary's run */
    uint64_t slice_us;           /* the run's longest time in us, 0: the shim's slice (10 ms) */
};

/* A vCPU's mailbox in the shim's memory, which the host maps too (the
 * guest's RAM is a shared memory file) and the guest cannot reach (it is
 * outside its stage-2 map). The shim writes a request, then bumps req_seq;
 * the host answers, then sets resp_seq to it. Nothing else passes between
 * them: no doorbell, no host file, no semihosting.
 */
struct mailbox {
    volatile uint64_t req_seq;
    volatile uint64_t resp_seq;
    uint64_t pad[2];
    struct request req;
    struct response resp;
    struct translation mmu;      /* written with each HVC or SMC request */
    volatile uint64_t run_seq;   /* host: bumped to run `world`, inside a call of this CPU's */
    volatile uint64_t exit_seq;  /* shim: set to run_seq once the secondary came back */
    struct world world;
    volatile uint64_t wake_at;   /* host: the counter value at which the first secondary vCPU waiting in WFI has its timer fire, 0 none: this CPU's idle WFI wakes there and asks with REQ_TICK */
};

/* At STAGE2_CONTROL: the host bumps gen once the desired tables are written;
 * a vCPU that sees gen move takes lock, swaps its level-2 entries to the
 * desired ones (break-before-make), sets applied to gen and lets go.
 */
struct stage2_control {
    volatile uint64_t gen;       /* host: the batch posted */
    volatile uint64_t applied;   /* shim: the batch carried out */
    volatile uint64_t lock;      /* shim: 1 while a vCPU swaps */
};

/* A secondary VM's vCPU, whole, in its slot at VCPU_CONTEXTS_BASE: the shim
 * loads it at the switch in and saves it at the switch out (with why it
 * came back); the host reads and sets it between runs.
 */
struct vcpu_context {
    uint64_t x[31];              /* X0..X30 */
    uint64_t pc;                 /* ELR_EL2: where it goes on */
    uint64_t pstate;             /* SPSR_EL2 */
    uint64_t exit;               /* shim: EXIT_*, why it came back */
    uint64_t esr;                /* shim: ESR_EL2 of a trap */
    uint64_t far;                /* shim: FAR_EL2 */
    uint64_t hpfar;              /* shim: HPFAR_EL2 */
    uint64_t vmpidr;             /* VMPIDR_EL2: the MPIDR the vCPU reads */
    uint64_t cntvoff;            /* CNTVOFF_EL2 */
    uint64_t flags;              /* host: RUN_* for this run */
    uint64_t ich_vmcr;           /* ICH_VMCR_EL2: the virtual CPU interface's state */
    uint64_t ich_ap0r;           /* ICH_AP0R0_EL2 */
    uint64_t ich_ap1r;           /* ICH_AP1R0_EL2 */
    uint64_t ich_lr[4];          /* ICH_LR0..3_EL2: the vGIC's list registers */
    uint64_t sysregs[27];        /* EL1 registers, in layout.EL1_SYSREGS's order */
    uint64_t fpcr;
    uint64_t fpsr;
    uint64_t q[64];              /* Q0..Q31, two words each (16-byte aligned) */
    uint64_t lazy;               /* shim: LAZY_* state the vCPU uses, switched at each of its runs */
    uint64_t debug[65];          /* LAZY_DEBUG's: MDSCR_EL1, then DBGBVR, DBGBCR, DBGWVR, DBGWCR 0..15 */
    uint64_t pmu[40];            /* LAZY_PMU's: PMU_REGS's, then PMEVCNTR and PMEVTYPER 0..15 */
};

enum { REQ_HVC = 0, REQ_SMC = 1, REQ_FAULT = 2, REQ_RESULT = 3, REQ_WAIT = 4, REQ_WOKE = 5, REQ_TICK = 6 };
enum { ACT_RESUME = 0, ACT_CPU_ON = 1, ACT_CPU_OFF = 2, ACT_SYSTEM_OFF = 3, ACT_SYSTEM_RESET = 4 };

_Static_assert(sizeof(struct shim_config) == 56, "struct shim_config");
_Static_assert(sizeof(struct request) == 192, "struct request");
_Static_assert(sizeof(struct response) == 192, "struct response");
_Static_assert(sizeof(struct translation) == 32, "struct translation");
_Static_assert(sizeof(struct world) == 40, "struct world");
_Static_assert(sizeof(struct mailbox) == 512, "struct mailbox");
_Static_assert(sizeof(struct stage2_control) == 24, "struct stage2_control");
_Static_assert(sizeof(struct vcpu_context) == 1968, "struct vcpu_context");
_Static_assert(__builtin_offsetof(struct response, irqs) == 8 * RESPONSE_IRQS, "response.irqs");
_Static_assert(__builtin_offsetof(struct mailbox, req_seq) == 8 * MAILBOX_REQ_SEQ, "mailbox.req_seq");
_Static_assert(__builtin_offsetof(struct mailbox, resp_seq) == 8 * MAILBOX_RESP_SEQ, "mailbox.resp_seq");
_Static_assert(__builtin_offsetof(struct mailbox, req) == 8 * MAILBOX_REQ, "mailbox.req");
_Static_assert(__builtin_offsetof(struct mailbox, resp) == 8 * MAILBOX_RESP, "mailbox.resp");
_Static_assert(__builtin_offsetof(struct mailbox, mmu) == 8 * MAILBOX_MMU, "mailbox.mmu");
_Static_assert(__builtin_offsetof(struct vcpu_context, x) == CTX_X, "vcpu_context.x");
_Static_assert(__builtin_offsetof(struct vcpu_context, pc) == CTX_PC, "vcpu_context.pc");
_Static_assert(__builtin_offsetof(struct vcpu_context, pstate) == CTX_PSTATE, "vcpu_context.pstate");
_Static_assert(__builtin_offsetof(struct vcpu_context, exit) == CTX_EXIT, "vcpu_context.exit");
_Static_assert(__builtin_offsetof(struct vcpu_context, fpcr) == CTX_FPCR, "vcpu_context.fpcr");
_Static_assert(__builtin_offsetof(struct vcpu_context, q) == CTX_Q, "vcpu_context.q");
_Static_assert(CTX_Q % 16 == 0, "vcpu_context.q is 16-byte aligned");
_Static_assert(sizeof(struct vcpu_context) <= VCPU_CONTEXT_SIZE, "a vcpu_context fits its slot");
#endif
#endif
