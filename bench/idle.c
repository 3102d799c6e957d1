// SPDX-License-Identifier: GPL-2.0-only
/* An idle guest for the benchmark: its module sleeps 10 s. */
#include <linux/delay.h>
#include <linux/module.h>

static int __init idle_init(void)
{
	pr_info("idle-module: sleeping 10 s\n");
	msleep(10000);
	return 0;
}
module_init(idle_init);
MODULE_LICENSE("GPL");
