/*
 * The built-in guest of `gunyah identify --vcpu`: the Linux guest's
 * identification procedure in AArch64 code.
 *
 * Entry: X0 = 1 to use SMC #0 as the conduit, 0 for HVC #0.
 * Output (semihosting): "uid W0 W1 W2 W3" and, for Gunyah, "identify X0 X1 X2 X3".
 * Exit status: 0 supported, 1 not Gunyah, 3 an API this guest must refuse.
 */
#include "gunyah_guest.h"

/* The call UIDs taken for Gunyah, as W0..W3 (the UUID's bytes, little-endian
 * words): the standard one alone, as the Linux driver's final form
 * (arch_is_gunyah_guest()) takes. */
static const u32 gunyah_uids[][4] = {
	/* c1d58fcd-a453-5fdb-9265-ce36673d5f14: standard build */
	{ 0xcd8fd5c1, 0xdb5f53a4, 0x36ce6592, 0x145f3d67 },
};

static void print_words(const char *tag, const u64 *w, int n)
{
	put_str(tag);
	for (int i = 0; i < n; i++) {
		put_str(" ");
		put_hex(w[i]);
	}
	put_str("\n");
}

void _start(u64 use_smc)
{
	struct smccc_res r = smccc_call(use_smc, SMCCC_VENDOR_HYP_CALL_UID);
	/* a 32-bit call: only the low halves are defined */
	u32 uid[4] = { (u32)r.a0, (u32)r.a1, (u32)r.a2, (u32)r.a3 };
	u64 shown[4] = { uid[0], uid[1], uid[2], uid[3] };
	print_words("uid", shown, 4);

	int gunyah = 0;
	for (unsigned k = 0; k < sizeof(gunyah_uids) / sizeof(gunyah_uids[0]); k++) {
		int same = 1;
		for (int i = 0; i < 4; i++)
			same &= uid[i] == gunyah_uids[k][i];
		gunyah |= same;
	}
	if (!gunyah)
		semihost_exit(1);

	r = smccc_call(use_smc, GUNYAH_HYP_IDENTIFY);
	u64 ident[4] = { r.a0, r.a1, r.a2, r.a3 };
	print_words("identify", ident, 4);

	u64 version = r.a0 & 0x3fff;
	u64 big_endian = (r.a0 >> 14) & 1;
	u64 is_64bit = (r.a0 >> 15) & 1;
	if (version != 1 || big_endian != 0 || is_64bit != 1)
		semihost_exit(3);
	semihost_exit(0);
}
