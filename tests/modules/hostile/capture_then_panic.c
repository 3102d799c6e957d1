// SPDX-License-Identifier: GPL-2.0-only
/*
 * Begins a capture it never ends, then panics: the panic must still be
 * seen (not a timeout), and no capture taken from it.
 */
#include <linux/kernel.h>
#include <linux/module.h>

static int __init capture_then_panic_init(void)
{
	pr_info("gunyah-capture: begin\n");
	panic("capture-then-panic: asked to panic");
	return 0;
}
module_init(capture_then_panic_init);
MODULE_LICENSE("GPL");
