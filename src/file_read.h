/* file_read.h: a whole (small) file into memory: tokenizer files, chat
 * templates, data files read at once. */
#ifndef SHARDTUNE_FILE_READ_H
#define SHARDTUNE_FILE_READ_H

#include <stddef.h>

#include "log.h"

/* The bytes of path, NUL-terminated (*n_bytes without the NUL), malloc'ed;
 * NULL and e set ("PATH: cannot open: ...") when it cannot be read. */
char *file_read_all(const char *path, size_t *n_bytes, errbuf *e);

#endif
