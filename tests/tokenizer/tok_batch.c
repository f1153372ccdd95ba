/* tok_batch.c: the C side of the cross-checks with Hugging Face tokenizers.
 *
 *   tok_batch TOKENIZER IN.json OUT.jsonl [--add_special_tokens] [--skip_special_tokens]
 *
 * IN.json is a list of strings (NUL allowed); for each one OUT.jsonl gets
 * {"ids": [...], "text": decode(ids)}, so thousands of strings cost one
 * process and one tokenizer load. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: tok_batch TOKENIZER IN.json OUT.jsonl [--add_special_tokens] "
                        "[--skip_special_tokens]\n");
        return 2;
    }
    int add_special = 0, skip_special = 0;
    for (int i = 4; i < argc; i++) {
        if (!strcmp(argv[i], "--add_special_tokens"))
            add_special = 1;
        else if (!strcmp(argv[i], "--skip_special_tokens"))
            skip_special = 1;
        else
            die(EXIT_USAGE, "tok_batch: %s: unknown flag", argv[i]);
    }
    errbuf e;
    tokenizer *t = tokenizer_load(argv[1], &e);
    if (!t)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    json_error_t jerr;
    json_t *in = json_load_file(argv[2], JSON_ALLOW_NUL, &jerr);
    if (!json_is_array(in))
        die(EXIT_FAILURE_RUN, "%s: not a JSON list of strings (%s)", argv[2], jerr.text);
    FILE *out = fopen(argv[3], "w");
    if (!out)
        die(EXIT_FAILURE_RUN, "%s: cannot create", argv[3]);
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) {
        int32_t *ids;
        size_t n_ids, n_text;
        char *text;
        if (!json_is_string(s))
            die(EXIT_FAILURE_RUN, "%s: item %zu is not a string", argv[2], i);
        if (tokenizer_encode(t, json_string_value(s), json_string_length(s), add_special, &ids,
                             &n_ids, &e) != 0 ||
            tokenizer_decode(t, ids, n_ids, skip_special, &text, &n_text, &e) != 0)
            die(EXIT_FAILURE_RUN, "item %zu: %s", i, e.msg);
        json_t *ids_json = json_array();
        for (size_t k = 0; k < n_ids; k++)
            json_array_append_new(ids_json, json_integer(ids[k]));
        json_t *row = json_pack("{s:o, s:s%}", "ids", ids_json, "text", text, n_text);
        char *line = row ? json_dumps(row, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
        if (!line)
            die(EXIT_FAILURE_RUN, "item %zu: cannot write JSON (decoded text not UTF-8?)", i);
        fprintf(out, "%s\n", line);
        free(line);
        json_decref(row);
        free(ids);
        free(text);
    }
    if (fclose(out) != 0)
        die(EXIT_FAILURE_RUN, "%s: write failed", argv[3]);
    json_decref(in);
    tokenizer_free(t);
    return 0;
}
