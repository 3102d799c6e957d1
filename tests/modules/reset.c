// SPDX-License-Identifier: GPL-2.0-only
/* Asks the hypervisor for PSCI SYSTEM_RESET2 (a warm reset, cookie 0x5eed). */
#include <linux/arm-smccc.h>
#include <linux/module.h>
#include <uapi/linux/psci.h>

static int __init reset_init(void)
{
	struct arm_smccc_res res;

	pr_info("reset-module: asking for a warm reset\n");
	arm_smccc_1_1_invoke(PSCI_1_1_FN64_SYSTEM_RESET2, 0, 0x5eed, &res);
	pr_info("reset-module: the reset returned %ld\n", (long)res.a0);
	return 0;
}
module_init(reset_init);
MODULE_LICENSE("GPL");
