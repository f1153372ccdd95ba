/* fuzz_llama2c.c: libFuzzer target for the llama2.c checkpoint and tokenizer
 * reader (convert_llama2c, src/convert_llama2c.c): `shardtune convert
 * llama2c` reads both files as downloaded, so both are untrusted.
 *
 * An input is split into the two files: its first 4 bytes (little-endian)
 * give the checkpoint's length (cut to what follows), the checkpoint comes
 * next and the rest is the tokenizer.  The conversion writes into an output
 * directory in the process's temporary directory, removed after each run.
 * Checked besides what the sanitizers and libFuzzer's limits catch (a header
 * claiming a huge model must be refused against the file's size, not
 * allocated): a refusal is one non-empty line and leaves no output
 * directory files behind; a conversion writes all four files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "convert_llama2c.h"
#include "fuzz_file.h"

static const char *const OUTPUTS[] = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                      "model.safetensors"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t ck_len = 0;
    if (size >= 4)
        ck_len = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    size_t rest = size >= 4 ? size - 4 : 0;
    size_t n_ck = ck_len < rest ? ck_len : rest;
    /* fuzz_write's path is static storage: copied before the next call */
    char ck[1024], tok[1024], out[1024];
    snprintf(ck, sizeof ck, "%s", fuzz_write("model.bin", data + (size - rest), n_ck));
    snprintf(tok, sizeof tok, "%s", fuzz_write("tokenizer.bin", data + (size - rest) + n_ck, rest - n_ck));
    snprintf(out, sizeof out, "%s/out", fuzz_dir());

    errbuf e = {{0}};
    int rc = convert_llama2c(ck, tok, out, &e);
    if (rc != 0)
        fuzz_check_error("fuzz_llama2c", "convert_llama2c", &e);
    for (size_t i = 0; i < sizeof OUTPUTS / sizeof *OUTPUTS; i++) {
        char path[1100];
        snprintf(path, sizeof path, "%s/%s", out, OUTPUTS[i]);
        /* a failed conversion removes what it wrote; a success wrote everything */
        if ((access(path, F_OK) == 0) != (rc == 0)) {
            fprintf(stderr, "fuzz_llama2c: %s %s after a %s conversion\n", path,
                    rc == 0 ? "missing" : "left", rc == 0 ? "successful" : "failed");
            abort();
        }
    }
    fuzz_remove("out");
    return 0;
}
