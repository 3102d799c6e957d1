/*
 * The identification procedure with one mistake switched on by a macro, so
 * each mistaken guest differs from the correct one (src/gunyah/guests/
 * identify.c) in exactly one place. Exit status: 0 supported, 1 not Gunyah,
 * 3 unsupported API.
 */
#include "gunyah_guest.h"

static const u32 gunyah_uids[][4] = {
#ifdef MISTAKE_LEGACY_UID
	/* an early patch revision's words: another word and byte order */
	{ 0x673d5f14, 0x9265ce36, 0xa4535fdb, 0xc1d58fcd },
#else
	{ 0xcd8fd5c1, 0xdb5f53a4, 0x36ce6592, 0x145f3d67 },
#endif
};

static int known_uid(struct smccc_res r)
{
	for (unsigned k = 0; k < sizeof(gunyah_uids) / sizeof(gunyah_uids[0]); k++) {
#if defined(MISTAKE_NO_TRUNCATION)
		/* copies the 64-bit result registers straight into the 16-byte UID */
		const u32 *uid = (const u32 *)&r;
		int same = 1;
		for (int i = 0; i < 4; i++)
			same &= uid[i] == gunyah_uids[k][i];
#elif defined(MISTAKE_FULL_X0)
		/* compares the whole 64-bit registers of a 32-bit call */
		int same = r.a0 == gunyah_uids[k][0] && r.a1 == gunyah_uids[k][1] &&
			   r.a2 == gunyah_uids[k][2] && r.a3 == gunyah_uids[k][3];
#else
		int same = (u32)r.a0 == gunyah_uids[k][0] && (u32)r.a1 == gunyah_uids[k][1] &&
			   (u32)r.a2 == gunyah_uids[k][2] && (u32)r.a3 == gunyah_uids[k][3];
#endif
		if (same)
			return 1;
	}
	return 0;
}

void _start(void)
{
	if (!known_uid(smccc_hvc(SMCCC_VENDOR_HYP_CALL_UID, 0, 0, 0)))
		brk_exit(1);
	u64 info = smccc_hvc(GUNYAH_HYP_IDENTIFY, 0, 0, 0).a0;
	int refuse = 0;
#ifndef MISTAKE_IGNORE_VERSION
	refuse |= (info & 0x3fff) != 1;
#endif
#ifndef MISTAKE_IGNORE_ENDIANNESS
	refuse |= (info >> 14) & 1;
#endif
	refuse |= !((info >> 15) & 1);
	brk_exit(refuse ? 3 : 0);
}
