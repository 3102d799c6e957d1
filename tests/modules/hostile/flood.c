// SPDX-License-Identifier: GPL-2.0-only
/*
 * Floods the console for `seconds` (module parameter, default 8) with the
 * longest lines printk takes, made of 4-byte characters: the host must keep
 * what it holds of the console within its byte bound.
 */
#include <linux/jiffies.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>

static unsigned int seconds = 8;
module_param(seconds, uint, 0444);

static int __init flood_init(void)
{
	static char line[900];
	unsigned long end = jiffies + seconds * HZ;
	unsigned long n = 0;
	size_t i;

	for (i = 0; i + 4 < sizeof(line); i += 4)
		memcpy(line + i, "\xf0\x9f\x98\x80", 4);   /* U+1F600 */
	while (time_before(jiffies, end)) {
		pr_info("%s\n", line);
		n++;
	}
	pr_info("hostile-flood: %lu lines\n", n);
	return 0;
}
module_init(flood_init);
MODULE_LICENSE("GPL");
