/* A bare-metal test kernel whose only CPU turns itself off: nothing is left
 * to run, and `gunyah boot` ends it as halted at once, not at its timeout. */
#include "bare.h"

BARE_ONE_CPU_START;

void main(void)
{
    put("cpu-off: turning the last CPU off\n");
    psci(PSCI_CPU_OFF, 0, 0, 0);
}
