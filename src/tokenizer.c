/* tokenizer.c: loading a tokenizer and the encoding pipeline.
 *
 * Encoding follows Hugging Face tokenizers step by step: added tokens are
 * cut out of the raw text first; each stretch between them is normalized,
 * searched again for added tokens that match normalized text, pre-tokenized
 * into words, and each word is encoded by the BPE model; with
 * add_special_tokens the post-processor's BOS/EOS go around the result. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file_read.h"
#include "tokenizer_internal.h"

static tokenizer *tokenizer_new(const char *path)
{
    tokenizer *t = xcalloc(1, sizeof *t);
    t->path = xstrdup(path);
    bpe_init(&t->bpe);
    added_init(&t->added);
    t->bos_id = t->eos_id = t->pad_id = t->unk_id = -1;
    return t;
}

void tokenizer_free(tokenizer *t)
{
    if (!t)
        return;
    bpe_free(&t->bpe);
    added_free(&t->added);
    norm_steps_free(t->norm, t->n_norm);
    pre_steps_free(t->pre, t->n_pre);
    dec_steps_free(t->dec, t->n_dec);
    free(t->post_prefix.v);
    free(t->post_suffix.v);
    json_decref(t->json);
    json_decref(t->config);
    free(t->path);
    free(t);
}

static json_t *json_read(const char *path, errbuf *e)
{
    size_t n;
    char *text = file_read_all(path, &n, e);
    if (!text)
        return NULL;
    json_error_t jerr;
    json_t *root = json_loadb(text, n, 0, &jerr);
    free(text);
    if (!root)
        err_set(e, "%s: not valid JSON (line %d, column %d): %s", path, jerr.line, jerr.column,
                jerr.text);
    return root;
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static char *dir_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        return xstrdup(".");
    size_t n = (size_t)(slash - path);
    char *d = xmalloc(n + 2);
    memcpy(d, path, n ? n : 1);
    d[n ? n : 1] = '\0';
    return d;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

tokenizer *tokenizer_load(const char *path, errbuf *e)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        err_set(e, "%s: no such tokenizer file or directory", path);
        return NULL;
    }
    tokenizer *t = tokenizer_new(path);
    char *json_path = NULL, *vocab_path = NULL, *merges_path = NULL, *config_path = NULL;
    if (S_ISDIR(st.st_mode)) {
        json_path = path_join(path, "tokenizer.json");
        config_path = path_join(path, "tokenizer_config.json");
        if (!file_exists(json_path)) {
            vocab_path = path_join(path, "vocab.json");
            merges_path = path_join(path, "merges.txt");
            free(json_path);
            json_path = NULL;
            if (!file_exists(vocab_path) || !file_exists(merges_path)) {
                err_set(e, "%s: holds neither tokenizer.json nor vocab.json + merges.txt", path);
                goto fail;
            }
        }
        if (!file_exists(config_path)) {
            free(config_path);
            config_path = NULL;
        }
    } else if (ends_with(path, "vocab.json")) {
        char *dir = dir_of(path);
        vocab_path = xstrdup(path);
        merges_path = path_join(dir, "merges.txt");
        free(dir);
        if (!file_exists(merges_path)) {
            err_set(e, "%s: a vocab.json needs merges.txt beside it (%s is missing)", path,
                    merges_path);
            goto fail;
        }
    } else {
        json_path = xstrdup(path);
    }

    const char *where = json_path ? json_path : vocab_path;
    t->json = json_path ? json_read(json_path, e) : tokenizer_slow_json(vocab_path, merges_path, e);
    if (!t->json || tokenizer_from_json(t, where, e) != 0)
        goto fail;
    if (!json_path) {
        /* GPT-2's defaults for bos/eos/unk when no config says otherwise */
        int32_t eot = tokenizer_token_to_id(t, "<|endoftext|>");
        t->bos_id = t->eos_id = t->unk_id = eot;
    }
    if (config_path) {
        t->config = json_read(config_path, e);
        if (!t->config || tokenizer_apply_config(t, config_path, e) != 0)
            goto fail;
    }
    free(json_path);
    free(vocab_path);
    free(merges_path);
    free(config_path);
    return t;
fail:
    free(json_path);
    free(vocab_path);
    free(merges_path);
    free(config_path);
    tokenizer_free(t);
    return NULL;
}

/* ------------------------------------------------------------------------- */
/* Encoding. */

typedef struct encode_state {
    arena ar;
    segvec raw_segs, norm_segs;
    piecevec words_in, words_out;
    bpe_scratch scratch;
    pcre2_match_data *md;
    idvec out;
} encode_state;

static void encode_words(const tokenizer *t, encode_state *s, const char *p, size_t n,
                         int at_start)
{
    s->words_in.n = 0;
    piecevec_push(&s->words_in, p, n, at_start);
    pretok_run(t->pre, t->n_pre, &s->words_in, &s->words_out, &s->ar, s->md);
    for (size_t i = 0; i < s->words_out.n; i++)
        bpe_encode_word(&t->bpe, &s->scratch, s->words_out.v[i].p, s->words_out.v[i].n, &s->out);
}

