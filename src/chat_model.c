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

struct chat_model {
    char *source;        /* the template's text */
    size_t n_source;
    int from_config;     /* from tokenizer_config.json's "chat_template" */
    char *origin;        /* where it came from, for messages */
    jinja_template *t;   /* NULL when it did not parse: */
    char *parse_error;   /* then this, reported at the first render */
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

/* tokenizer_config.json's "chat_template": a string, or the "default" entry
 * of a list of {name, template}; NULL when neither. */
static json_t *config_template(json_t *cfg)
{
    json_t *t = json_object_get(cfg, "chat_template");
    if (!json_is_array(t))
        return json_is_string(t) ? t : NULL;
    size_t i;
    json_t *entry;
    json_array_foreach(t, i, entry)
    {
        const char *name = json_string_value(json_object_get(entry, "name"));
        json_t *text = json_object_get(entry, "template");
        if (name && !strcmp(name, "default") && json_is_string(text))
            return text;
    }
    return NULL;
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
    char cfg_path[4096], jinja_path[4096];
    if (dir) {
        snprintf(cfg_path, sizeof cfg_path, "%s/tokenizer_config.json", dir);
        snprintf(jinja_path, sizeof jinja_path, "%s/chat_template.jinja", dir);
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
    const char *from_file = template_path ? template_path : dir && file_exists(jinja_path) ? jinja_path : NULL;
    errbuf fe;
    if (from_file) {
        if (!(m->source = file_read_all(from_file, &m->n_source, &fe))) {
            err_set(e, "%s%s", template_path ? "--chat_template_path " : "", fe.msg);
            goto fail;
        }
        m->origin = xstrdup(from_file);
        size_t bad;
        if (!utf8_valid(m->source, m->n_source, &bad)) { /* Python reads it as str */
            err_set(e, "%s%s: not UTF-8 text (byte %zu)", template_path ? "--chat_template_path " : "", from_file,
                    bad);
            goto fail;
        }
    } else if (cfg && config_template(cfg)) {
        json_t *t = config_template(cfg);
        m->n_source = json_string_length(t);
        m->source = xmalloc(m->n_source + 1);
        memcpy(m->source, json_string_value(t), m->n_source + 1);
        m->origin = xstrdup(cfg_path);
        m->from_config = 1;
    } else { /* no template: not an error until a conversation needs one */
        json_decref(cfg);
        chat_model_free(m);
        return 0;
    }
    json_decref(cfg);
    errbuf pe;
    if (!(m->t = jinja_parse(m->source, m->n_source, &pe))) {
        size_t n = strlen(m->origin) + strlen(pe.msg) + 3;
        m->parse_error = xmalloc(n);
        snprintf(m->parse_error, n, "%s: %s", m->origin, pe.msg);
    }
    *out = m;
    return 0;
fail:
    json_decref(cfg);
    chat_model_free(m);
    return -1;
}

void chat_model_free(chat_model *m)
{
    if (!m)
        return;
    free(m->source);
    free(m->origin);
    free(m->parse_error);
    jinja_free(m->t);
    json_decref(m->specials);
    free(m);
}

const char *chat_model_source(const chat_model *m, int *from_config)
{
    *from_config = m->from_config;
    return m->source;
}

const char *chat_model_origin(const chat_model *m) { return m->origin; }

const char *chat_model_error(const chat_model *m) { return m->parse_error; }

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
                           "mark it", i, m->origin);
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
    if (!m->t)
        return err_set(e, "%s", m->parse_error);
    json_t *vars = json_deep_copy(m->specials);
    json_object_set(vars, "messages", messages);
    json_object_set_new(vars, "tools", tools ? json_incref(tools) : json_null());
    json_object_set_new(vars, "documents", json_null());
    json_object_set_new(vars, "add_generation_prompt", json_boolean(add_generation_prompt));
    const int marked = want_spans && jinja_has_generation(m->t);
    size_t *spans = NULL, n_spans = 0;
    int rc = jinja_render_spans(m->t, vars, &out->text, &out->n_bytes, marked ? &spans : NULL, &n_spans, e);
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
