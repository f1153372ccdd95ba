/* fuzz_rows.c: libFuzzer target for dataset rows (src/data_load.c,
 * src/data_rows.c), the untrusted .jsonl / .json files a run trains on.
 *
 * An input is one option byte, then the file.  The byte's bits choose
 * what a run's flags would: 1 packing, 2 best-fit (else wrapped) packing,
 * 4 --chat_template_format chatml (else none), 8 --assistant_only_loss,
 * 16 --append_concat_token, 32 --add_special_tokens, 64 a max_seq_len of 8
 * (else 64, so that truncation and packing both cut rows).  The file is
 * written as rows.jsonl in a private directory (fuzz_file.h; the loader
 * tells JSON Lines from one JSON array by the first character, not the
 * name) and loaded with GPT-2's slow tokenizer of tests/tokenizer/data/gpt2
 * (chat_setup_tokenizer'd for chatml).  A refusal must be one non-empty
 * line; a dataset must have rows of 1 to max_seq_len tokens, every id in
 * [0, vocab_size), every label an id or -100, documents numbered from 0.
 * ASan, UBSan and libFuzzer's -timeout / -rss_limit_mb catch the rest. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data.h"
#include "fuzz_file.h"

#ifndef FUZZ_GPT2_DIR
#error "FUZZ_GPT2_DIR: the directory of GPT-2's vocab.json and merges.txt (tests/local.mk defines it)"
#endif

static tokenizer *tok[2]; /* none, chatml */

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "fuzz_rows: %s: %s\n", what, detail);
    abort();
}

static void check_dataset(const dataset *d, int max_len, int vocab)
{
    char why[128];
    for (size_t r = 0; r < d->n_rows; r++) {
        /* the labels and seg arrays may be absent altogether, or per row */
        const int32_t *labels = d->labels ? d->labels[r] : NULL, *segs = d->seg ? d->seg[r] : NULL;
        if (d->len[r] < 1 || d->len[r] > max_len) {
            snprintf(why, sizeof why, "row %zu has %d tokens (1 to %d)", r, d->len[r], max_len);
            fail("a bad row", why);
        }
        for (int i = 0; i < d->len[r]; i++) {
            int32_t id = d->ids[r][i], label = labels ? labels[i] : id;
            int32_t seg = segs ? segs[i] : 0, prev = i && segs ? segs[i - 1] : 0;
            if (id < 0 || id >= vocab || (label != IGNORE_INDEX && (label < 0 || label >= vocab)) ||
                seg < prev || seg > prev + 1 || (i == 0 && seg != 0)) {
                snprintf(why, sizeof why, "row %zu token %d: id %d label %d document %d", r, i, id, label, seg);
                fail("a bad token", why);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    errbuf e = {{0}};
    if (!tok[0]) {
        for (int k = 0; k < 2; k++)
            if (!(tok[k] = tokenizer_load(FUZZ_GPT2_DIR, &e)) ||
                (k && chat_setup_tokenizer(tok[k], CHAT_CHATML, &e) != 0))
                fail("the tokenizer does not load", e.msg);
    }
    const uint8_t opt = data[0];
    data_options o;
    data_options_default(&o);
    o.dataset_name = fuzz_write("rows.jsonl", data + 1, size - 1);
    o.packing = opt & 1;
    o.packing_strategy = opt & 2 ? PACK_BFD : PACK_WRAPPED;
    o.chat_format = opt & 4 ? CHAT_CHATML : CHAT_NONE;
    o.assistant_only_loss = (opt & 8) != 0;
    o.append_concat_token = (opt & 16) != 0;
    o.add_special_tokens = (opt & 32) != 0;
    o.max_seq_len = opt & 64 ? 8 : 64;
    const tokenizer *t = tok[o.chat_format == CHAT_CHATML];
    int vocab = (int)tokenizer_vocab_size(t);
    dataset d;
    if (dataset_load(&o, 0, t, vocab, &d, &e) != 0) {
        fuzz_check_error("fuzz_rows", "dataset_load", &e);
        return 0;
    }
    check_dataset(&d, o.max_seq_len, vocab);
    dataset_free(&d);
    return 0;
}