/* One stretch of raw text between added tokens. */
static void encode_stretch(const tokenizer *t, encode_state *s, const char *p, size_t n,
                           int at_start)
{
    const char *norm;
    size_t n_norm;
    normalize_run(t->norm, t->n_norm, p, n, &norm, &n_norm, &s->ar, s->md);
    if (t->added.norm.n_lens == 0) {
        encode_words(t, s, norm, n_norm, at_start);
        return;
    }
    s->norm_segs.n = 0;
    added_split(&t->added, 1, norm, n_norm, &s->norm_segs);
    for (size_t i = 0; i < s->norm_segs.n; i++) {
        const added_segment *g = &s->norm_segs.v[i];
        if (g->token >= 0)
            idvec_push(&s->out, t->added.v[g->token].id);
        else
            encode_words(t, s, norm + g->start, g->end - g->start, at_start && g->start == 0);
    }
}

int tokenizer_encode(const tokenizer *t, const char *text, size_t n_bytes, int add_special_tokens,
                     int32_t **ids, size_t *n_ids, errbuf *e)
{
    size_t bad;
    if (!text && n_bytes)
        return err_set(e, "tokenizer %s: no text", t->path);
    if (!utf8_valid(text, n_bytes, &bad))
        return err_set(e, "tokenizer %s: the text to encode is not valid UTF-8 (byte %zu of %zu)",
                       t->path, bad, n_bytes);
    encode_state s;
    memset(&s, 0, sizeof s);
    s.md = pcre2_match_data_create(1, NULL);
    if (!s.md)
        return err_set(e, "tokenizer %s: out of memory", t->path);
    if (add_special_tokens)
        idvec_append(&s.out, t->post_prefix.v, t->post_prefix.n);
    added_split(&t->added, 0, text, n_bytes, &s.raw_segs);
    for (size_t i = 0; i < s.raw_segs.n; i++) {
        const added_segment *g = &s.raw_segs.v[i];
        if (g->token >= 0)
            idvec_push(&s.out, t->added.v[g->token].id);
        else if (g->end > g->start)
            encode_stretch(t, &s, text + g->start, g->end - g->start, g->start == 0);
    }
    if (add_special_tokens)
        idvec_append(&s.out, t->post_suffix.v, t->post_suffix.n);
    arena_free(&s.ar);
    free(s.raw_segs.v);
    free(s.norm_segs.v);
    free(s.words_in.v);
    free(s.words_out.v);
    bpe_scratch_free(&s.scratch);
    pcre2_match_data_free(s.md);
    *ids = s.out.v ? s.out.v : xmalloc(sizeof **ids);
    *n_ids = s.out.n;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Vocabulary and special tokens. */

size_t tokenizer_vocab_size(const tokenizer *t)
{
    size_t n = t->bpe.n_tokens;
    for (size_t i = 0; i < t->added.n; i++)
        if ((size_t)t->added.v[i].id + 1 > n)
            n = (size_t)t->added.v[i].id + 1;
    return n;
}

int tokenizer_token_to_id(const tokenizer *t, const char *token)
{
    size_t n = strlen(token);
    int idx = added_find_content(&t->added, token, n);
    if (idx >= 0)
        return t->added.v[idx].id;
    return strmap_get(&t->bpe.vocab, token, n);
}

const char *tokenizer_id_to_token(const tokenizer *t, int id)
{
    if (id < 0)
        return NULL;
    int idx = added_find_id(&t->added, id);
    if (idx >= 0) /* as tokenizers: a normalized token as the normalizer wrote it */
        return t->added.v[idx].normalized ? t->added.v[idx].norm : t->added.v[idx].content;
    return (size_t)id < t->bpe.n_tokens ? t->bpe.tokens[id] : NULL;
}

int tokenizer_bos_id(const tokenizer *t) { return t->bos_id; }
int tokenizer_eos_id(const tokenizer *t) { return t->eos_id; }
int tokenizer_pad_id(const tokenizer *t) { return t->pad_id; }
int tokenizer_unk_id(const tokenizer *t) { return t->unk_id; }

int tokenizer_add_special_token(tokenizer *t, const char *content)
{
    size_t n = strlen(content);
    int idx = added_find_content(&t->added, content, n);
    int32_t id;
    if (idx >= 0) {
        added_token *a = &t->added.v[idx];
        id = a->id;
        if (a->special)
            return id;
        /* as tokenizers' add_special_tokens: an added token becomes special */
        added_put(&t->added, content, n, id, 1, a->lstrip, a->rstrip, a->single_word, 0);
    } else {
        id = strmap_get(&t->bpe.vocab, content, n);
        if (id < 0)
            id = (int32_t)tokenizer_vocab_size(t);
        added_put(&t->added, content, n, id, 1, 0, 0, 0, 0);
    }
    added_refresh(&t->added, t->norm, t->n_norm);
    return id;
}

int tokenizer_set_special(tokenizer *t, const char *role, const char *content, errbuf *e)
{
    int32_t *slot = !strcmp(role, "bos") ? &t->bos_id : !strcmp(role, "eos") ? &t->eos_id
                  : !strcmp(role, "pad") ? &t->pad_id : !strcmp(role, "unk") ? &t->unk_id : NULL;
    if (!slot)
        return err_set(e, "tokenizer %s: \"%s\" is not a special token role (bos, eos, pad, unk)",
                       t->path, role);
    if (!*content)
        return err_set(e, "tokenizer %s: the %s token cannot be empty", t->path, role);
    int id = tokenizer_token_to_id(t, content);
    if (id < 0)
        id = tokenizer_add_special_token(t, content);
    *slot = id;
    return id;
}
