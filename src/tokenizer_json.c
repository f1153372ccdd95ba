/* tokenizer_json.c: reads the tokenizer.json tree that Hugging Face
 * tokenizers writes (model, added_tokens, normalizer, pre_tokenizer,
 * post_processor, decoder).
 *
 * What the Llama family uses is supported; anything else (another model
 * type, Unicode normalization, BPE dropout, ...) is refused by name rather
 * than silently encoded differently. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

static char *dup_n(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

/* A string member; NULL (and an error) when absent or not a string. */
static const char *get_str(json_t *obj, const char *key, size_t *len, const char *path,
                           const char *where, errbuf *e)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        err_set(e, "%s: %s: \"%s\" must be a string", path, where, key);
        return NULL;
    }
    if (len)
        *len = json_string_length(v);
    return json_string_value(v);
}

static int get_bool(json_t *obj, const char *key, int dflt)
{
    json_t *v = json_object_get(obj, key);
    return json_is_boolean(v) ? json_is_true(v) : dflt;
}

/* {"String": s} or {"Regex": r}: a literal (*re NULL) or a compiled regex. */
static int get_pattern(json_t *obj, char **lit, size_t *lit_len, pcre2_code **re,
                       const char *path, const char *where, errbuf *e)
{
    json_t *pat = json_object_get(obj, "pattern");
    json_t *s = json_object_get(pat, "String"), *r = json_object_get(pat, "Regex");
    *lit = NULL;
    *re = NULL;
    if (json_is_string(s)) {
        *lit_len = json_string_length(s);
        *lit = dup_n(json_string_value(s), *lit_len);
        return 0;
    }
    if (json_is_string(r)) {
        *re = regex_compile(json_string_value(r), json_string_length(r), path, where, e);
        return *re ? 0 : -1;
    }
    return err_set(e, "%s: %s: \"pattern\" must be {\"String\": ...} or {\"Regex\": ...}", path,
                   where);
}

static const char *type_of(json_t *obj)
{
    const char *t = json_string_value(json_object_get(obj, "type"));
    return t ? t : "(no type)";
}

static int prepend_scheme_of(json_t *obj, const char *path, const char *where, errbuf *e)
{
    const char *s = json_string_value(json_object_get(obj, "prepend_scheme"));
    if (!s) /* files from before prepend_scheme: add_prefix_space */
        return get_bool(obj, "add_prefix_space", 1) ? PREPEND_ALWAYS : PREPEND_NEVER;
    if (!strcmp(s, "always"))
        return PREPEND_ALWAYS;
    if (!strcmp(s, "first"))
        return PREPEND_FIRST;
    if (!strcmp(s, "never"))
        return PREPEND_NEVER;
    return err_set(e, "%s: %s: prepend_scheme \"%s\" is none of always, first, never", path, where,
                   s);
}

/* ------------------------------------------------------------------------- */

#define STEP_PUSH(arr, n, cap, val)                                                      \
    do {                                                                                 \
        if ((n) == (cap)) {                                                              \
            (cap) = (cap) ? 2 * (cap) : 4;                                               \
            (arr) = realloc((arr), (cap) * sizeof *(arr));                               \
            if (!(arr))                                                                  \
                die(EXIT_FAILURE_RUN, "tokenizer: out of memory");                       \
        }                                                                                \
        (arr)[(n)++] = (val);                                                            \
    } while (0)

typedef struct norm_list {
    norm_step *v;
    size_t n, cap;
} norm_list;

