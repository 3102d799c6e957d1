/*
 * Mistake: the UID is taken from the 64-bit result registers as they are
 * (struct arm_smccc_res holds unsigned longs), not from their low 32 bits,
 * so the 16 UID bytes are W0, 0, W1, 0. Shows against every Gunyah UID.
 */
#define MISTAKE_NO_TRUNCATION
#include "identify_common.h"
