// SPDX-License-Identifier: GPL-2.0-only
/*
 * gunyah_identify: the Gunyah guest's identification procedure, as the Linux
 * Gunyah driver does it (docs/abi.md section 5), in a module of its own.
 *
 * 1. CALL_UID of the vendor hypervisor service over the kernel's SMCCC
 *    conduit; keep the low 32 bits of X0..X3 (SMCCC leaves the upper halves
 *    of a 32-bit call's results undefined).
 * 2. Not a known Gunyah UID: stop; no other Gunyah call is meaningful.
 * 3. hypervisor_identify (HVC64); API info in X0, flags in X1..X3.
 * 4. Log the driver's banner, then refuse an API version other than 1 or an
 *    API whose endianness or width differs from this kernel's.
 *
 * 5. Under Gunyah, ask the resource manager for this VM's VMID as the driver's
 *    gunyah_hypercall_msgq_send/_recv would: VM_GET_VMID on the send queue,
 *    the reply polled from the receive queue, both buffers kmalloc'd (guest
 *    virtual addresses, which the hypervisor follows through our page
 *    tables). It logs "gunyah-rm: VMID <n>", or what went wrong.
 *
 * Its last line is the verdict, "gunyah-verdict: <verdict>", which
 * `gunyah boot` reads. The numbers come from gunyah_abi.h, which the
 * project's module builder writes from its own ABI tables.
 */
#include <linux/arm-smccc.h>
#include <linux/delay.h>
#include <linux/kernel.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/mm.h>
#include <linux/slab.h>
#include <linux/sort.h>

#include "gunyah_abi.h"

static const u32 known_uids[][4] = GUNYAH_KNOWN_UIDS;
static const char *const known_names[] = GUNYAH_KNOWN_UID_NAMES;

static unsigned int bench;
module_param(bench, uint, 0444);
MODULE_PARM_DESC(bench, "time this many forwarded CALL_UID calls: mean, median and p99");

#define field(word, name) (((word) >> GUNYAH_##name##_LSB) & ((1ULL << GUNYAH_##name##_WIDTH) - 1))

static void verdict(const char *v)
{
	pr_info("gunyah-verdict: %s\n", v);
}

static int cmp_u64(const void *a, const void *b)
{
	u64 x = *(const u64 *)a, y = *(const u64 *)b;

	return x < y ? -1 : x > y;
}

/* The mean of `bench` calls in a row, then each call timed on its own for
 * the median and the 99th percentile. */
static void time_calls(void)
{
	struct arm_smccc_res res;
	ktime_t start = ktime_get();
	unsigned int i;
	u64 *each;
	s64 ns;

	for (i = 0; i < bench; i++)
		arm_smccc_1_1_invoke(GUNYAH_VENDOR_HYP_CALL_UID, &res);
	ns = ktime_to_ns(ktime_sub(ktime_get(), start));
	each = bench ? kvmalloc_array(bench, sizeof(*each), GFP_KERNEL) : NULL;
	if (!each) {
		pr_info("gunyah-bench: %u calls, %lld ns each\n", bench, bench ? ns / bench : 0);
		return;
	}
	for (i = 0; i < bench; i++) {
		u64 t0 = ktime_get_ns();

		arm_smccc_1_1_invoke(GUNYAH_VENDOR_HYP_CALL_UID, &res);
		each[i] = ktime_get_ns() - t0;
	}
	sort(each, bench, sizeof(*each), cmp_u64, NULL);
	pr_info("gunyah-bench: %u calls, %lld ns each, median %llu ns, p99 %llu ns\n",
		bench, ns / bench, each[bench / 2], each[bench - 1 - bench / 100]);
	kvfree(each);
}

/* The RPC is little-endian whatever the kernel's byte order. */
static u32 le_at(const u8 *p, int bytes)
{
	u32 v = 0;

	while (bytes--)
		v = v << 8 | p[bytes];
	return v;
}

static void le_put(u8 *p, u32 v, int bytes)
{
	while (bytes--) {
		*p++ = v & 0xff;
		v >>= 8;
	}
}

/* A message queue call in its SMCCC form (arguments from X1), as the driver makes it. */
static void msgq_call(u32 fn, u64 cap, u64 a, u64 b, u64 c, struct arm_smccc_res *res)
{
	arm_smccc_1_1_hvc(fn, cap, a, b, c, 0, res);
}