static int parse_normalizer(json_t *j, norm_list *out, const char *path, errbuf *e)
{
    if (json_is_null(j) || !j)
        return 0;
    if (!json_is_object(j))
        return err_set(e, "%s: normalizer must be an object or null", path);
    const char *type = type_of(j);
    norm_step st;
    memset(&st, 0, sizeof st);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "normalizers"), *item;
        size_t i;
        if (!json_is_array(list))
            return err_set(e, "%s: normalizer Sequence: \"normalizers\" must be a list", path);
        json_array_foreach(list, i, item) if (parse_normalizer(item, out, path, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "Prepend")) {
        size_t n;
        const char *s = get_str(j, "prepend", &n, path, "normalizer Prepend", e);
        if (!s)
            return -1;
        st.kind = NORM_PREPEND;
        st.a = dup_n(s, n);
        st.a_len = n;
    } else if (!strcmp(type, "Replace")) {
        size_t n;
        const char *s = get_str(j, "content", &n, path, "normalizer Replace", e);
        if (!s || get_pattern(j, &st.a, &st.a_len, &st.re, path, "normalizer Replace", e) != 0)
            return -1;
        st.kind = NORM_REPLACE;
        st.b = dup_n(s, n);
        st.b_len = n;
    } else if (!strcmp(type, "Strip")) {
        st.kind = NORM_STRIP;
        st.left = get_bool(j, "strip_left", 1);
        st.right = get_bool(j, "strip_right", 1);
    } else if (!strcmp(type, "NFC") || !strcmp(type, "NFKC") || !strcmp(type, "NFD") ||
               !strcmp(type, "NFKD")) {
        return err_set(e, "%s: normalizer %s (Unicode normalization) is not supported", path, type);
    } else {
        return err_set(e, "%s: normalizer \"%s\" is not supported (supported: Sequence, Prepend, "
                       "Replace, Strip)", path, type);
    }
    STEP_PUSH(out->v, out->n, out->cap, st);
    return 0;
}

typedef struct pre_list {
    pre_step *v;
    size_t n, cap;
} pre_list;

static int split_behavior_of(const char *s)
{
    static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                  "Contiguous"};
    for (int i = 0; i < 5; i++)
        if (s && !strcmp(s, names[i]))
            return i;
    return -1;
}

static int parse_pre_tokenizer(json_t *j, pre_list *out, const char *path, errbuf *e)
{
    if (json_is_null(j) || !j)
        return 0;
    if (!json_is_object(j))
        return err_set(e, "%s: pre_tokenizer must be an object or null", path);
    const char *type = type_of(j);
    pre_step st;
    memset(&st, 0, sizeof st);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "pretokenizers"), *item;
        size_t i;
        if (!json_is_array(list))
            return err_set(e, "%s: pre_tokenizer Sequence: \"pretokenizers\" must be a list", path);
        json_array_foreach(list, i, item) if (parse_pre_tokenizer(item, out, path, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "Metaspace")) {
        size_t n;
        const char *rep = get_str(j, "replacement", &n, path, "pre_tokenizer Metaspace", e);
        if (!rep)
            return -1;
        st.kind = PRE_METASPACE;
        st.rep = dup_n(rep, n);
        st.rep_len = n;
        st.split = get_bool(j, "split", 1);
        st.prepend_scheme = prepend_scheme_of(j, path, "pre_tokenizer Metaspace", e);
        if (st.prepend_scheme < 0) {
            free(st.rep);
            return -1;
        }
    } else if (!strcmp(type, "ByteLevel")) {
        st.kind = PRE_BYTELEVEL;
        st.add_prefix_space = get_bool(j, "add_prefix_space", 1);
        if (get_bool(j, "use_regex", 1)) {
            st.re = regex_compile(GPT2_REGEX, strlen(GPT2_REGEX), path, "pre_tokenizer ByteLevel", e);
            if (!st.re)
                return -1;
        }
    } else if (!strcmp(type, "Split")) {
        st.kind = PRE_SPLIT;
        st.behavior = split_behavior_of(json_string_value(json_object_get(j, "behavior")));
        if (st.behavior < 0)
            return err_set(e, "%s: pre_tokenizer Split: behavior must be one of Removed, Isolated, "
                           "MergedWithPrevious, MergedWithNext, Contiguous", path);
        st.invert = get_bool(j, "invert", 0);
        if (get_pattern(j, &st.literal, &st.literal_len, &st.re, path, "pre_tokenizer Split", e) != 0)
            return -1;
    } else if (!strcmp(type, "Digits")) {
        /* digits alone (individual_digits) or in runs, cut off from the rest */
        const char *re = get_bool(j, "individual_digits", 0) ? "\\p{N}" : "\\p{N}+";
        st.kind = PRE_SPLIT;
        st.behavior = SPLIT_ISOLATED;
        st.re = regex_compile(re, strlen(re), path, "pre_tokenizer Digits", e);
        if (!st.re)
            return -1;
    } else if (!strcmp(type, "WhitespaceSplit")) {
        st.kind = PRE_SPLIT;
        st.behavior = SPLIT_REMOVED;
        st.re = regex_compile("\\s+", 3, path, "pre_tokenizer WhitespaceSplit", e);
        if (!st.re)
            return -1;
    } else {
        return err_set(e, "%s: pre_tokenizer \"%s\" is not supported (supported: Sequence, "
                       "Metaspace, ByteLevel, Split, Digits, WhitespaceSplit)", path, type);
    }
    if (out->n > 0 && out->v[out->n - 1].kind == PRE_BYTELEVEL) {
        free(st.rep);
        free(st.literal);
        if (st.re)
            pcre2_code_free(st.re);
        return err_set(e, "%s: pre_tokenizer: a %s after ByteLevel is not supported", path, type);
    }
    STEP_PUSH(out->v, out->n, out->cap, st);
    return 0;
}

