/* tokenizer_added.c: added tokens (special or not), matched in the text
 * before the model sees it.
 *
 * As in tokenizers' AddedVocabulary: the leftmost match wins, the longest
 * one at that position; tokens with normalized=false are found in the raw
 * text, those with normalized=true in the normalized pieces between.
 * lstrip / rstrip take the whitespace on that side into the token;
 * single_word only matches a token that is not inside a word. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

void added_init(added_vocab *a)
{
    memset(a, 0, sizeof *a);
    strmap_init(&a->by_content, 64);
    strmap_init(&a->by_id, 64);
    strmap_init(&a->raw.map, 64);
    strmap_init(&a->norm.map, 16);
}

void added_free(added_vocab *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->v[i].content);
        free(a->v[i].norm);
    }
    free(a->v);
    strmap_free(&a->by_content);
    strmap_free(&a->by_id);
    strmap_free(&a->raw.map);
    strmap_free(&a->norm.map);
    free(a->raw.lens);
    free(a->norm.lens);
    memset(a, 0, sizeof *a);
}

static size_t id_key(int32_t id, char buf[16])
{
    return (size_t)snprintf(buf, 16, "%d", (int)id);
}

size_t added_put(added_vocab *a, const char *content, size_t len, int32_t id, int special,
                 int lstrip, int rstrip, int single_word, int normalized)
{
    int32_t idx = strmap_get(&a->by_content, content, len);
    if (idx < 0) {
        if (a->n == a->cap) {
            a->cap = a->cap ? 2 * a->cap : 16;
            a->v = realloc(a->v, a->cap * sizeof *a->v);
            if (!a->v)
                die(EXIT_FAILURE_RUN, "tokenizer: out of memory adding a token");
        }
        idx = (int32_t)a->n++;
        a->v[idx].content = xmalloc(len + 1);
        memcpy(a->v[idx].content, content, len);
        a->v[idx].content[len] = '\0';
        a->v[idx].len = len;
        a->v[idx].norm = NULL;
        a->v[idx].norm_len = 0;
        strmap_put(&a->by_content, content, len, idx);
    }
    added_token *t = &a->v[idx];
    t->id = id;
    t->special = special != 0;
    t->lstrip = lstrip != 0;
    t->rstrip = rstrip != 0;
    t->single_word = single_word != 0;
    t->normalized = normalized != 0;
    char key[16];
    strmap_put(&a->by_id, key, id_key(id, key), idx);
    return (size_t)idx;
}

int added_find_content(const added_vocab *a, const char *content, size_t len)
{
    return strmap_get(&a->by_content, content, len);
}

int added_find_id(const added_vocab *a, int32_t id)
{
    char key[16];
    int32_t idx = strmap_get(&a->by_id, key, id_key(id, key));
    /* an id reassigned to another content leaves a stale entry */
    return idx >= 0 && a->v[idx].id == id ? idx : -1;
}

static int cmp_size_desc(const void *pa, const void *pb)
{
    size_t a = *(const size_t *)pa, b = *(const size_t *)pb;
    return (a < b) - (a > b);
}

static void set_build(added_set *s, const added_vocab *a, int normalized)
{
    strmap_clear(&s->map);
    free(s->lens);
    s->lens = xmalloc((a->n + 1) * sizeof *s->lens);
    s->n_lens = 0;
    memset(s->first, 0, sizeof s->first);
    for (size_t i = 0; i < a->n; i++) {
        const added_token *t = &a->v[i];
        const char *key = normalized ? t->norm : t->content;
        size_t len = normalized ? t->norm_len : t->len;
        if ((int)t->normalized != normalized || len == 0)
            continue;
        strmap_put(&s->map, key, len, (int32_t)i);
        unsigned char b = (unsigned char)key[0];
        s->first[b >> 3] |= (uint8_t)(1u << (b & 7));
        size_t k = 0;
        while (k < s->n_lens && s->lens[k] != len)
            k++;
        if (k == s->n_lens)
            s->lens[s->n_lens++] = len;
    }
    qsort(s->lens, s->n_lens, sizeof *s->lens, cmp_size_desc);
}

