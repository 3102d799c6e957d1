// SPDX-License-Identifier: GPL-2.0-only
/*
 * Floods the console with `kib` KiB (module parameter, default 6144: half
 * as much again as the host keeps) of the longest lines printk takes, made
 * of 4-byte characters: the host must keep what it holds of the console
 * within its byte bound. Counted in bytes, not seconds, so that a slow or
 * busy host is flooded past its bound all the same.
 */
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/string.h>

static unsigned int kib = 6144;
module_param(kib, uint, 0444);

static int __init flood_init(void)
{
	static char line[900];
	unsigned long total = (unsigned long)kib << 10, sent = 0;
	unsigned long n = 0;
	size_t i;

	for (i = 0; i + 4 < sizeof(line); i += 4)
		memcpy(line + i, "\xf0\x9f\x98\x80", 4);   /* U+1F600 */
	while (sent < total) {
		pr_info("%s\n", line);
		sent += i + 1;  /* the line and its newline */
		n++;
	}
	pr_info("hostile-flood: %lu lines\n", n);
	return 0;
}
module_init(flood_init);
MODULE_LICENSE("GPL");
