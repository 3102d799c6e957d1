/* Mistake: the API's endianness is never checked, so a big-endian API is accepted. */
#define MISTAKE_IGNORE_ENDIANNESS
#include "identify_common.h"
