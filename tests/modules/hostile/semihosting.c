// SPDX-License-Identifier: GPL-2.0-only
/*
 * A guest that asks the host, through Arm semihosting from EL1, to run a
 * command (SYS_SYSTEM) and to create a file (SYS_OPEN). The test writes
 * HOST_PATH in before it builds this. Under `gunyah boot` HLT is an
 * undefined instruction at EL1: the first attempt oopses (insmod dies),
 * and nothing happens on the host.
 */
#include <linux/kernel.h>
#include <linux/module.h>

#define HOST_PATH "@HOST_PATH@"

static long semihost(unsigned long op, void *block)
{
	register unsigned long x0 asm("x0") = op;
	register void *x1 asm("x1") = block;

	asm volatile("hlt #0xf000" : "+r"(x0) : "r"(x1) : "memory");
	return (long)x0;
}

static int __init semihosting_init(void)
{
	static char cmd[] = "touch " HOST_PATH ".system";
	static char path[] = HOST_PATH ".open";
	unsigned long system_block[2] = { (unsigned long)cmd, sizeof(cmd) - 1 };
	unsigned long open_block[3] = { (unsigned long)path, 4, sizeof(path) - 1 };

	pr_info("hostile-semihosting: SYS_SYSTEM %ld\n", semihost(0x12, system_block));
	pr_info("hostile-semihosting: SYS_OPEN %ld\n", semihost(0x01, open_block));
	return 0;
}
module_init(semihosting_init);
MODULE_LICENSE("GPL");
