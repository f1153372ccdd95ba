/* data_dump.c: loads a dataset split as `shardtune train` would and writes
 * its rows, for the Python checks of tokenization, masks and packing
 * (tests/data/data_agreement.py) and the error tests.
 *
 *   data_dump --tokenizer PATH|none --vocab N --split 0|1 --out OUT.jsonl [data flags]
 *
 * The data flags are train's (--dataset_name, --splits, --dataset_text_field,
 * --chat_template_format, --chat_template_path, --packing, ...), parsed by
 * config.c; without --chat_template_format, conversations are rendered with
 * the tokenizer directory's own chat template, as train renders them.  OUT gets one line per row: {"ids", "labels" (null: = ids),
 * "seg" (null: one document)}.  A load error is printed as the program
 * prints it, exit status 1. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "chat_model.h"
#include "data.h"
/* by path: "config.h" alone would find Autotools' config.h of the build */
#include "../../src/config.h"
#include "tokenizer.h"

static json_t *ints_json(const int32_t *v, int n)
{
    if (!v)
        return json_null();
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_integer(v[i]));
    return a;
}

int main(int argc, char **argv)
{
    const char *tok_path = NULL, *out_path = NULL;
    int vocab = -1, split = 0;
    char **rest = malloc((size_t)(argc + 2) * sizeof *rest);
    int n_rest = 0;
    rest[n_rest++] = "--model_name_or_path";
    rest[n_rest++] = "unused";
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--tokenizer"))
            tok_path = argv[++i];
        else if (i + 1 < argc && !strcmp(argv[i], "--vocab"))
            vocab = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--split"))
            split = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--out"))
            out_path = argv[++i];
        else
            rest[n_rest++] = argv[i];
    }
    if (!tok_path || !out_path)
        die(EXIT_USAGE, "usage: data_dump --tokenizer PATH|none [--vocab N] [--split K] --out OUT.jsonl [data flags]");
    errbuf e;
    run_config c;
    if (config_parse(&c, CMD_EVAL, n_rest, rest, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    data_options o;
    if (data_options_from_config(&c, &o, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    tokenizer *t = NULL;
    if (strcmp(tok_path, "none")) {
        t = tokenizer_load(tok_path, &e);
        if (!t || chat_setup_tokenizer(t, o.chat_format, &e) != 0)
            die(EXIT_FAILURE_RUN, "%s", e.msg);
    }
    chat_model *cm = NULL;
    if (o.chat_format == CHAT_NONE &&
        chat_model_load(t ? tok_path : NULL, c.chat_template_path, &cm, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    o.chat_model = cm;
    if (vocab < 0)
        vocab = t ? (int)tokenizer_vocab_size(t) : 1 << 30;
    dataset d;
    if (dataset_load(&o, split, t, vocab, &d, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    FILE *out = fopen(out_path, "w");
    if (!out)
        die(EXIT_FAILURE_RUN, "%s: cannot create", out_path);
    for (size_t r = 0; r < d.n_rows; r++) {
        json_t *row = json_pack("{s:o, s:o, s:o}", "ids", ints_json(d.ids[r], d.len[r]), "labels",
                                ints_json(d.labels[r], d.len[r]), "seg",
                                ints_json(d.seg ? d.seg[r] : NULL, d.len[r]));
        char *line = json_dumps(row, JSON_COMPACT);
        fprintf(out, "%s\n", line);
        free(line);
        json_decref(row);
    }
    fclose(out);
    dataset_free(&d);
    chat_model_free(cm);
    tokenizer_free(t);
    config_free(&c);
    free(rest);
    return 0;
}
