// SPDX-License-Identifier: GPL-2.0-only
/* Does not build: the call below has no declaration. */
#include <linux/module.h>

static int __init broken_init(void)
{
	return no_such_function_anywhere(42);
}
module_init(broken_init);
MODULE_LICENSE("GPL");
