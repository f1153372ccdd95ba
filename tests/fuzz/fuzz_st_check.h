/* fuzz_st_check.h: the checks of an opened safetensors set, shared by the
 * targets of the single-file reader and of the sharded index. */
#ifndef SHARDTUNE_FUZZ_ST_CHECK_H
#define SHARDTUNE_FUZZ_ST_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

/* A file the target wrote: its path and its bytes. */
typedef struct fuzz_st_file {
    const char *path;
    const uint8_t *bytes;
    size_t size;
} fuzz_st_file;

/* Aborts, naming target, unless st keeps what the reader promises of the
 * n_files files it was read from: each tensor has a known dtype, n_elems is
 * the product of its shape and n_bytes n_elems times the dtype size; its
 * bytes lie in its file's data block (after the 8-byte length and the
 * header) and data points at them; safetensors_find gives it back by name;
 * F32, F16 and BF16 convert to fp32 (while the input's tensors total at most
 * 64 MiB), any other dtype is refused in one line. */
void fuzz_st_check(const char *target, const safetensors *st, const fuzz_st_file *files, int n_files);

#endif
