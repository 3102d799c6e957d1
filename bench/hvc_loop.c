/* Benchmark guest: X0 = N; makes N HYP_IDENTIFY calls over hvc #0, then BRK. */
#include "gunyah_guest.h"

void _start(u64 n)
{
	u64 sum = 0;
	for (u64 i = 0; i < n; i++)
		sum += smccc_hvc(GUNYAH_HYP_IDENTIFY, i, 0, 0).a0;
	brk_exit(sum == n * 0x5100000000008001UL ? 0 : 1);
}
