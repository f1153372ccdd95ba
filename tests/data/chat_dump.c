/* chat_dump.c: the C side of the chat and offset cross-checks with
 * transformers and tokenizers (tests/data/chat_agreement.py).
 *
 *   chat_dump render FORMAT TOKENIZER ROWS MAX_ROWS OUT.jsonl
 *       chat_setup_tokenizer(FORMAT) on TOKENIZER, then the first MAX_ROWS
 *       conversations of ROWS (.jsonl or a JSON array; "messages" or
 *       ShareGPT "conversations", human -> user, gpt -> assistant).  The
 *       first line of OUT is the tokenizer's special ids; then one line per
 *       row: {"text", "text_gen" (with the generation prompt), "ids",
 *       "spans" (assistant byte spans)}.
 *   chat_dump offsets TOKENIZER IN.json OUT.jsonl [--add_special_tokens] [--chat FORMAT]
 *       For each string of IN.json: {"ids", "offsets"} from
 *       tokenizer_encode_offsets; exits 1 when its ids differ from
 *       tokenizer_encode's. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat.h"
#include "tokenizer.h"

static json_t *ids_json(const int32_t *ids, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_integer(ids[i]));
    return a;
}

static void write_line(FILE *out, json_t *row)
{
    char *line = json_dumps(row, JSON_COMPACT | JSON_ENSURE_ASCII);
    if (!line)
        die(EXIT_FAILURE_RUN, "chat_dump: cannot write a JSON line");
    fprintf(out, "%s\n", line);
    free(line);
    json_decref(row);
}

/* Rows of a .jsonl file or of a JSON array. */
static json_t *load_rows(const char *path)
{
    json_error_t jerr;
    json_t *all = json_load_file(path, 0, &jerr);
    if (json_is_array(all))
        return all;
    json_decref(all);
    FILE *f = fopen(path, "r");
    if (!f)
        die(EXIT_FAILURE_RUN, "%s: cannot open", path);
    all = json_array();
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) != -1) {
        json_t *row = json_loads(line, 0, &jerr);
        if (!row)
            die(EXIT_FAILURE_RUN, "%s:%d: %s", path, jerr.line, jerr.text);
        json_array_append_new(all, row);
    }
    free(line);
    fclose(f);
    return all;
}

