/*
 * Calls hypervisor_identify for ever: the vCPU must stop it at its limits and
 * keep bounded memory however many calls it makes.
 */
#include "gunyah_guest.h"

void _start(void)
{
	for (;;)
		smccc_hvc(GUNYAH_HYP_IDENTIFY, 0, 0, 0);
}
