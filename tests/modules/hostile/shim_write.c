// SPDX-License-Identifier: GPL-2.0-only
/*
 * A guest that writes into the shim's memory: a forged request in vCPU 0's
 * mailbox (a call "from pc 0xdeadbeef" and a SYSTEM_RESET action), then the
 * shim's code and configuration. Outside the guest's stage-2 map, the first
 * write takes the synchronous external abort KVM would inject: the kernel
 * oopses ("synchronous external abort"), insmod dies, and the boot goes on.
 */
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/module.h>

/* Where the shim's mailboxes and code are: the test gives them from the
 * boot's layout (gunyah/boot/layout.py). */
static ulong mailboxes, shim_base;
module_param(mailboxes, ulong, 0);
module_param_named(shim, shim_base, ulong, 0);

static int __init shim_write_init(void)
{
	void __iomem *box, *shim;

	if (!mailboxes || !shim_base) {
		pr_info("hostile-shim-write: give mailboxes= and shim=\n");
		return -EINVAL;
	}
	box = ioremap(mailboxes, 0x1000);
	shim = ioremap(shim_base, 0x1000);
	if (!box || !shim) {
		pr_info("hostile-shim-write: ioremap failed\n");
		return -ENOMEM;
	}
	pr_info("hostile-shim-write: writing the mailbox\n");
	writeq(0, box + 32 + 8);                 /* request kind: HVC */
	writeq(0xdeadbeef, box + 32 + 24);       /* pc */
	writeq(0x84000009, box + 32 + 48);       /* x0: SYSTEM_RESET */
	writeq(readq(box) + 1, box);             /* req_seq */
	pr_info("hostile-shim-write: writing the shim's code\n");
	writeq(0, shim);
	pr_info("hostile-shim-write: the shim's memory took the writes\n");
	return 0;
}
module_init(shim_write_init);
MODULE_LICENSE("GPL");
