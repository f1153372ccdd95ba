/* chat_model.c: a model's own chat template, found, rendered and its
 * assistant replies located (see chat_model.h). */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chat_model.h"
#include "file_read.h"
#include "jinja.h"
#include "utf8.h"

/* One template: its text, where it came from, and its parse. */
typedef struct template_slot {
    char *source;        /* NULL: absent */
    size_t n_source;
    char *origin;        /* a file, or tokenizer_config.json, for messages */
    jinja_template *t;   /* NULL when it did not parse: */
    char *parse_error;   /* then this, reported at the first render */
} template_slot;

/* transformers keeps a tokenizer's templates by name; rendering uses
 * "tool_use" for a conversation with tools when there is one, else
 * "default" (get_chat_template). */
struct chat_model {
    template_slot dflt, tool_use;
    int from_config;     /* from tokenizer_config.json's "chat_template" */
    json_t *specials;    /* {bos_token, eos_token, unk_token, pad_token} as found */
};

/* A special token of tokenizer_config.json: a string, or an AddedToken
 * object's "content". */
static json_t *special_token(json_t *cfg, const char *key)
{
    json_t *v = json_object_get(cfg, key);
    if (json_is_object(v))
        v = json_object_get(v, "content");
    return json_is_string(v) ? v : NULL;
}

static void slot_set(template_slot *slot, const char *text, size_t n, const char *origin)
{
    slot->source = xmalloc(n + 1);
    memcpy(slot->source, text, n);
    slot->source[n] = 0;
    slot->n_source = n;
    slot->origin = xstrdup(origin);
    errbuf pe;
    if (!(slot->t = jinja_parse(slot->source, n, &pe))) {
        size_t len = strlen(origin) + strlen(pe.msg) + 3;
        slot->parse_error = xmalloc(len);
        snprintf(slot->parse_error, len, "%s: %s", origin, pe.msg);
    }
}

static int slot_from_file(template_slot *slot, const char *path, const char *flag, errbuf *e)
{
    size_t n, bad;
    errbuf fe;
    char *text = file_read_all(path, &n, &fe);
    if (!text)
        return err_set(e, "%s%s", flag, fe.msg);
    if (!utf8_valid(text, n, &bad)) { /* Python reads it as str */
        free(text);
        return err_set(e, "%s%s: not UTF-8 text (byte %zu)", flag, path, bad);
    }
    slot_set(slot, text, n, path);
    free(text);
    return 0;
}

static void slot_free(template_slot *slot)
{
    free(slot->source);
    free(slot->origin);
    free(slot->parse_error);
    jinja_free(slot->t);
}

/* tokenizer_config.json's "chat_template": a string (the default), or a list
 * of {name, template} of which "default" and "tool_use" are used. */
static void config_templates(chat_model *m, json_t *cfg, const char *cfg_path)
{
    json_t *t = json_object_get(cfg, "chat_template");
    if (json_is_string(t)) {
        slot_set(&m->dflt, json_string_value(t), json_string_length(t), cfg_path);
        return;
    }
    size_t i;
    json_t *entry;
    json_array_foreach(t, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        json_t *text = json_object_get(entry, "template");
        template_slot *slot = !name                       ? NULL
                            : !strcmp(name, "default")  ? &m->dflt
                            : !strcmp(name, "tool_use") ? &m->tool_use
                                                        : NULL;
        if (slot && !slot->source && json_is_string(text))
            slot_set(slot, json_string_value(text), json_string_length(text), cfg_path);
    }
}

static int file_exists(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f)
        fclose(f);
    return f != NULL;
}

