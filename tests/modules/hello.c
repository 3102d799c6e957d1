// SPDX-License-Identifier: GPL-2.0-only
/* A user's own module: it uses the kernel's headers and logs one line. */
#include <linux/module.h>
#include <linux/utsname.h>

static int __init hello_init(void)
{
	pr_info("hello-module: built for %s\n", init_utsname()->release);
	return 0;
}
module_init(hello_init);
MODULE_LICENSE("GPL");
