// SPDX-License-Identifier: GPL-2.0-only
/*
 * A guest that stops itself for good in a way no power-off announces: it
 * turns the GIC's distributor off, so no interrupt reaches any vCPU, and
 * waits in WFI with interrupts masked. The other vCPUs idle in WFI too. The
 * shim must tell the host that nothing can wake any of them, and the boot
 * must end as halted at once, with QEMU reaped: not hang to its timeout.
 */
#include <linux/io.h>
#include <linux/irqflags.h>
#include <linux/kernel.h>
#include <linux/module.h>

#define GICD_BASE 0x08000000UL   /* the virt machine's GICv3 distributor */

static int __init wfi_forever_init(void)
{
	void __iomem *gicd = ioremap(GICD_BASE, 0x1000);

	if (!gicd) {
		pr_info("hostile-wfi: ioremap failed\n");
		return -ENOMEM;
	}
	pr_info("hostile-wfi: turning the distributor off and waiting for ever\n");
	local_irq_disable();
	writel_relaxed(0, gicd);          /* GICD_CTLR: no group enabled, nothing forwarded */
	for (;;)
		asm volatile("dsb sy; wfi" ::: "memory");
	return 0;
}
module_init(wfi_forever_init);
MODULE_LICENSE("GPL");
