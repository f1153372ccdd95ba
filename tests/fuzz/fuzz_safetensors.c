/* fuzz_safetensors.c: libFuzzer target for the .safetensors reader
 * (io/safetensors.c, safetensors_open), the untrusted weights of a model
 * or an adapter.
 *
 * Each input is a whole file: 8-byte little-endian header length, JSON
 * header (dtype, shape, data_offsets, __metadata__), data block.  It is
 * written to a private directory and opened.  The sanitizers and libFuzzer's
 * limits catch crashes, reads past the mapping, undefined behaviour, hangs
 * and unbounded memory; the target checks that a refusal is one non-empty
 * line and that an accepted file keeps the reader's promises
 * (fuzz_st_check.h). */
#include <stdint.h>

#include "fuzz_file.h"
#include "fuzz_st_check.h"
#include "safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_write("model.safetensors", data, size);
    errbuf e = {{0}};
    safetensors *st = safetensors_open(path, &e);
    if (!st) {
        fuzz_check_error("fuzz_safetensors", "safetensors_open", &e);
        return 0;
    }
    fuzz_st_file f = {path, data, size};
    fuzz_st_check("fuzz_safetensors", st, &f, 1);
    safetensors_close(st);
    return 0;
}
