/*
 * Asks for PSCI SYSTEM_OFF (X0 = 0 at entry) or SYSTEM_RESET (X0 = 1) over
 * hvc #0; both must end the run there. Exits 99 if the call returns.
 */
#include "gunyah_guest.h"

#define PSCI_SYSTEM_OFF 0x84000008UL
#define PSCI_SYSTEM_RESET 0x84000009UL

void _start(u64 which)
{
	smccc_hvc(which ? PSCI_SYSTEM_RESET : PSCI_SYSTEM_OFF, 0, 0, 0);
	semihost_exit(99);
}
