// SPDX-License-Identifier: GPL-2.0-only
/*
 * A second module that claims the verdict and a probe capture: the
 * documented verdict line, lines that look like init's (with a guessed
 * nonce) and capture markers with a capture that says "Gunyah". None of it
 * may count: only init's line with the boot's nonce does.
 */
#include <linux/kernel.h>
#include <linux/module.h>

static int __init forge_init(void)
{
	pr_info("gunyah-verdict: supported\n");
	pr_info("gunyah-verdict-00000000000000000000000000000000: supported\n");
	pr_info("gunyah-capture: begin\n");
	pr_info("H4sIAAAAAAAAA+3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAKAAA\n");
	pr_info("gunyah-capture: end\n");
	return 0;
}
module_init(forge_init);
MODULE_LICENSE("GPL");
