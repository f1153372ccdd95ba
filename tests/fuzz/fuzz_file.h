/* fuzz_file.h: fuzz inputs as files, for parsers that take a path.
 *
 * Each target process gets one private directory (mkdtemp, in /dev/shm when
 * there is one, so that millions of writes do not touch a disk); every input
 * overwrites the same few files there.  The directory is removed at exit. */
#ifndef SHARDTUNE_FUZZ_FILE_H
#define SHARDTUNE_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes data[0..n) to the file `name` of the process's directory and
 * returns its path (n == 0 makes an empty file; name NULL writes nothing and
 * returns the directory's own path).  The path stays valid for the next 7
 * calls.  Aborts if the file cannot be written: then nothing is tested. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t n);

/* Removes path and, if it is a directory, everything in it (what a parser
 * under test created); a missing path is no error. */
void fuzz_remove(const char *path);

#endif
