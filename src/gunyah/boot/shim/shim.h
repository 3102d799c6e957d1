/* The EL2 shim's layout and the channel's records, shared by its C and assembly.
 * The host side (gunyah.boot.channel, gunyah.boot.machine) declares the same
 * layout in Python; a test holds the two together. */
#ifndef GUNYAH_SHIM_H
#define GUNYAH_SHIM_H

#define SHIM_BASE      0x7fe00000      /* top 2 MiB of 1 GiB of RAM at 0x40000000 */
#define SHIM_CONFIG    0x7ff00000      /* the host's configuration block */
#define SHIM_MAILBOXES 0x7ff10000      /* struct mailbox, one per vCPU */
#define MAILBOX_SIZE   0x400
#define SHIM_MAX_CPUS  8
#define SHIM_STACK     0x4000          /* per vCPU */

/* The guest's stage-2 map: every device below GUEST_DEVICES_END but the
 * fw_cfg page (its DMA interface writes physical memory, the shim's too),
 * and RAM from the configuration's ram_base to ram_end. Nothing else. */
#define GUEST_DEVICES_END 0x40000000
#define FW_CFG_PAGE       0x09020000
#define UART_BASE         0x09000000   /* PL011: the shim's last words before any guest runs */
#define GICD_BASE         0x08000000   /* the virt machine's GICv2: distributor */
#define GICC_BASE         0x08010000   /* and CPU interface */

#define FRAME_SIZE     (32 * 8)        /* x0..x30 and a pad */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Written by the host at SHIM_CONFIG before the CPUs start. */
struct shim_config {
    uint64_t magic;          /* CONFIG_MAGIC */
    uint64_t kernel_entry;   /* the kernel Image's first instruction */
    uint64_t dtb;            /* the device tree, for x0 */
    uint64_t cpus;           /* vCPUs in the VM */
    uint64_t ram_base;       /* the guest's RAM, 2 MiB aligned, below 4 GiB */
    uint64_t ram_end;
};
#define CONFIG_MAGIC 0x3230474643485947ull   /* "GYHCFG02" little-endian */

/* One trapped call, shim -> host. */
struct request {
    uint64_t cpu;
    uint64_t kind;           /* REQ_* */
    uint64_t imm;            /* the immediate; for REQ_FAULT, 1 when it was at EL2 */
    uint64_t pc;             /* the trapping instruction */
    uint64_t esr;
    uint64_t far;
    uint64_t x[18];          /* REQ_RESULT: x[0] is what the guest received */
};
/* REQ_RESULT follows an ACT_CPU_ON: how carrying it out went. REQ_WAIT: the
 * vCPU waits in WFI with nothing that could wake it (no armed timer, no
 * interrupt the GIC would pass on but another vCPU's); REQ_WOKE: it woke all
 * the same (another vCPU changed that). */
enum { REQ_HVC = 0, REQ_SMC = 1, REQ_FAULT = 2, REQ_RESULT = 3, REQ_WAIT = 4, REQ_WOKE = 5 };

/* The answer, host -> shim. */
struct response {
    uint64_t action;         /* ACT_* */
    uint64_t target;         /* ACT_CPU_ON: the vCPU index to start */
    uint64_t mpidr;          /* ACT_CPU_ON: its MPIDR */
    uint64_t entry;          /* ACT_CPU_ON: where it starts at EL1 */
    uint64_t context;        /* ACT_CPU_ON: its x0 */
    uint64_t pad;
    uint64_t x[18];
};
enum { ACT_RESUME = 0, ACT_CPU_ON = 1, ACT_CPU_OFF = 2, ACT_SYSTEM_OFF = 3, ACT_SYSTEM_RESET = 4 };

/* The calling vCPU's EL1 translation at the trap, shim -> host: what the
 * host needs to follow a guest virtual address (a message queue's buffer)
 * through the guest's own page tables, which lie in RAM it maps. */
struct translation {
    uint64_t sctlr;          /* SCTLR_EL1 */
    uint64_t tcr;            /* TCR_EL1 */
    uint64_t ttbr0;          /* TTBR0_EL1 */
    uint64_t ttbr1;          /* TTBR1_EL1 */
};

/* A vCPU's mailbox in the shim's memory, which the host maps too (the
 * guest's RAM is a shared memory file) and the guest cannot reach (it is
 * outside its stage-2 map). The shim writes a request, then bumps req_seq;
 * the host answers, then sets resp_seq to it. Nothing else passes between
 * them: no doorbell, no host file, no semihosting. */
struct mailbox {
    volatile uint64_t req_seq;
    volatile uint64_t resp_seq;
    uint64_t pad[2];
    struct request req;
    struct response resp;
    struct translation mmu;  /* written with each HVC or SMC request */
};
#endif
#endif
