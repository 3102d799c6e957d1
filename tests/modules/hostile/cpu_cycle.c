// SPDX-License-Identifier: GPL-2.0-only
/*
 * Turns CPU 1 off and on again `cycles` times (module parameter, default
 * 1000) through the kernel's own hotplug, which polls PSCI AFFINITY_INFO
 * until the CPU is off and then calls CPU_ON at once: the race between a
 * vCPU stopping and being started again. Logs how far it got.
 */
#include <linux/cpu.h>
#include <linux/kernel.h>
#include <linux/module.h>

static unsigned int cycles = 1000;
module_param(cycles, uint, 0444);

static int __init cpu_cycle_init(void)
{
	unsigned int i;
	int err;

	for (i = 0; i < cycles; i++) {
		err = remove_cpu(1);
		if (err) {
			pr_info("cpu-cycle: CPU1 off failed at cycle %u: %d\n", i, err);
			return 0;
		}
		err = add_cpu(1);
		if (err) {
			pr_info("cpu-cycle: CPU1 on failed at cycle %u: %d\n", i, err);
			return 0;
		}
	}
	pr_info("cpu-cycle: %u cycles, CPU1 online: %d\n", cycles, cpu_online(1));
	return 0;
}
module_init(cpu_cycle_init);
MODULE_LICENSE("GPL");
