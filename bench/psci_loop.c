/*
 * Bench kernel: N PSCI_VERSION calls over HVC #0 from EL1, timed with the
 * virtual counter in batches of BATCH calls (QEMU's counter ticks every 16 ns,
 * coarser than one call on its own PSCI), then one line on the PL011 and
 * SYSTEM_OFF; the median and p99 are of the batches, per call:
 *
 *   psci-loop: N calls, mean T ns, median M ns, p99 P ns
 *
 * The same binary runs under QEMU's own in-process PSCI (no EL2, QEMU answers
 * the HVC) and under the shim (the HVC traps to EL2 and goes to the model), so
 * the ratio of the two says what forwarding costs on whatever host runs it.
 */
#include "bare.h"

#define BATCHES 256
#define BATCH 16
#define CALLS (BATCHES * BATCH)
#define PSCI_VERSION 0x84000000UL

BARE_ONE_CPU_START;
static u32 ticks[BATCHES];

static inline u64 counter(void)
{
	u64 v;
	__asm__ volatile("isb; mrs %0, cntvct_el0" : "=r"(v));
	return v;
}

static void sort(u32 *a, int n)  /* Shell sort: no recursion, no FP */
{
	for (int gap = n / 2; gap > 0; gap /= 2)
		for (int i = gap; i < n; i++)
			for (int j = i; j >= gap && a[j - gap] > a[j]; j -= gap) {
				u32 t = a[j];
				a[j] = a[j - gap];
				a[j - gap] = t;
			}
}

static u64 ns(u64 t, u64 hz, u64 calls)  /* ticks of `calls` calls -> ns of one */
{
	return t * 1000000000UL / hz / calls;
}

void main(void)
{
	u64 hz, total = 0;
	int bad = 0;
	__asm__ volatile("mrs %0, cntfrq_el0" : "=r"(hz));
	for (int i = 0; i < BATCHES; i++) {
		u64 start = counter();
		for (int j = 0; j < BATCH; j++)
			bad |= psci(PSCI_VERSION, 0, 0, 0) < 0x10000;  /* 1.0 on: major in [30:16] */
		u64 end = counter();
		ticks[i] = (u32)(end - start);
		total += end - start;
	}
	sort(ticks, BATCHES);
	put(bad ? "psci-loop: FAIL a PSCI_VERSION answer below 1.0\n" : "psci-loop: ");
	put_dec(CALLS);
	put(" calls, mean ");
	put_dec(ns(total, hz, CALLS));
	put(" ns, median ");
	put_dec(ns(ticks[BATCHES / 2], hz, BATCH));
	put(" ns, p99 ");
	put_dec(ns(ticks[BATCHES * 99 / 100], hz, BATCH));
	put(" ns\n");
	psci(PSCI_SYSTEM_OFF, 0, 0, 0);
}
