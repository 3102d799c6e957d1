// SPDX-License-Identifier: GPL-2.0-only
/*
 * A user's verdict module that goes wrong under one hypervisor: it panics
 * when the vendor UID is KVM's, and otherwise logs a verdict line from the
 * UID alone (no API checks).
 */
#include <linux/arm-smccc.h>
#include <linux/kernel.h>
#include <linux/module.h>

static int __init picky_init(void)
{
	struct arm_smccc_res res;

	arm_smccc_1_1_invoke(ARM_SMCCC_VENDOR_HYP_CALL_UID_FUNC_ID, &res);
	if (lower_32_bits(res.a0) == ARM_SMCCC_VENDOR_HYP_UID_KVM_REG_0)
		panic("picky: KVM is not for me");
	pr_info("gunyah-verdict: %s\n",
		lower_32_bits(res.a0) == 0xcd8fd5c1 ? "supported" : "not-gunyah");
	return 0;
}
module_init(picky_init);
MODULE_LICENSE("GPL");
