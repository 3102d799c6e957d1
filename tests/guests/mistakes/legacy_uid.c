/*
 * Mistake: the standard Gunyah UID is the word and byte order of an early
 * Linux patch revision. Says "not Gunyah" to every standard-UID hypervisor
 * and "Gunyah" to one that answers those words.
 */
#define MISTAKE_LEGACY_UID
#include "identify_common.h"
