/*
 * One fault per mode (X0 at entry):
 *   0: read of unmapped memory   1: write of unmapped memory
 *   2: jump to unmapped memory   3: undefined instruction
 *   4: SVC #0                    5: a loop that never ends
 *   6: an unsupported semihosting operation
 */
#include "gunyah_guest.h"

#define NOWHERE 0x10UL

void _start(u64 mode)
{
	/* make an identification call first, so the report has a call to show */
	smccc_hvc(SMCCC_VENDOR_HYP_CALL_UID, 0, 0, 0);
	switch (mode) {
	case 0:
		brk_exit(*(volatile u64 *)NOWHERE);
	case 1:
		*(volatile u64 *)NOWHERE = 1;
		break;
	case 2:
		((void (*)(void))NOWHERE)();
		break;
	case 3:
		__asm__ volatile(".inst 0x00000000"); /* udf #0 */
		break;
	case 4:
		__asm__ volatile("svc #0");
		break;
	case 5:
		for (;;)
			__asm__ volatile("" ::: "memory");
	case 6:
		semihost(0x30, 0);
		break;
	}
	semihost_exit(99);
}
