/* fuzz_file.h: a fuzz target's input as a file, for loaders that take a path
 * (tokenizer_load, dataset_load). */
#ifndef SHARDTUNE_FUZZ_FILE_H
#define SHARDTUNE_FUZZ_FILE_H

#include <stddef.h>
#include <stdint.h>

/* Writes data[0..n) to NAME (a string constant: it is kept to remove the
 * file at exit) in the process's private temporary directory
 * (made once, in /dev/shm when there is one: no disk I/O per input) and
 * returns its path, valid until the next call.  A NAME written by an
 * earlier input is overwritten, so a target that writes a file only for
 * some inputs removes it (fuzz_remove) for the others.  Aborts when the
 * file cannot be written: that is the harness failing, not the input. */
const char *fuzz_write(const char *name, const uint8_t *data, size_t n);
/* Removes NAME from the directory (absent is fine). */
void fuzz_remove(const char *name);
/* The directory itself. */
const char *fuzz_dir(void);

#endif
