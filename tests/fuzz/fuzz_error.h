/* fuzz_error.h: the promise every parser's refusal keeps. */
#ifndef SHARDTUNE_FUZZ_ERROR_H
#define SHARDTUNE_FUZZ_ERROR_H

#include "log.h"

/* Aborts (a libFuzzer failure) unless e holds one non-empty line: die()
 * prints it as "shardtune: error: <message>", and a second line would be
 * taken for other output by the user and by scripts.  who names the target
 * and the call in the report. */
void fuzz_check_error(const errbuf *e, const char *who);

#endif