typedef struct dec_list {
    dec_step *v;
    size_t n, cap;
} dec_list;

static int parse_decoder(json_t *j, dec_list *out, const char *path, errbuf *e)
{
    if (json_is_null(j) || !j)
        return 0;
    if (!json_is_object(j))
        return err_set(e, "%s: decoder must be an object or null", path);
    const char *type = type_of(j);
    dec_step st;
    memset(&st, 0, sizeof st);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "decoders"), *item;
        size_t i;
        if (!json_is_array(list))
            return err_set(e, "%s: decoder Sequence: \"decoders\" must be a list", path);
        json_array_foreach(list, i, item) if (parse_decoder(item, out, path, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "Replace")) {
        size_t n;
        pcre2_code *re;
        const char *s = get_str(j, "content", &n, path, "decoder Replace", e);
        if (!s || get_pattern(j, &st.a, &st.a_len, &re, path, "decoder Replace", e) != 0)
            return -1;
        if (re) {
            pcre2_code_free(re);
            return err_set(e, "%s: decoder Replace with a Regex pattern is not supported", path);
        }
        st.kind = DEC_REPLACE;
        st.b = dup_n(s, n);
        st.b_len = n;
    } else if (!strcmp(type, "ByteFallback")) {
        st.kind = DEC_BYTEFALLBACK;
    } else if (!strcmp(type, "Fuse")) {
        st.kind = DEC_FUSE;
    } else if (!strcmp(type, "Strip")) {
        size_t n;
        const char *s = get_str(j, "content", &n, path, "decoder Strip", e);
        if (!s)
            return -1;
        st.kind = DEC_STRIP;
        st.a = dup_n(s, n);
        st.a_len = n;
        st.start = (int)json_integer_value(json_object_get(j, "start"));
        st.stop = (int)json_integer_value(json_object_get(j, "stop"));
    } else if (!strcmp(type, "ByteLevel")) {
        st.kind = DEC_BYTELEVEL;
    } else if (!strcmp(type, "Metaspace")) {
        size_t n;
        const char *rep = get_str(j, "replacement", &n, path, "decoder Metaspace", e);
        if (!rep)
            return -1;
        st.kind = DEC_METASPACE;
        st.prepend_scheme = prepend_scheme_of(j, path, "decoder Metaspace", e);
        if (st.prepend_scheme < 0)
            return -1;
        st.a = dup_n(rep, n);
        st.a_len = n;
    } else {
        return err_set(e, "%s: decoder \"%s\" is not supported (supported: Sequence, Replace, "
                       "ByteFallback, Fuse, Strip, ByteLevel, Metaspace)", path, type);
    }
    STEP_PUSH(out->v, out->n, out->cap, st);
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Post-processor: what add_special_tokens puts around a single sequence. */

static int special_ids(json_t *specials, const char *name, idvec *out, const char *path, errbuf *e)
{
    json_t *ids = json_object_get(json_object_get(specials, name), "ids"), *v;
    size_t i;
    if (!json_is_array(ids))
        return err_set(e, "%s: post_processor: special token \"%s\" is not in special_tokens", path,
                       name);
    json_array_foreach(ids, i, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return err_set(e, "%s: post_processor: special token \"%s\" has a bad id", path, name);
        idvec_push(out, (int32_t)json_integer_value(v));
    }
    return 0;
}

