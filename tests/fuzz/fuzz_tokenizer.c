/* fuzz_tokenizer.c: libFuzzer target for the tokenizer loader
 * (src/tokenizer*.c), the untrusted tokenizer files of a model directory.
 *
 * An input is one or two files, split at its first NUL byte into A and B:
 *   - no NUL: A is tokenizer.json;
 *   - B starts with '{' (after blanks): A is tokenizer.json, B
 *     tokenizer_config.json;
 *   - else A is GPT-2's slow vocab.json and B its merges.txt.
 * They are written into a private directory (fuzz_file.h), which is loaded
 * as a model directory is (tokenizer_load(dir)).  A refusal must be one
 * non-empty line.  A loaded tokenizer encodes fixed texts (ASCII, accents,
 * CJK, an emoji, blanks, GPT-2's and Llama's special tokens) and the
 * input's own first bytes, with and without special tokens; every id must
 * lie in [0, vocab_size), the ids with offsets must be the same ids with
 * each span inside the text, and the ids must decode (or be refused in one
 * line).  The input size is capped by fuzz_run.sh's -max_len: a large
 * vocabulary costs time per input, not coverage.  ASan, UBSan and
 * libFuzzer's -timeout / -rss_limit_mb catch the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_file.h"
#include "tokenizer.h"
#include "utf8.h"

static void check_text(const tokenizer *t, const char *text, size_t n, int add_special)
{
    errbuf e = {{0}};
    int32_t *ids = NULL, *ids2 = NULL;
    size_t n_ids = 0, n_ids2 = 0, *offsets = NULL;
    if (tokenizer_encode(t, text, n, add_special, &ids, &n_ids, &e) != 0) {
        fuzz_check_error("fuzz_tokenizer", "encode", &e);
        return;
    }
    size_t vocab = tokenizer_vocab_size(t);
    for (size_t i = 0; i < n_ids; i++)
        if (ids[i] < 0 || (size_t)ids[i] >= vocab) {
            fprintf(stderr, "fuzz_tokenizer: id %d (token %zu) outside the vocabulary of %zu\n", ids[i], i, vocab);
            abort();
        }
    if (tokenizer_encode_offsets(t, text, n, add_special, &ids2, &offsets, &n_ids2, &e) != 0) {
        fprintf(stderr, "fuzz_tokenizer: encode succeeds but encode_offsets fails: %s\n", e.msg);
        abort();
    }
    if (n_ids2 != n_ids || (n_ids && memcmp(ids, ids2, n_ids * sizeof *ids))) {
        fprintf(stderr, "fuzz_tokenizer: encode_offsets gives other ids than encode\n");
        abort();
    }
    for (size_t i = 0; i < n_ids; i++)
        if (offsets[2 * i] > offsets[2 * i + 1] || offsets[2 * i + 1] > n) {
            fprintf(stderr, "fuzz_tokenizer: token %zu has span [%zu, %zu) outside the text of %zu bytes\n", i,
                    offsets[2 * i], offsets[2 * i + 1], n);
            abort();
        }
    for (int skip = 0; skip < 2; skip++) {
        char *out = NULL;
        size_t n_out = 0;
        if (tokenizer_decode(t, ids, n_ids, skip, &out, &n_out, &e) != 0) {
            fuzz_check_error("fuzz_tokenizer", "decode", &e);
            continue;
        }
        if (out[n_out] != 0)
            abort();
        free(out);
    }
    free(ids);
    free(ids2);
    free(offsets);
}

static const char *const TEXTS[] = {
    "Hello world",
    "  caf\xc3\xa9 na\xc3\xafve  \t\n\n\xe4\xb8\x96\xe7\x95\x8c \xf0\x9f\x98\x80 1234567 it's",
    "<s>[INST] Hi </s><|endoftext|><unk><|im_start|>user\nx<|im_end|>",
    " ",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, 0, size);
    size_t na = nul ? (size_t)(nul - data) : size;
    const uint8_t *b = nul ? nul + 1 : NULL;
    size_t nb = nul ? size - na - 1 : 0, k = 0;
    while (k < nb && (b[k] == ' ' || b[k] == '\t' || b[k] == '\r' || b[k] == '\n'))
        k++;
    const int slow = nul && !(k < nb && b[k] == '{');
    /* every name this target writes, so that an earlier input's file is not read */
    fuzz_remove("tokenizer.json");
    fuzz_remove("tokenizer_config.json");
    fuzz_remove("vocab.json");
    fuzz_remove("merges.txt");
    if (slow) {
        fuzz_write("vocab.json", data, na);
        fuzz_write("merges.txt", b, nb);
    } else {
        fuzz_write("tokenizer.json", data, na);
        if (nul)
            fuzz_write("tokenizer_config.json", b, nb);
    }
    errbuf e = {{0}};
    tokenizer *t = tokenizer_load(fuzz_dir(), &e);
    if (!t) {
        fuzz_check_error("fuzz_tokenizer", "load", &e);
        return 0;
    }
    for (size_t i = 0; i < sizeof TEXTS / sizeof *TEXTS; i++)
        for (int add = 0; add < 2; add++)
            check_text(t, TEXTS[i], strlen(TEXTS[i]), add);
    /* the input's own bytes reach merges and added tokens no fixed text has */
    size_t n = size < 256 ? size : 256;
    while (n > 0 && !utf8_valid((const char *)data, n, NULL))
        n--;
    if (n > 0)
        check_text(t, (const char *)data, n, 1);
    tokenizer_free(t);
    return 0;
}
