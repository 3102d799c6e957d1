// SPDX-License-Identifier: GPL-2.0-only
/* Never finishes loading, so init never powers the machine off. */
#include <linux/delay.h>
#include <linux/module.h>

static int __init hang_init(void)
{
	pr_info("hang-module: sleeping for good\n");
	for (;;)
		msleep(1000);
	return 0;
}
module_init(hang_init);
MODULE_LICENSE("GPL");