static int parse_post(tokenizer *t, json_t *j, const char *path, errbuf *e)
{
    if (json_is_null(j) || !j)
        return 0;
    const char *type = type_of(j);
    if (!strcmp(type, "Sequence")) {
        json_t *list = json_object_get(j, "processors"), *item;
        size_t i;
        if (!json_is_array(list))
            return err_set(e, "%s: post_processor Sequence: \"processors\" must be a list", path);
        json_array_foreach(list, i, item) if (parse_post(t, item, path, e) != 0) return -1;
        return 0;
    }
    if (!strcmp(type, "ByteLevel"))
        return 0; /* offsets only */
    if (!strcmp(type, "TemplateProcessing")) {
        json_t *single = json_object_get(j, "single"), *specials = json_object_get(j, "special_tokens");
        json_t *item;
        size_t i;
        int seen_sequence = 0;
        if (!json_is_array(single))
            return err_set(e, "%s: post_processor TemplateProcessing: \"single\" must be a list", path);
        t->post_prefix.n = t->post_suffix.n = 0;
        json_array_foreach(single, i, item) {
            json_t *sp = json_object_get(item, "SpecialToken");
            if (json_object_get(item, "Sequence")) {
                seen_sequence = 1;
            } else if (sp) {
                const char *name = json_string_value(json_object_get(sp, "id"));
                if (!name || special_ids(specials, name, seen_sequence ? &t->post_suffix
                                                                       : &t->post_prefix,
                                         path, e) != 0)
                    return name ? -1 : err_set(e, "%s: post_processor: a SpecialToken without id",
                                               path);
            } else {
                return err_set(e, "%s: post_processor TemplateProcessing: item %zu of \"single\" is "
                               "neither SpecialToken nor Sequence", path, i);
            }
        }
        return 0;
    }
    if (!strcmp(type, "RobertaProcessing") || !strcmp(type, "BertProcessing")) {
        json_t *cls = json_object_get(j, "cls"), *sep = json_object_get(j, "sep");
        if (!json_is_integer(json_array_get(cls, 1)) || !json_is_integer(json_array_get(sep, 1)))
            return err_set(e, "%s: post_processor %s: cls and sep must be [token, id]", path, type);
        t->post_prefix.n = t->post_suffix.n = 0;
        idvec_push(&t->post_prefix, (int32_t)json_integer_value(json_array_get(cls, 1)));
        idvec_push(&t->post_suffix, (int32_t)json_integer_value(json_array_get(sep, 1)));
        return 0;
    }
    return err_set(e, "%s: post_processor \"%s\" is not supported (supported: TemplateProcessing, "
                   "ByteLevel, Sequence, RobertaProcessing, BertProcessing)", path, type);
}

/* ------------------------------------------------------------------------- */

static int parse_model(tokenizer *t, json_t *model, int byte_level, const char *path, errbuf *e)
{
    bpe_model *m = &t->bpe;
    if (!json_is_object(model))
        return err_set(e, "%s: \"model\" is missing or not an object", path);
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, "BPE") != 0)
        return err_set(e, "%s: model type \"%s\" is not supported (only BPE)", path, type);
    json_t *vocab = json_object_get(model, "vocab"), *merges = json_object_get(model, "merges");
    if (!json_is_object(vocab))
        return err_set(e, "%s: model.vocab is missing or not an object", path);
    if (!json_is_array(merges))
        return err_set(e, "%s: model.merges is missing or not a list", path);
    json_t *dropout = json_object_get(model, "dropout");
    if (json_is_number(dropout) && json_number_value(dropout) > 0.0 && json_number_value(dropout) < 1.0)
        return err_set(e, "%s: BPE dropout is not supported (model.dropout = %g)", path,
                       json_number_value(dropout));
    const char *keys[] = {"continuing_subword_prefix", "end_of_word_suffix"};
    for (int k = 0; k < 2; k++) {
        const char *s = json_string_value(json_object_get(model, keys[k]));
        if (s && *s)
            return err_set(e, "%s: model.%s \"%s\" is not supported", path, keys[k], s);
    }

    const char *key;
    json_t *v;
    strmap_free(&m->vocab);
    strmap_init(&m->vocab, json_object_size(vocab));
    json_object_foreach(vocab, key, v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > INT32_MAX)
            return err_set(e, "%s: model.vocab: the id of \"%s\" is not an integer in [0, 2^31)",
                           path, key);
        if (bpe_add_token(m, key, strlen(key), (int32_t)json_integer_value(v), path, e) != 0)
            return -1;
    }
    pairmap_free(&m->merges);
    pairmap_init(&m->merges, json_array_size(merges));
    size_t i;
    json_array_foreach(merges, i, v) {
        int rc;
        if (json_is_string(v)) {
            rc = bpe_add_merge_line(m, json_string_value(v), json_string_length(v), path, e);
        } else if (json_is_array(v) && json_array_size(v) == 2 &&
                   json_is_string(json_array_get(v, 0)) && json_is_string(json_array_get(v, 1))) {
            json_t *l = json_array_get(v, 0), *r = json_array_get(v, 1);
            rc = bpe_add_merge(m, json_string_value(l), json_string_length(l), json_string_value(r),
                               json_string_length(r), path, e);
        } else {
            rc = err_set(e, "%s: model.merges[%zu] is neither \"a b\" nor [\"a\", \"b\"]", path, i);
        }
        if (rc != 0)
            return -1;
    }
    const char *unk = json_string_value(json_object_get(model, "unk_token"));
    m->unk_id = unk ? strmap_get(&m->vocab, unk, strlen(unk)) : -1;
    m->fuse_unk = get_bool(model, "fuse_unk", 0);
    m->byte_fallback = get_bool(model, "byte_fallback", 0);
    m->ignore_merges = get_bool(model, "ignore_merges", 0);
    return bpe_finish(m, byte_level, path, e);
}

