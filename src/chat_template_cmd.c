/* chat_template_cmd.c: `shardtune chat-template`: the text a model's own chat
 * template (tokenizer_config.json's "chat_template", or chat_template.jinja)
 * makes of each conversation of a data file -- what to check before a long
 * run, and what the tests compare with transformers' apply_chat_template. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_template_cmd.h"
#include "data_internal.h"
#include "jinja.h"
#include "log.h"

static const char USAGE[] =
    "usage: shardtune chat-template (--model_name_or_path DIR | --chat_template_path FILE)\n"
    "                               [--add_generation_prompt] [--jsonl] FILE\n"
    "  FILE: .jsonl rows (or a .json array) with \"messages\" [{role, content}] or ShareGPT\n"
    "  \"conversations\" [{from, value}]; prints each row's text as the model's chat template\n"
    "  renders it (transformers' apply_chat_template(tokenize=False)); --jsonl prints each\n"
    "  text as one JSON string per line ({\"error\": ...} for a row that fails, and the\n"
    "  others go on)\n";

static char *read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *s = xmalloc(cap);
    size_t got;
    while ((got = fread(s + len, 1, cap - len - 1, f)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *t = realloc(s, cap *= 2);
            if (!t)
                die(EXIT_FAILURE_RUN, "chat-template: out of memory reading %s", path);
            s = t;
        }
    }
    fclose(f);
    s[len] = 0;
    *n = len;
    return s;
}

/* The template of DIR: chat_template.jinja, else tokenizer_config.json's
 * "chat_template" (a string, or a list of {name, template}: "default"). The
 * special tokens of tokenizer_config.json go into vars. */
static char *model_template(const char *dir, json_t *vars, size_t *n)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/tokenizer_config.json", dir);
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    if (!cfg)
        die(EXIT_FAILURE_RUN, "chat-template: %s: %s (line %d)", path, jerr.text, jerr.line);
    static const char *const specials[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (size_t i = 0; i < 4; i++) {
        json_t *v = json_object_get(cfg, specials[i]);
        if (json_is_object(v))
            v = json_object_get(v, "content");
        if (json_is_string(v))
            json_object_set(vars, specials[i], v);
    }
    char jpath[4096];
    snprintf(jpath, sizeof jpath, "%s/chat_template.jinja", dir);
    char *text = read_file(jpath, n);
    if (text) {
        json_decref(cfg);
        return text;
    }
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_array(t)) {
        size_t i;
        json_t *entry, *found = NULL;
        json_array_foreach(t, i, entry) if (!strcmp(json_string_value(json_object_get(entry, "name")) ?: "", "default"))
            found = json_object_get(entry, "template");
        t = found;
    }
    if (!json_is_string(t))
        die(EXIT_FAILURE_RUN, "chat-template: %s has no \"chat_template\" (nor a \"default\" one in its list) and "
            "there is no %s", path, jpath);
    *n = json_string_length(t);
    text = xmalloc(*n + 1);
    memcpy(text, json_string_value(t), *n + 1);
    json_decref(cfg);
    return text;
}

/* A row's conversation as the messages a template sees: "messages" as they
 * are, ShareGPT "conversations" as {role, content} with its roles mapped as
 * training maps them (data_row_messages). */
static json_t *row_messages(json_t *row, const char *path, size_t line)
{
    json_t *m = json_object_get(row, "messages");
    if (m) {
        if (!json_is_array(m))
            die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: \"messages\" is not a list", path, line);
        return json_incref(m);
    }
    json_t *conv = json_object_get(row, "conversations");
    if (!conv)
        die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: no \"messages\" or \"conversations\"", path, line);
    chat_message *msgs;
    size_t n;
    errbuf e;
    if (data_row_messages(conv, "conversations", path, line, &msgs, &n, &e) != 0)
        die(EXIT_FAILURE_RUN, "chat-template: %s", e.msg);
    json_t *out = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(out, json_pack("{s:s, s:s%}", "role", msgs[i].role, "content", msgs[i].content,
                                             msgs[i].content_len));
    free(msgs);
    return out;
}

/* Renders one row; with --jsonl a row the template refuses (or raises on)
 * prints {"error": "..."} and the others go on (returns 1), else it ends the
 * command. */
static int render_row(const jinja_template *t, json_t *vars, json_t *row, const char *path, size_t line, int jsonl)
{
    if (!json_is_object(row))
        die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: the row is not an object", path, line);
    json_object_set_new(vars, "messages", row_messages(row, path, line));
    char *text;
    size_t n;
    errbuf e;
    if (jinja_render(t, vars, &text, &n, &e) != 0) {
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
        json_t *s = json_stringn(text, n);
        if (!s)
            die(EXIT_FAILURE_RUN, "chat-template: %s:%zu: the rendered text is not UTF-8", path, line);
        char *j = json_dumps(s, JSON_ENCODE_ANY);
        puts(j);
        free(j);
        json_decref(s);
    } else {
        fwrite(text, 1, n, stdout);
        fputc('\n', stdout);
    }
    free(text);
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
            die(EXIT_USAGE, "chat-template: %s: unknown flag (see shardtune chat-template --help)", a);
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
    /* as apply_chat_template: tools and documents are there, None */
    json_t *vars = json_object();
    json_object_set_new(vars, "add_generation_prompt", json_boolean(gen));
    json_object_set_new(vars, "tools", json_null());
    json_object_set_new(vars, "documents", json_null());
    size_t n;
    char *src = NULL;
    if (model)
        src = model_template(model, vars, &n);
    if (template_path) {
        free(src);
        src = read_file(template_path, &n);
        if (!src)
            die(EXIT_FAILURE_RUN, "chat-template: --chat_template_path %s: %s", template_path, strerror(errno));
    }
    errbuf e;
    jinja_template *t = jinja_parse(src, n, &e);
    if (!t)
        die(EXIT_FAILURE_RUN, "%s: %s", template_path ? template_path : model, e.msg);
    free(src);

    int failed = 0;
    size_t len;
    char *data = read_file(file, &len);
    if (!data)
        die(EXIT_FAILURE_RUN, "chat-template: %s: %s", file, strerror(errno));
    size_t at = strspn(data, " \t\r\n");
    json_error_t jerr;
    if (data[at] == '[') { /* a JSON array of rows */
        json_t *rows = json_loadb(data, len, 0, &jerr);
        if (!rows)
            die(EXIT_FAILURE_RUN, "chat-template: %s:%d: %s", file, jerr.line, jerr.text);
        size_t i;
        json_t *row;
        json_array_foreach(rows, i, row) failed |= render_row(t, vars, row, file, i + 1, jsonl);
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
                failed |= render_row(t, vars, row, file, line, jsonl);
                json_decref(row);
            }
            p += l + (nl != NULL);
        }
    }
    free(data);
    json_decref(vars);
    jinja_free(t);
    if (fflush(stdout) != 0)
        die(EXIT_FAILURE_RUN, "chat-template: cannot write the output: %s", strerror(errno));
    return failed ? EXIT_FAILURE_RUN : 0;
}
