/* fuzz_error.c: see fuzz_error.h. */
#include "fuzz_error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void fuzz_check_error(const errbuf *e, const char *who)
{
    if (!e->msg[0] || strchr(e->msg, '\n')) {
        fprintf(stderr, "%s: error is not one non-empty line: \"%s\"\n", who, e->msg);
        abort();
    }
}
