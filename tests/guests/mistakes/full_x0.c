/*
 * Mistake: the UID words are compared with the full 64-bit X0..X3 of a
 * 32-bit call, whose upper halves SMCCC leaves undefined. Shows only where
 * a hypervisor leaves something there (persona dirty-upper).
 */
#define MISTAKE_FULL_X0
#include "identify_common.h"
