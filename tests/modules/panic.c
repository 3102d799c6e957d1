// SPDX-License-Identifier: GPL-2.0-only
/* Panics the kernel: the boot must end at once, with the panic's lines. */
#include <linux/kernel.h>
#include <linux/module.h>

static int __init panic_init(void)
{
	panic("panic-module: asked to panic");
	return 0;
}
module_init(panic_init);
MODULE_LICENSE("GPL");
