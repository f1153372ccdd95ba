/* fuzz_file.h: what the fuzz targets of file parsers share.  The parsers
 * take a path (they mmap, read or json_load_file it), so each input is
 * written to a file in a private directory made once per process; and each
 * refusal must be the one-line error the command line prints. */
#ifndef SHARDTUNE_FUZZ_FILE_H
#define SHARDTUNE_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* The process's private directory (mkdtemp in /dev/shm when it exists, else
 * $TMPDIR or /tmp), removed with everything in it at exit. */
const char *fuzz_dir(void);
/* Writes size bytes of data to fuzz_dir()/name (replacing it) and returns
 * the path (static storage, valid until the next call).  Aborts when the
 * file cannot be written: the run would test nothing. */
const char *fuzz_write(const char *name, const void *data, size_t size);
/* Removes fuzz_dir()/name, a file or a directory with what it holds
 * (absent is fine): what one input wrote must not be seen by the next. */
void fuzz_remove(const char *name);
/* Aborts, naming target and what failed, unless e holds one non-empty line. */
void fuzz_check_error(const char *target, const char *what, const errbuf *e);

#endif