int chat_model_load(const char *dir, const char *template_path, chat_model **out, errbuf *e)
{
    *out = NULL;
    json_t *cfg = NULL;
    char cfg_path[4096] = "", jinja_path[4096], tool_path[4200];
    if (dir) {
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
        snprintf(jinja_path, sizeof jinja_path, "%s/chat_template.jinja", dir);
        snprintf(tool_path, sizeof tool_path, "%s/additional_chat_templates/tool_use.jinja", dir);
        if (file_exists(cfg_path)) {
            json_error_t jerr;
            if (!(cfg = json_load_file(cfg_path, 0, &jerr)))
                return err_set(e, "%s: %s (line %d)", cfg_path, jerr.text, jerr.line);
        }
    }
    chat_model *m = xcalloc(1, sizeof *m);
    m->specials = json_object();
    static const char *const specials[] = {"bos_token", "eos_token", "unk_token", "pad_token"};
    for (size_t i = 0; cfg && i < sizeof specials / sizeof *specials; i++) {
        json_t *v = special_token(cfg, specials[i]);
        if (v)
            json_object_set(m->specials, specials[i], v);
    }
    int rc = 0;
    if (template_path) { /* TRL's flag: one template */
        rc = slot_from_file(&m->dflt, template_path, "--chat_template_path ", e);
    } else if (dir && (file_exists(jinja_path) || file_exists(tool_path))) {
        /* as transformers: template files win over tokenizer_config.json */
        if (file_exists(jinja_path))
            rc = slot_from_file(&m->dflt, jinja_path, "", e);
        if (rc == 0 && file_exists(tool_path))
            rc = slot_from_file(&m->tool_use, tool_path, "", e);
    } else if (cfg) {
        config_templates(m, cfg, cfg_path);
        m->from_config = 1;
    }
    json_decref(cfg);
    if (rc != 0 || (!m->dflt.source && !m->tool_use.source)) { /* none: an error only when a row needs one */
        chat_model_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void chat_model_free(chat_model *m)
{
    if (!m)
        return;
    slot_free(&m->dflt);
    slot_free(&m->tool_use);
    json_decref(m->specials);
    free(m);
}

json_t *chat_model_saved_template(const chat_model *m)
{
    if (m->from_config)
        return NULL;
    if (!m->tool_use.source)
        return json_stringn(m->dflt.source, m->dflt.n_source);
    json_t *list = json_array();
    if (m->dflt.source)
        json_array_append_new(list, json_pack("{s:s, s:s%}", "name", "default", "template", m->dflt.source,
                                              m->dflt.n_source));
    json_array_append_new(list, json_pack("{s:s, s:s%}", "name", "tool_use", "template", m->tool_use.source,
                                          m->tool_use.n_source));
    return list;
}

const char *chat_model_origin(const chat_model *m) { return m->dflt.source ? m->dflt.origin : m->tool_use.origin; }

const char *chat_model_error(const chat_model *m)
{
    return m->dflt.parse_error ? m->dflt.parse_error : m->tool_use.parse_error;
}

static int cmp_span(const void *pa, const void *pb)
{
    const size_t *a = pa, *b = pb;
    return a[0] != b[0] ? (a[0] > b[0]) - (a[0] < b[0]) : (a[1] > b[1]) - (a[1] < b[1]);
}

/* Sorts spans[0..2n) by start and merges overlapping (nested) ones, drops
 * empty ones; returns the count left. */
static size_t merge_spans(size_t *spans, size_t n)
{
    qsort(spans, n, 2 * sizeof *spans, cmp_span);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        size_t a = spans[2 * i], b = spans[2 * i + 1];
        if (a >= b)
            continue;
        if (k > 0 && a <= spans[2 * k - 1]) {
            if (b > spans[2 * k - 1])
                spans[2 * k - 1] = b;
        } else {
            spans[2 * k] = a;
            spans[2 * k + 1] = b;
            k++;
        }
    }
    return k;
}

static int is_py_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* The assistant contents of messages, found in text in order. */
static int content_spans(const chat_model *m, json_t *messages, chat_text *out, errbuf *e)
{
    const char *eos = json_string_value(json_object_get(m->specials, "eos_token"));
    size_t n_eos = eos ? strlen(eos) : 0, at = 0, k = 0, n_msgs = json_array_size(messages);
    out->assistant = xmalloc((2 * n_msgs + 1) * sizeof *out->assistant);
    for (size_t i = 0; i < n_msgs; i++) {
        json_t *msg = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(msg, "role"));
        json_t *content = json_object_get(msg, "content");
        if (!role || strcmp(role, "assistant") || !json_is_string(content))
            continue;
        const char *c = json_string_value(content);
        size_t n = json_string_length(content);
        const char *found = n ? memmem(out->text + at, out->n_bytes - at, c, n) : NULL;
        if (!found) { /* as |trim wrote it */
            while (n && is_py_space(*c))
                c++, n--;
            while (n && is_py_space(c[n - 1]))
                n--;
            if (n == 0) /* an empty reply: nothing to train on */
                continue;
            found = memmem(out->text + at, out->n_bytes - at, c, n);
        }
        if (!found)
            return err_set(e, "--assistant_only_loss: the reply of message %zu (assistant) is not in the text %s "
                           "renders, as it is or stripped, and the template has no {%% generation %%} block to "
                           "mark it", i, chat_model_origin(m));
        size_t start = (size_t)(found - out->text), end = start + n;
        if (n_eos && out->n_bytes - end >= n_eos && !memcmp(out->text + end, eos, n_eos))
            end += n_eos;
        out->assistant[2 * k] = start;
        out->assistant[2 * k + 1] = end;
        k++;
        at = end;
    }
    out->n_assistant = k;
    return 0;
}

int chat_model_render(const chat_model *m, json_t *messages, json_t *tools, int add_generation_prompt,
                      int want_spans, chat_text *out, errbuf *e)
{
    memset(out, 0, sizeof *out);
    const int with_tools = tools && !json_is_null(tools);
    const template_slot *slot = with_tools && m->tool_use.source ? &m->tool_use : &m->dflt;
    if (!slot->source)
        return err_set(e, "%s has only a \"tool_use\" chat template and this conversation has no tools (a "
                       "\"default\" one is needed)", m->tool_use.origin);
    if (!slot->t)
        return err_set(e, "%s", slot->parse_error);
    json_t *vars = json_deep_copy(m->specials);
    json_object_set(vars, "messages", messages);
    json_object_set_new(vars, "tools", with_tools ? json_incref(tools) : json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
    const int marked = want_spans && jinja_has_generation(slot->t);
    size_t *spans = NULL, n_spans = 0;
    int rc = jinja_render_spans(slot->t, vars, &out->text, &out->n_bytes, marked ? &spans : NULL, &n_spans, e);
    json_decref(vars);
    if (rc != 0)
        return -1;
    if (marked) {
        out->assistant = spans;
        out->n_assistant = merge_spans(spans, n_spans);
    } else if (want_spans && content_spans(m, messages, out, e) != 0) {
        chat_text_free(out);
        return -1;
    }
    return 0;
}
