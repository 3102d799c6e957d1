// SPDX-License-Identifier: GPL-2.0-only
/*
 * The primary's own debug and PMU registers in use while a secondary VM runs
 * (docs/boot.md section 19): a watchpoint on every CPU (a wide hardware
 * breakpoint on writes of `watched`), a cycle counter pinned on every CPU,
 * and a thread that writes `watched` every millisecond or two and says,
 * every WRITES_A_LINE writes, how many writes it made, how many the
 * watchpoints saw and whether the cycle counters counted. The secondary must
 * read none of these registers as its own, and the primary must find them
 * all as it left them after each switch back: every write seen.
 */
#include <linux/cpumask.h>
#include <linux/delay.h>
#include <linux/err.h>
#include <linux/hw_breakpoint.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/percpu.h>
#include <linux/perf_event.h>

#define WRITES_A_LINE 25

static u64 watched;
static struct perf_event *__percpu *watch;
static DEFINE_PER_CPU(struct perf_event *, cycles);
static struct task_struct *writer;

/* The sum over the online CPUs of a counter's value. */
static u64 total(struct perf_event *(*of)(int cpu))
{
	u64 sum = 0, enabled, running;
	int cpu;

	for_each_online_cpu(cpu) {
		struct perf_event *e = of(cpu);

		if (!IS_ERR_OR_NULL(e))
			sum += perf_event_read_value(e, &enabled, &running);
	}
	return sum;
}

static struct perf_event *watch_of(int cpu)
{
	return per_cpu(*watch, cpu);
}

static struct perf_event *cycles_of(int cpu)
{
	return per_cpu(cycles, cpu);
}

static int write_loop(void *unused)
{
	unsigned long writes = 0;

	while (!kthread_should_stop()) {
		WRITE_ONCE(watched, writes);
		writes++;
		if (writes % WRITES_A_LINE == 0)
			pr_info("gunyah-watch: %lu writes, %llu seen, cycles %s\n", writes,
				total(watch_of), total(cycles_of) ? "counted" : "none");
		usleep_range(1000, 2000);
	}
	return 0;
}

static int __init watch_init(void)
{
	struct perf_event_attr attr;
	struct perf_event_attr counter = {
		.type = PERF_TYPE_HARDWARE,
		.config = PERF_COUNT_HW_CPU_CYCLES,
		.size = sizeof(counter),
		.pinned = 1,
	};
	int cpu;

	hw_breakpoint_init(&attr);
	attr.bp_addr = (unsigned long)&watched;
	attr.bp_len = HW_BREAKPOINT_LEN_8;
	attr.bp_type = HW_BREAKPOINT_W;
	/* the default overflow handler: arm64 then steps over the write */
	watch = register_wide_hw_breakpoint(&attr, NULL, NULL);
	if (IS_ERR(watch)) {
		pr_err("gunyah-watch: no watchpoint: %ld\n", PTR_ERR(watch));
		return PTR_ERR(watch);
	}
	for_each_online_cpu(cpu)
		per_cpu(cycles, cpu) = perf_event_create_kernel_counter(&counter, cpu, NULL,
									NULL, NULL);
	writer = kthread_run(write_loop, NULL, "gunyah-watch");
	if (IS_ERR(writer)) {
		for_each_online_cpu(cpu)
			if (!IS_ERR_OR_NULL(per_cpu(cycles, cpu)))
				perf_event_release_kernel(per_cpu(cycles, cpu));
		unregister_wide_hw_breakpoint(watch);
		return PTR_ERR(writer);
	}
	pr_info("gunyah-watch: watching on every CPU\n");
	return 0;
}

static void __exit watch_exit(void)
{
	int cpu;

	kthread_stop(writer);
	for_each_online_cpu(cpu)
		if (!IS_ERR_OR_NULL(per_cpu(cycles, cpu)))
			perf_event_release_kernel(per_cpu(cycles, cpu));
	unregister_wide_hw_breakpoint(watch);
}

module_init(watch_init);
module_exit(watch_exit);
MODULE_LICENSE("GPL");
