/* The procedure with no mistake: it must pass against every persona. */
#include "identify_common.h"
