/*
 * Makes identification calls by each conduit; X0 at entry picks which.
 * Prints what came back and exits 0 when it is what Gunyah answers.
 *   0: CALL_UID + HYP_IDENTIFY over hvc #0     1: the same over smc #0
 *   2: hypervisor_identify as native hvc #0x6000
 *   3: hvc #1 (no ABI): expects X0 = -1
 *   4: X4..X17 survive an SMCCC call
 *   5: native identify sanitises: X4..X7 zero, X8 kept, X9 the return
 *      address, X10..X17 zero (exit status: a bit per wrong register)
 */
#include "gunyah_guest.h"

static int report(const char *tag, struct smccc_res r)
{
	put_str(tag);
	u64 w[4] = { r.a0, r.a1, r.a2, r.a3 };
	for (int i = 0; i < 4; i++) {
		put_str(" ");
		put_hex(w[i]);
	}
	put_str("\n");
	return 0;
}

static int preserved(void)
{
	register u64 x0 __asm__("x0") = SMCCC_VENDOR_HYP_CALL_UID;
	u64 ok;
	/* load X4..X17 with 4..17, call, then check each */
	__asm__ volatile(
		"mov x4, #4\n mov x5, #5\n mov x6, #6\n mov x7, #7\n"
		"mov x8, #8\n mov x9, #9\n mov x10, #10\n mov x11, #11\n"
		"mov x12, #12\n mov x13, #13\n mov x14, #14\n mov x15, #15\n"
		"mov x16, #16\n mov x17, #17\n"
		"hvc #0\n"
		"mov %1, #1\n"
		"cmp x4, #4\n csel %1, %1, xzr, eq\n cmp x5, #5\n csel %1, %1, xzr, eq\n"
		"cmp x6, #6\n csel %1, %1, xzr, eq\n cmp x7, #7\n csel %1, %1, xzr, eq\n"
		"cmp x8, #8\n csel %1, %1, xzr, eq\n cmp x9, #9\n csel %1, %1, xzr, eq\n"
		"cmp x10, #10\n csel %1, %1, xzr, eq\n cmp x11, #11\n csel %1, %1, xzr, eq\n"
		"cmp x12, #12\n csel %1, %1, xzr, eq\n cmp x13, #13\n csel %1, %1, xzr, eq\n"
		"cmp x14, #14\n csel %1, %1, xzr, eq\n cmp x15, #15\n csel %1, %1, xzr, eq\n"
		"cmp x16, #16\n csel %1, %1, xzr, eq\n cmp x17, #17\n csel %1, %1, xzr, eq\n"
		: "+r"(x0), "=&r"(ok)
		:
		: "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
		  "x12", "x13", "x14", "x15", "x16", "x17", "cc", "memory");
	return ok == 1 && x0 == 0xcd8fd5c1;
}

static u64 sanitised(void)
{
	register u64 x0 __asm__("x0") = 0;
	u64 bad, ret;
	__asm__ volatile(
		"mov x4, #4\n mov x5, #5\n mov x6, #6\n mov x7, #7\n"
		"mov x8, #8\n mov x9, #9\n mov x10, #10\n mov x11, #11\n"
		"mov x12, #12\n mov x13, #13\n mov x14, #14\n mov x15, #15\n"
		"mov x16, #16\n mov x17, #17\n"
		"adr %2, 1f\n"
		"hvc #0x6000\n"
		"1: mov %1, #0\n"
		"orr x4, x4, x5\n orr x4, x4, x6\n orr x4, x4, x7\n"
		"cmp x4, #0\n cset x5, ne\n orr %1, %1, x5\n"
		"cmp x8, #8\n cset x5, ne\n orr %1, %1, x5, lsl #1\n"
		"cmp x9, %2\n cset x5, ne\n orr %1, %1, x5, lsl #2\n"
		"orr x10, x10, x11\n orr x10, x10, x12\n orr x10, x10, x13\n"
		"orr x10, x10, x14\n orr x10, x10, x15\n orr x10, x10, x16\n orr x10, x10, x17\n"
		"cmp x10, #0\n cset x5, ne\n orr %1, %1, x5, lsl #3\n"
		: "+r"(x0), "=&r"(bad), "=&r"(ret)
		:
		: "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11",
		  "x12", "x13", "x14", "x15", "x16", "x17", "cc", "memory");
	return x0 == 0x5100000000008001UL ? bad : bad | 16;
}

void _start(u64 mode)
{
	struct smccc_res r;
	switch (mode) {
	case 0:
	case 1:
		report("uid", r = smccc_call(mode, SMCCC_VENDOR_HYP_CALL_UID));
		if ((u32)r.a0 != 0xcd8fd5c1)
			semihost_exit(1);
		report("identify", r = smccc_call(mode, GUNYAH_HYP_IDENTIFY));
		semihost_exit(r.a0 == 0x5100000000008001UL ? 0 : 1);
	case 2:
		report("native", r = GUNYAH_NATIVE(0));
		semihost_exit(r.a0 == 0x5100000000008001UL ? 0 : 1);
	case 3:
		r = SMCCC_CALL("hvc #1", GUNYAH_HYP_IDENTIFY, 0, 0, 0);
		report("imm1", r);
		semihost_exit(r.a0 == ~0UL ? 0 : 1);
	case 4:
		semihost_exit(preserved() ? 0 : 1);
	case 5:
		semihost_exit(sanitised());
	}
	semihost_exit(99);
}
