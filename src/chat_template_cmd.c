/* chat_template_cmd.c: `shardtune chat-template`: the text a model's own chat
 * template (tokenizer_config.json's "chat_template", or chat_template.jinja)
 * makes of each conversation of a data file -- what to check before a long
 * run, and what the tests compare with transformers' apply_chat_template. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_model.h"
#include "chat_template_cmd.h"
#include "data_internal.h"
#include "file_read.h"
#include "log.h"
#include "suggest.h"

static const char USAGE[] =
    "usage: shardtune chat-template (--model_name_or_path DIR | --chat_template_path FILE)\n"
    "                               [--add_generation_prompt] [--jsonl] FILE\n"
    "  FILE: .jsonl rows (or a .json array) with \"messages\" [{role, content}] or ShareGPT\n"
    "  \"conversations\" [{from, value}]; prints each row's text as the model's chat template\n"
    "  renders it (transformers' apply_chat_template(tokenize=False)); --jsonl prints each\n"
    "  text as one JSON string per line ({\"error\": ...} for a row that fails, and the\n"
    "  others go on)\n";

/* A row's conversation as the messages a template sees (training's
 * data_row_template_messages). */
static json_t *row_messages(json_t *row, const char *path, size_t line)
{
    const char *key = json_object_get(row, "messages") ? "messages"
                    : json_object_get(row, "conversations") ? "conversations"
                                                             : NULL;
    if (!key)
        die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: no \"messages\" or \"conversations\"", path, line);
    errbuf e;
    json_t *m = data_row_template_messages(row, key, path, line, &e);
    if (!m)
        die(EXIT_FAILURE_RUN, "chat-template: %s", e.msg);
    return m;
}

/* Renders one row; with --jsonl a row the template refuses (or raises on)
 * prints {"error": "..."} and the others go on (returns 1), else it ends the
 * command. */
static int render_row(const chat_model *m, int gen, json_t *row, const char *path, size_t line, int jsonl)
{
    if (!json_is_object(row))
        die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: the row is not an object", path, line);
    json_t *messages = row_messages(row, path, line);
    chat_text ct;
    errbuf e;
    int rc = chat_model_render(m, messages, json_object_get(row, "tools"), gen, 0, &ct, &e);
    json_decref(messages);
    if (rc != 0) {
        if (!jsonl)
            die(EXIT_FAILURE_RUN, "%s:%zu: %s", path, line, e.msg);
        fprintf(stderr, "shardtune: error: %s:%zu: %s\n", path, line, e.msg);
        json_t *err = json_pack("{s:s}", "error", e.msg);
        char *j = json_dumps(err, 0);
        puts(j);
        free(j);
        json_decref(err);
        return 1;
    }
    if (jsonl) {
        json_t *s = json_stringn(ct.text, ct.n_bytes);
        if (!s)
            die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: the rendered text is not UTF-8", path, line);
        char *j = json_dumps(s, JSON_ENCODE_ANY);
        puts(j);
        free(j);
        json_decref(s);
    } else {
        fwrite(ct.text, 1, ct.n_bytes, stdout);
        fputc('\n', stdout);
    }
    chat_text_free(&ct);
    return 0;
}

int chat_template_main(int argc, char **argv)
{
    const char *model = NULL, *template_path = NULL, *file = NULL;
    int gen = 0, jsonl = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(USAGE, stdout);
            return 0;
        } else if (!strcmp(a, "--add_generation_prompt")) {
            gen = 1;
        } else if (!strcmp(a, "--jsonl")) {
            jsonl = 1;
        } else if (!strcmp(a, "--model_name_or_path") || !strcmp(a, "--chat_template_path")) {
            if (i + 1 >= argc)
                die(EXIT_USAGE, "chat-template: %s needs a value", a);
            *(a[2] == 'm' ? &model : &template_path) = argv[++i];
        } else if (!strncmp(a, "--", 2)) {
            static const char *const known[] = {"--model_name_or_path", "--chat_template_path",
                                                "--add_generation_prompt", "--jsonl", "--help", NULL};
            die_unknown_flag("chat-template", a, known);
        } else if (file) {
            die(EXIT_USAGE, "chat-template: one FILE only (got %s and %s)", file, a);
        } else {
            file = a;
        }
    }
    if (!model && !template_path)
        die(EXIT_USAGE, "chat-template: --model_name_or_path DIR or --chat_template_path FILE is required");
    if (!file)
        die(EXIT_USAGE, "chat-template: no FILE given");
    chat_model *m;
    errbuf e;
    if (chat_model_load(model, template_path, &m, &e) != 0)
        die(EXIT_FAILURE_RUN, "chat-template: %s", e.msg);
    if (!m)
        die(EXIT_FAILURE_RUN, "chat-template: %s has no chat template (no chat_template.jinja, no \"chat_template\" "
            "in tokenizer_config.json)", model);
    if (chat_model_error(m))
        die(EXIT_FAILURE_RUN, "chat-template: %s", chat_model_error(m));

    int failed = 0;
    size_t len;
    char *data = file_read_all(file, &len, &e);
    if (!data)
        die(EXIT_FAILURE_RUN, "chat-template: %s", e.msg);
    size_t at = strspn(data, " \t\r\n");
    json_error_t jerr;
    if (data[at] == '[') { /* a JSON array of rows */
        json_t *rows = json_loadb(data, len, 0, &jerr);
        if (!rows)
            die(EXIT_FAILURE_RUN, "chat-template: %s:%d: %s", file, jerr.line, jerr.text);
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) failed |= render_row(m, gen, row, file, i + 1, jsonl);
        json_decref(rows);
    } else {
        size_t line = 0;
        for (char *p = data; *p;) {
            char *nl = strchr(p, '\n');
            size_t l = nl ? (size_t)(nl - p) : strlen(p);
            line++;
            if (strspn(p, " \t\r") < l) {
                json_t *row = json_loadb(p, l, 0, &jerr);
                if (!row)
                    die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: %s", file, line, jerr.text);
                failed |= render_row(m, gen, row, file, line, jsonl);
                json_decref(row);
            }
            p += l + (nl != NULL);
        }
    }
    free(data);
    chat_model_free(m);
    if (fflush(stdout) != 0)
        die(EXIT_FAILURE_RUN, "chat-template: cannot write the output: %s", strerror(errno));
    return failed ? EXIT_FAILURE_RUN : 0;
}
