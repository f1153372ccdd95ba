/* fuzz_safetensors_index.c: libFuzzer target for a sharded model directory
 * (io/safetensors.c, safetensors_open_dir with model.safetensors.index.json).
 *
 * An input is split in two: its first 4 bytes are the little-endian length L
 * of the index (cut to what follows), the next L bytes are
 * model.safetensors.index.json and the rest is the one shard,
 * model-00001-of-00001.safetensors (the name the seeds' index gives; an
 * index naming any other shard must be refused as a missing file).  Inputs
 * under 4 bytes are skipped.  Both files go to a private directory, which is
 * opened.  A refusal must be one non-empty line; an accepted set must keep
 * the reader's promises (fuzz_st_check.h), every tensor in one of the two
 * files (an index naming itself as its shard is refused as a header length
 * over the limit, but the check does not rely on it). */
#include <stdint.h>
#include <stdio.h>

#include "fuzz_file.h"
#include "fuzz_st_check.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 4)
        return 0;
    size_t n_index = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16 | (size_t)data[3] << 24;
    if (n_index > size - 4)
        n_index = size - 4;
    /* fuzz_write's path is static storage: copied before the next call */
    char index_path[1024], shard_path[1024];
    snprintf(index_path, sizeof index_path, "%s", fuzz_write("model.safetensors.index.json", data + 4, n_index));
    const uint8_t *shard = data + 4 + n_index;
    size_t n_shard = size - 4 - n_index;
    snprintf(shard_path, sizeof shard_path, "%s", fuzz_write("model-00001-of-00001.safetensors", shard, n_shard));
    fuzz_st_file files[2] = {{shard_path, shard, n_shard}, {index_path, data + 4, n_index}};
    errbuf e = {{0}};
    safetensors *st = safetensors_open_dir(fuzz_dir(), &e);
    if (!st) {
        fuzz_check_error("fuzz_safetensors_index", "safetensors_open_dir", &e);
        return 0;
    }
    fuzz_st_check("fuzz_safetensors_index", st, files, 2);
    safetensors_close(st);
    return 0;
}
