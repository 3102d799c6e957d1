// SPDX-License-Identifier: GPL-2.0-only
/*
 * A guest that hands the message queues buffers it may not: NULL, a user
 * address, the shim's mailbox by physical address, a size no message has,
 * and, for a reply, its own read-only kernel text. The hypervisor answers a
 * copy that fails without an error (send: OK, not_full 1, nothing queued;
 * receive: OK, size 0, not_empty 1, the message kept), and the host copies
 * nothing. A proper request afterwards is answered as ever. Each answer is
 * logged as "hostile-msgq: <case> <X0> <X1> <X2>".
 */
#include <linux/arm-smccc.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/slab.h>

#define MSGQ_SEND 0xc600801bU
#define MSGQ_RECV 0xc600801cU
/* The shim's mailboxes: the test gives them from the boot's layout
 * (gunyah/boot/layout.py). */
static ulong mailboxes;
module_param(mailboxes, ulong, 0);

static void report(const char *what, struct arm_smccc_res *res)
{
	pr_info("hostile-msgq: %s %lx %lx %lx\n", what, res->a0, res->a1, res->a2);
}

static int __init msgq_buffers_init(void)
{
	static const u8 get_vmid[8] = { 0x21, 0x01, 0x01, 0x00, 0x24, 0x00, 0x00, 0x56 };
	struct arm_smccc_res res;
	u8 *msg = kmemdup(get_vmid, sizeof(get_vmid), GFP_KERNEL);
	u8 *reply = kzalloc(240, GFP_KERNEL);
	u8 text[8];

	if (!mailboxes || !msg || !reply) {
		pr_info("hostile-msgq: %s\n", mailboxes ? "out of memory" : "give mailboxes=");
		kfree(msg);
		kfree(reply);
		return mailboxes ? -ENOMEM : -EINVAL;
	}
	arm_smccc_1_1_hvc(MSGQ_SEND, 0, 8, 0, 1, 0, &res);
	report("send-null", &res);
	arm_smccc_1_1_hvc(MSGQ_SEND, 0, 8, 0x1000, 1, 0, &res);
	report("send-user", &res);
	arm_smccc_1_1_hvc(MSGQ_SEND, 0, 8, mailboxes, 1, 0, &res);
	report("send-shim", &res);
	arm_smccc_1_1_hvc(MSGQ_SEND, 0, ~0UL, (uintptr_t)msg, 1, 0, &res);
	report("send-huge", &res);
	arm_smccc_1_1_hvc(MSGQ_RECV, 1, (uintptr_t)reply, 240, 0, 0, &res);
	report("receive-nothing-queued", &res);

	arm_smccc_1_1_hvc(MSGQ_SEND, 0, 8, (uintptr_t)msg, 1, 0, &res);
	report("send-vmid", &res);
	memcpy(text, (void *)msgq_buffers_init, sizeof(text));
	arm_smccc_1_1_hvc(MSGQ_RECV, 1, (uintptr_t)msgq_buffers_init, 240, 0, 0, &res);
	report("receive-into-text", &res);
	pr_info("hostile-msgq: text %s\n",
		memcmp(text, (void *)msgq_buffers_init, sizeof(text)) ? "changed" : "unchanged");
	arm_smccc_1_1_hvc(MSGQ_RECV, 1, mailboxes, 240, 0, 0, &res);
	report("receive-into-shim", &res);
	arm_smccc_1_1_hvc(MSGQ_RECV, 1, (uintptr_t)reply, 240, 0, 0, &res);
	report("receive", &res);
	pr_info("hostile-msgq: reply %*ph\n", (int)min(res.a1, 16UL), reply);
	kfree(msg);
	kfree(reply);
	return 0;
}

static void __exit msgq_buffers_exit(void)
{
}

module_init(msgq_buffers_init);
module_exit(msgq_buffers_exit);
MODULE_DESCRIPTION("message queue buffers a guest may not hand over");
MODULE_LICENSE("GPL");