static int render_main(int argc, char **argv)
{
    if (argc != 7)
        die(EXIT_USAGE, "usage: chat_dump render FORMAT TOKENIZER ROWS MAX_ROWS OUT.jsonl");
    errbuf e;
    chat_format fmt;
    if (chat_format_from_name(argv[2], &fmt, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    tokenizer *t = tokenizer_load(argv[3], &e);
    if (!t || chat_setup_tokenizer(t, fmt, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    json_t *rows = load_rows(argv[4]);
    size_t max_rows = (size_t)atol(argv[5]);
    FILE *out = fopen(argv[6], "w");
    if (!out)
        die(EXIT_FAILURE_RUN, "%s: cannot create", argv[6]);
    const char *names[] = {"<s>", "</s>", "<pad>", "<|im_start|>user", "<|im_start|>assistant",
                           "<|im_start|>system", "<|im_end|>", "<|user|>", "<|assistant|>", "<|system|>"};
    json_t *head = json_object();
    json_t *tok_ids = json_object();
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        json_object_set_new(tok_ids, names[i], json_integer(tokenizer_token_to_id(t, names[i])));
    json_object_set_new(head, "tokens", tok_ids);
    json_object_set_new(head, "vocab_size", json_integer((json_int_t)tokenizer_vocab_size(t)));
    json_object_set_new(head, "bos", json_integer(tokenizer_bos_id(t)));
    json_object_set_new(head, "eos", json_integer(tokenizer_eos_id(t)));
    json_object_set_new(head, "pad", json_integer(tokenizer_pad_id(t)));
    write_line(out, head);
    for (size_t r = 0; r < json_array_size(rows) && r < max_rows; r++) {
        json_t *row = json_array_get(rows, r);
        json_t *list = json_object_get(row, "messages");
        int sharegpt = !list;
        if (sharegpt)
            list = json_object_get(row, "conversations");
        size_t n = json_array_size(list);
        chat_message *m = calloc(n ? n : 1, sizeof *m);
        for (size_t i = 0; i < n; i++) {
            json_t *msg = json_array_get(list, i);
            const char *role = json_string_value(json_object_get(msg, sharegpt ? "from" : "role"));
            json_t *content = json_object_get(msg, sharegpt ? "value" : "content");
            if (!role || !json_is_string(content))
                die(EXIT_FAILURE_RUN, "%s: row %zu message %zu is malformed", argv[4], r, i);
            if (sharegpt)
                role = !strcmp(role, "human") ? "user" : !strcmp(role, "gpt") ? "assistant" : role;
            m[i] = (chat_message){role, json_string_value(content), json_string_length(content)};
        }
        chat_text ct, gen;
        if (chat_render(fmt, m, n, 0, &ct, &e) != 0 || chat_render(fmt, m, n, 1, &gen, &e) != 0)
            die(EXIT_FAILURE_RUN, "row %zu: %s", r, e.msg);
        int32_t *ids;
        size_t n_ids;
        if (tokenizer_encode(t, ct.text, ct.n_bytes, 0, &ids, &n_ids, &e) != 0)
            die(EXIT_FAILURE_RUN, "row %zu: %s", r, e.msg);
        json_t *spans = json_array();
        for (size_t k = 0; k < ct.n_assistant; k++)
            json_array_append_new(spans, json_pack("[I,I]", (json_int_t)ct.assistant[2 * k],
                                                   (json_int_t)ct.assistant[2 * k + 1]));
        write_line(out, json_pack("{s:s%, s:s%, s:o, s:o}", "text", ct.text, ct.n_bytes, "text_gen", gen.text,
                                  gen.n_bytes, "ids", ids_json(ids, n_ids), "spans", spans));
        free(ids);
        free(m);
        chat_text_free(&ct);
        chat_text_free(&gen);
    }
    fclose(out);
    json_decref(rows);
    tokenizer_free(t);
    return 0;
}

static int offsets_main(int argc, char **argv)
{
    if (argc < 5)
        die(EXIT_USAGE, "usage: chat_dump offsets TOKENIZER IN.json OUT.jsonl [--add_special_tokens] [--chat FORMAT]");
    errbuf e;
    int add_special = 0;
    chat_format fmt = CHAT_NONE;
    for (int i = 5; i < argc; i++) {
        if (!strcmp(argv[i], "--add_special_tokens"))
            add_special = 1;
        else if (!strcmp(argv[i], "--chat") && i + 1 < argc) {
            if (chat_format_from_name(argv[++i], &fmt, &e) != 0)
                die(EXIT_USAGE, "%s", e.msg);
        } else
            die(EXIT_USAGE, "chat_dump offsets: %s: unknown flag", argv[i]);
    }
    tokenizer *t = tokenizer_load(argv[2], &e);
    if (!t || chat_setup_tokenizer(t, fmt, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    json_error_t jerr;
    json_t *in = json_load_file(argv[3], JSON_ALLOW_NUL, &jerr);
    if (!json_is_array(in))
        die(EXIT_FAILURE_RUN, "%s: not a JSON list of strings (%s)", argv[3], jerr.text);
    FILE *out = fopen(argv[4], "w");
    if (!out)
        die(EXIT_FAILURE_RUN, "%s: cannot create", argv[4]);
    size_t i;
    json_t *s;
    json_array_foreach(in, i, s) {
        int32_t *ids, *plain;
        size_t *offsets, n_ids, n_plain;
        if (tokenizer_encode_offsets(t, json_string_value(s), json_string_length(s), add_special, &ids, &offsets,
                                     &n_ids, &e) != 0 ||
            tokenizer_encode(t, json_string_value(s), json_string_length(s), add_special, &plain, &n_plain, &e) != 0)
            die(EXIT_FAILURE_RUN, "item %zu: %s", i, e.msg);
        if (n_plain != n_ids || memcmp(ids, plain, n_ids * sizeof *ids) != 0)
            die(EXIT_FAILURE_RUN, "item %zu: tokenizer_encode_offsets and tokenizer_encode give different ids", i);
        json_t *offs = json_array();
        for (size_t k = 0; k < n_ids; k++)
            json_array_append_new(offs, json_pack("[I,I]", (json_int_t)offsets[2 * k], (json_int_t)offsets[2 * k + 1]));
        write_line(out, json_pack("{s:o, s:o}", "ids", ids_json(ids, n_ids), "offsets", offs));
        free(ids);
        free(plain);
        free(offsets);
    }
    fclose(out);
    json_decref(in);
    tokenizer_free(t);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "render"))
        return render_main(argc, argv);
    if (argc >= 2 && !strcmp(argv[1], "offsets"))
        return offsets_main(argc, argv);
    fprintf(stderr, "usage: chat_dump render|offsets ...\n");
    return 2;
}