static void ask_rm_vmid(void)
{
	static const u16 seq = 0x4d47;
	struct arm_smccc_res res;
	u8 *msg = kzalloc(GUNYAH_RM_MESSAGE_SIZE, GFP_KERNEL);
	u8 *reply = kzalloc(GUNYAH_RM_MESSAGE_SIZE, GFP_KERNEL);
	unsigned int tries;

	if (!msg || !reply)
		goto out;
	msg[0] = GUNYAH_RM_VERSION_BYTE;
	msg[1] = GUNYAH_RM_TYPE_REQUEST;
	le_put(msg + 2, seq, 2);
	le_put(msg + 4, GUNYAH_RM_VM_GET_VMID, 4);
	msgq_call(GUNYAH_MSGQ_SEND, GUNYAH_RM_TX_CAP, GUNYAH_RM_HEADER_SIZE, (uintptr_t)msg,
		  GUNYAH_MSGQ_PUSH, &res);
	if (res.a0) {
		pr_info("gunyah-rm: msgqueue_send answered %ld\n", (long)res.a0);
		goto out;
	}
	for (tries = 0; tries < 1000; tries++) {
		msgq_call(GUNYAH_MSGQ_RECV, GUNYAH_RM_RX_CAP, (uintptr_t)reply,
			  GUNYAH_RM_MESSAGE_SIZE, 0, &res);
		if (res.a0 != GUNYAH_ERROR_MSGQUEUE_EMPTY)
			break;
		udelay(100);
	}
	if (res.a0 || res.a1 != GUNYAH_RM_HEADER_SIZE + 8) {
		pr_info("gunyah-rm: no reply (msgqueue_receive answered %ld, %lu bytes)\n",
			(long)res.a0, res.a1);
		goto out;
	}
	if ((reply[1] & 3) != GUNYAH_RM_TYPE_REPLY || le_at(reply + 2, 2) != seq ||
	    le_at(reply + 4, 4) != GUNYAH_RM_VM_GET_VMID ||
	    le_at(reply + 8, 4)) {
		pr_info("gunyah-rm: unexpected reply %*ph\n", (int)res.a1, reply);
		goto out;
	}
	pr_info("gunyah-rm: VMID %u\n", le_at(reply + 12, 4));
out:
	kfree(msg);
	kfree(reply);
}

static int __init gunyah_identify_init(void)
{
	struct arm_smccc_res res;
	u32 uid[4];
	const char *name = NULL;
	u64 info, version, variant;
	bool big_endian, is_64bit, ok = true;
	size_t i;

	if (bench)
		time_calls();

	arm_smccc_1_1_invoke(GUNYAH_VENDOR_HYP_CALL_UID, &res);
	uid[0] = lower_32_bits(res.a0);
	uid[1] = lower_32_bits(res.a1);
	uid[2] = lower_32_bits(res.a2);
	uid[3] = lower_32_bits(res.a3);
	pr_info("gunyah-identify: CALL_UID %08x %08x %08x %08x\n", uid[0], uid[1], uid[2], uid[3]);

	for (i = 0; i < ARRAY_SIZE(known_uids); i++)
		if (!memcmp(uid, known_uids[i], sizeof(uid)))
			name = known_names[i];
	if (!name) {
		if (uid[0] == 0xffffffff)
			pr_info("gunyah-identify: CALL_UID is not supported: not Gunyah\n");
		else
			pr_info("gunyah-identify: not a Gunyah UID: not Gunyah\n");
		verdict("not-gunyah");
		return 0;
	}
	pr_info("gunyah-identify: UID of %s\n", name);

	arm_smccc_1_1_hvc(GUNYAH_HYP_IDENTIFY, &res);
	info = res.a0;
	version = field(info, API_VERSION);
	variant = field(info, VARIANT);
	big_endian = field(info, BIG_ENDIAN);
	is_64bit = field(info, IS_64BIT);
	pr_info("gunyah-identify: API info %016llx flags %016lx %016lx %016lx\n",
		info, res.a1, res.a2, res.a3);
	pr_info("Running under Gunyah hypervisor %llx/v%llu\n", variant, version);

	if (version != GUNYAH_API_V1) {
		pr_info("gunyah-identify: API version %llu is not the supported version %d\n",
			version, GUNYAH_API_V1);
		ok = false;
	}
	if (big_endian != IS_ENABLED(CONFIG_CPU_BIG_ENDIAN)) {
		pr_info("gunyah-identify: the API's endianness is not this kernel's\n");
		ok = false;
	}
	if (is_64bit != IS_ENABLED(CONFIG_64BIT)) {
		pr_info("gunyah-identify: the API's width is not this kernel's\n");
		ok = false;
	}
	if (ok)
		ask_rm_vmid();
	verdict(ok ? "supported" : "unsupported-api");
	return 0;
}

static void __exit gunyah_identify_exit(void)
{
}

module_init(gunyah_identify_init);
module_exit(gunyah_identify_exit);
MODULE_DESCRIPTION("Gunyah guest identification, as the Linux Gunyah driver does it");
MODULE_LICENSE("GPL");
