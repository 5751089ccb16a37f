/* Upstream etmem's header name, for programs that include it: the API is <etmem/scan.h>. */
#include "etmem/scan.h"