static int parse_added_tokens(tokenizer *t, json_t *list, const char *path, errbuf *e)
{
    json_t *item;
    size_t i;
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return err_set(e, "%s: \"added_tokens\" must be a list", path);
    json_array_foreach(list, i, item) {
        json_t *id = json_object_get(item, "id"), *content = json_object_get(item, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 || json_integer_value(id) > INT32_MAX ||
            !json_is_string(content))
            return err_set(e, "%s: added_tokens[%zu] needs an integer \"id\" and a string \"content\"",
                           path, i);
        int special = get_bool(item, "special", 0);
        added_put(&t->added, json_string_value(content), json_string_length(content),
                  (int32_t)json_integer_value(id), special, get_bool(item, "lstrip", 0),
                  get_bool(item, "rstrip", 0), get_bool(item, "single_word", 0),
                  get_bool(item, "normalized", !special));
    }
    added_refresh(&t->added, t->norm, t->n_norm);
    return 0;
}

int tokenizer_from_json(tokenizer *t, const char *path, errbuf *e)
{
    json_t *root = t->json;
    if (!json_is_object(root))
        return err_set(e, "%s: not a tokenizer.json (the top level is not an object)", path);
    norm_list nl = {0};
    pre_list pl = {0};
    dec_list dl = {0};
    int rc = parse_normalizer(json_object_get(root, "normalizer"), &nl, path, e);
    t->norm = nl.v;
    t->n_norm = nl.n;
    if (rc != 0)
        return -1;
    rc = parse_pre_tokenizer(json_object_get(root, "pre_tokenizer"), &pl, path, e);
    t->pre = pl.v;
    t->n_pre = pl.n;
    if (rc != 0)
        return -1;
    rc = parse_decoder(json_object_get(root, "decoder"), &dl, path, e);
    t->dec = dl.v;
    t->n_dec = dl.n;
    if (rc != 0)
        return -1;
    json_t *dec = json_object_get(root, "decoder");
    t->has_decoder = dec && !json_is_null(dec);
    int byte_level = 0;
    for (size_t i = 0; i < t->n_pre; i++)
        byte_level |= t->pre[i].kind == PRE_BYTELEVEL;
    if (parse_model(t, json_object_get(root, "model"), byte_level, path, e) != 0 ||
        parse_added_tokens(t, json_object_get(root, "added_tokens"), path, e) != 0 ||
        parse_post(t, json_object_get(root, "post_processor"), path, e) != 0)
        return -1;
    t->unk_id = t->bpe.unk_id;
    if (t->post_prefix.n == 1)
        t->bos_id = t->post_prefix.v[0];
    if (t->post_suffix.n == 1)
        t->eos_id = t->post_suffix.v[0];
    return 0;
}

void dec_steps_free(dec_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(steps[i].a);
        free(steps[i].b);
    }
    free(steps);
}
