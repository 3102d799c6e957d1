/*
 * Freestanding AArch64 helpers for guests of the gunyah vCPU: SMCCC calls
 * over HVC or SMC, Gunyah's native hvc #0x6000 ABI, and Arm semihosting for
 * output and exit. No libc; build with
 *   python -m ziglang cc -target aarch64-freestanding-none -nostdlib ...
 */
#ifndef GUNYAH_GUEST_H
#define GUNYAH_GUEST_H

typedef unsigned long u64;
typedef unsigned int u32;

struct smccc_res {
	u64 a0, a1, a2, a3;
};

#define SMCCC_CALL(insn, fid, arg1, arg2, arg3)                               \
	({                                                                    \
		register u64 x0_ __asm__("x0") = (fid);                       \
		register u64 x1_ __asm__("x1") = (arg1);                      \
		register u64 x2_ __asm__("x2") = (arg2);                      \
		register u64 x3_ __asm__("x3") = (arg3);                      \
		__asm__ volatile(insn                                         \
				 : "+r"(x0_), "+r"(x1_), "+r"(x2_), "+r"(x3_) \
				 :                                            \
				 : "x4", "x5", "x6", "x7", "x8", "x9", "x10", \
				   "x11", "x12", "x13", "x14", "x15", "x16",  \
				   "x17", "memory");                          \
		(struct smccc_res){ x0_, x1_, x2_, x3_ };                     \
	})

/* SMCCC over HVC #0 */
static inline struct smccc_res smccc_hvc(u64 fid, u64 a1, u64 a2, u64 a3)
{
	return SMCCC_CALL("hvc #0", fid, a1, a2, a3);
}

/* SMCCC over SMC #0 (encoded by hand: assemblers refuse smc without EL3) */
static inline struct smccc_res smccc_smc(u64 fid, u64 a1, u64 a2, u64 a3)
{
	return SMCCC_CALL(".inst 0xd4000003", fid, a1, a2, a3);
}

static inline struct smccc_res smccc_call(int use_smc, u64 fid)
{
	return use_smc ? smccc_smc(fid, 0, 0, 0) : smccc_hvc(fid, 0, 0, 0);
}

/* Gunyah's native ABI: hvc #0x6000 + call number, arguments from X0 */
#define GUNYAH_NATIVE(num) SMCCC_CALL("hvc #(0x6000 + " #num ")", 0, 0, 0, 0)

#define SMCCC_VENDOR_HYP_CALL_UID 0x8600ff01UL
#define GUNYAH_HYP_IDENTIFY 0xc6008000UL

/*
 * Gunyah's message queues, native form: msgqueue_send (hvc #0x601b: X0 cap,
 * X1 size, X2 buffer, X3 flags, X4 reserved zero -> X0 error, X1 not_full) and
 * msgqueue_receive (hvc #0x601c: X0 cap, X1 buffer, X2 its size, X3 reserved
 * zero -> X0 error, X1 size received, X2 not_empty). Buffers are the guest's
 * virtual addresses. The SMCCC forms take the same arguments from X1.
 */
#define GUNYAH_MSGQ_CALL(insn, fid, a, b, c, d, e)                             \
	({                                                                    \
		register u64 x0_ __asm__("x0") = (fid);                       \
		register u64 x1_ __asm__("x1") = (a);                         \
		register u64 x2_ __asm__("x2") = (b);                         \
		register u64 x3_ __asm__("x3") = (c);                         \
		register u64 x4_ __asm__("x4") = (d);                         \
		register u64 x5_ __asm__("x5") = (e);                         \
		__asm__ volatile(insn                                         \
				 : "+r"(x0_), "+r"(x1_), "+r"(x2_), "+r"(x3_), \
				   "+r"(x4_), "+r"(x5_)                       \
				 :                                            \
				 : "x6", "x7", "x8", "x9", "x10", "x11",     \
				   "x12", "x13", "x14", "x15", "x16", "x17",  \
				   "memory");                                 \
		(struct smccc_res){ x0_, x1_, x2_, x3_ };                     \
	})

#define GUNYAH_MSGQ_SEND 0xc600801bUL
#define GUNYAH_MSGQ_RECV 0xc600801cUL
#define GUNYAH_MSGQ_PUSH 1UL
#define GUNYAH_ERROR_MSGQUEUE_EMPTY 60

static inline struct smccc_res gunyah_msgq_send(u64 cap, u64 size, const void *buf, u64 flags,
						int smccc)
{
	return smccc ? GUNYAH_MSGQ_CALL("hvc #0", GUNYAH_MSGQ_SEND, cap, size, (u64)buf, flags, 0)
		     : GUNYAH_MSGQ_CALL("hvc #0x601b", cap, size, (u64)buf, flags, 0, 0);
}

static inline struct smccc_res gunyah_msgq_recv(u64 cap, void *buf, u64 size, int smccc)
{
	return smccc ? GUNYAH_MSGQ_CALL("hvc #0", GUNYAH_MSGQ_RECV, cap, (u64)buf, size, 0, 0)
		     : GUNYAH_MSGQ_CALL("hvc #0x601c", cap, (u64)buf, size, 0, 0, 0);
}

/* Arm semihosting */
#define SYS_WRITEC 0x03
#define SYS_WRITE0 0x04
#define SYS_EXIT 0x18
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static inline u64 semihost(u64 op, const void *arg)
{
	register u64 x0 __asm__("x0") = op;
	register const void *x1 __asm__("x1") = arg;
	__asm__ volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
	return x0;
}

static inline void put_str(const char *s)
{
	semihost(SYS_WRITE0, s);
}

static inline void put_hex(u64 v)
{
	char buf[19];
	buf[0] = '0';
	buf[1] = 'x';
	int n = 2;
	int shift = 60;
	while (shift > 0 && ((v >> shift) & 0xf) == 0)
		shift -= 4;
	for (; shift >= 0; shift -= 4)
		buf[n++] = "0123456789abcdef"[(v >> shift) & 0xf];
	buf[n] = 0;
	put_str(buf);
}

static inline __attribute__((noreturn)) void semihost_exit(u64 status)
{
	u64 block[2] = { ADP_STOPPED_APPLICATION_EXIT, status };
	semihost(SYS_EXIT, block);
	for (;;)
		;
}

static inline __attribute__((noreturn)) void brk_exit(u64 status)
{
	register u64 x0 __asm__("x0") = status;
	__asm__ volatile("brk #0" : : "r"(x0));
	for (;;)
		;
}

#endif