void added_refresh(added_vocab *a, const norm_step *norm, size_t n_norm)
{
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    if (!md)
        die(EXIT_FAILURE_RUN, "tokenizer: out of memory");
    for (size_t i = 0; i < a->n; i++) {
        added_token *t = &a->v[i];
        arena ar = {0};
        const char *out;
        size_t n_out;
        free(t->norm);
        normalize_run(norm, n_norm, t->content, t->len, &out, &n_out, &ar, md);
        t->norm = xmalloc(n_out + 1);
        memcpy(t->norm, out, n_out);
        t->norm[n_out] = '\0';
        t->norm_len = n_out;
        arena_free(&ar);
    }
    pcre2_match_data_free(md);
    set_build(&a->raw, a, 0);
    set_build(&a->norm, a, 1);
}

static void seg_push(segvec *out, size_t start, size_t end, int token)
{
    if (out->n == out->cap) {
        out->cap = out->cap ? 2 * out->cap : 16;
        out->v = realloc(out->v, out->cap * sizeof *out->v);
        if (!out->v)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing a segment list");
    }
    out->v[out->n++] = (added_segment){start, end, token};
}

/* A word character as the regex crate's \w (tokenizers' single_word test):
 * Alphabetic, marks, decimal digits, connector punctuation.  Non-ASCII
 * characters are looked up with a PCRE2 class compiled once. */
static pcre2_code *word_re;
static pthread_once_t word_re_once = PTHREAD_ONCE_INIT;

static void word_re_compile(void)
{
    int code;
    PCRE2_SIZE at;
    word_re = pcre2_compile((PCRE2_SPTR) "[\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\x{200C}\\x{200D}]",
                            PCRE2_ZERO_TERMINATED, PCRE2_UTF | PCRE2_UCP, &code, &at, NULL);
}

static int is_word_char(const char *s, size_t len)
{
    unsigned char c = (unsigned char)s[0];
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
               c == '_';
    pthread_once(&word_re_once, word_re_compile);
    if (!word_re)
        return 1;
    pcre2_match_data *md = pcre2_match_data_create(1, NULL);
    int rc = md ? pcre2_match(word_re, (PCRE2_SPTR)s, len, 0, PCRE2_NO_UTF_CHECK | PCRE2_ANCHORED,
                              md, NULL)
                : -1;
    pcre2_match_data_free(md);
    return rc >= 0;
}

/* Start of the character that ends at s[at). */
static size_t char_start_before(const char *s, size_t at)
{
    size_t back = 1;
    while (back < at && ((unsigned char)s[at - back] & 0xC0) == 0x80)
        back++;
    return at - back;
}

static uint32_t char_before(const char *s, size_t at)
{
    size_t len;
    return utf8_decode(s + char_start_before(s, at), &len);
}

void added_split(const added_vocab *a, int normalized_set, const char *s, size_t n, segvec *out)
{
    const added_set *set = normalized_set ? &a->norm : &a->raw;
    size_t start_offset = 0, i = 0;
    while (set->n_lens > 0 && i < n) {
        unsigned char b = (unsigned char)s[i];
        if (!(set->first[b >> 3] & (1u << (b & 7)))) {
            i++;
            continue;
        }
        int32_t idx = -1;
        size_t len = 0;
        for (size_t k = 0; k < set->n_lens && idx < 0; k++) {
            len = set->lens[k];
            if (len <= n - i)
                idx = strmap_get(&set->map, s + i, len);
        }
        if (idx < 0) {
            i++;
            continue;
        }
        const added_token *t = &a->v[idx];
        size_t start = i, stop = i + len, clen;
        if (t->single_word) {
            size_t prev = start ? char_start_before(s, start) : 0;
            int start_space = start == 0 || !is_word_char(s + prev, start - prev);
            int stop_space = stop == n || !is_word_char(s + stop, utf8_len((unsigned char)s[stop]));
            if (!start_space || !stop_space) {
                i = stop; /* the search resumes after the match, as Aho-Corasick's */
                continue;
            }
        }
        if (t->lstrip) {
            size_t new_start = start;
            while (new_start > start_offset && unicode_is_whitespace(char_before(s, new_start))) {
                size_t back = 1;
                while (((unsigned char)s[new_start - back] & 0xC0) == 0x80)
                    back++;
                new_start -= back;
            }
            start = new_start;
        }
        if (t->rstrip)
            while (stop < n && unicode_is_whitespace(utf8_decode(s + stop, &clen)))
                stop += clen;
        if (start_offset < start)
            seg_push(out, start_offset, start, -1);
        seg_push(out, start, stop, idx);
        start_offset = i = stop;
    }
    if (start_offset < n || (n == 0 && out->n == 0))
        seg_push(out, start_offset, n, -1);
}
