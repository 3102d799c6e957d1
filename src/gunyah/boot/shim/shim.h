/* The EL2 shim's layout and the channel's records, shared by its C and assembly.
 * The host side (gunyah.boot.channel) declares the same records in Python; a
 * test holds the two together. */
#ifndef GUNYAH_SHIM_H
#define GUNYAH_SHIM_H

#define SHIM_BASE      0x7fe00000      /* top 2 MiB of 1 GiB of RAM at 0x40000000 */
#define SHIM_CONFIG    0x7ff00000      /* the host's configuration block */
#define SHIM_MAILBOXES 0x7ff10000      /* struct mailbox, one per vCPU */
#define MAILBOX_SIZE   0x400
#define SHIM_MAX_CPUS  8
#define SHIM_STACK     0x4000          /* per vCPU */

#define FRAME_SIZE     (32 * 8)        /* x0..x30 and a pad */

#ifndef __ASSEMBLER__
#include <stdint.h>

/* Written by the host at SHIM_CONFIG before the CPUs start. */
struct shim_config {
    uint64_t magic;          /* CONFIG_MAGIC */
    uint64_t kernel_entry;   /* the kernel Image's first instruction */
    uint64_t dtb;            /* the device tree, for x0 */
    uint64_t cpus;           /* vCPUs in the VM */
    char channel[448];       /* host path prefix; vCPU N uses <prefix>N.req and <prefix>N.resp */
};
#define CONFIG_MAGIC 0x3130474643485947ull   /* "GYHCFG01" little-endian */

/* One trapped call, shim -> host. */
struct request {
    uint64_t cpu;
    uint64_t kind;           /* REQ_HVC, REQ_SMC or REQ_FAULT */
    uint64_t imm;
    uint64_t pc;             /* the trapping instruction */
    uint64_t esr;
    uint64_t far;
    uint64_t x[18];
};
enum { REQ_HVC = 0, REQ_SMC = 1, REQ_FAULT = 2 };

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

/* A vCPU's mailbox in the shim's memory, which the host maps too (the
 * guest's RAM is a shared file). The shim writes a request, then bumps
 * req_seq; the host answers, then sets resp_seq to it. While the host polls
 * (host_polling != 0) that is all; otherwise the shim also rings the host's
 * doorbell, an 8-byte semihosting write to <prefix>N.bell. */
struct mailbox {
    volatile uint64_t req_seq;
    volatile uint64_t resp_seq;
    volatile uint64_t host_polling;
    uint64_t pad;
    struct request req;
    struct response resp;
};
#endif
#endif
