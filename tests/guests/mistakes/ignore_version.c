/* Mistake: the API version is never checked, so a v2 API is accepted. */
#define MISTAKE_IGNORE_VERSION
#include "identify_common.h"
