/* tokenizer_decode.c: ids back to text through the decoder chain of
 * tokenizer.json (Replace, ByteFallback, Fuse, Strip, ByteLevel, Metaspace),
 * each step as tokenizers' decode_chain does it on the list of token
 * strings; the surviving strings are concatenated (joined by spaces when the
 * file has no decoder, as tokenizers does). */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct str {
    char *p;
    size_t n;
} str;

typedef struct strlist {
    str *v;
    size_t n, cap;
} strlist;

static void list_push(strlist *l, char *p, size_t n)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory decoding");
    }
    l->v[l->n++] = (str){p, n};
}

static char *copy_n(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void list_free(strlist *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].p);
    free(l->v);
    memset(l, 0, sizeof *l);
}

/* Every occurrence of a in s replaced by b. */
static str replace_all(const str *s, const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t count = 0;
    for (const char *p = s->p; a_len && (p = memmem(p, (size_t)(s->p + s->n - p), a, a_len));
         p += a_len)
        count++;
    size_t n = s->n - count * a_len + count * b_len;
    char *o = xmalloc(n + 1), *w = o;
    const char *p = s->p, *end = s->p + s->n;
    while (count-- > 0) {
        const char *hit = memmem(p, (size_t)(end - p), a, a_len);
        memcpy(w, p, (size_t)(hit - p));
        w += hit - p;
        memcpy(w, b, b_len);
        w += b_len;
        p = hit + a_len;
    }
    memcpy(w, p, (size_t)(end - p));
    w += end - p;
    *w = '\0';
    return (str){o, n};
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
         : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* "<0xAB>" -> 0xAB; -1 otherwise.  Rust's u8::from_str_radix also takes a
 * leading '+' ("<0x+A>"). */
static int byte_token(const str *s)
{
    if (s->n != 6 || memcmp(s->p, "<0x", 3) != 0 || s->p[5] != '>')
        return -1;
    int hi = s->p[3] == '+' ? 0 : hex_digit(s->p[3]), lo = hex_digit(s->p[4]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static void flush_bytes(strlist *out, char *bytes, size_t *n_bytes)
{
    if (*n_bytes == 0)
        return;
    if (utf8_valid(bytes, *n_bytes, NULL)) {
        list_push(out, copy_n(bytes, *n_bytes), *n_bytes);
    } else {
        /* tokenizers: one U+FFFD per byte token when they are not UTF-8 */
        for (size_t i = 0; i < *n_bytes; i++)
            list_push(out, copy_n("\xef\xbf\xbd", 3), 3);
    }
    *n_bytes = 0;
}

static void step_byte_fallback(strlist *l)
{
    strlist out = {0};
    char *bytes = xmalloc(l->n + 1);
    size_t n_bytes = 0;
    for (size_t i = 0; i < l->n; i++) {
        int b = byte_token(&l->v[i]);
        if (b >= 0) {
            bytes[n_bytes++] = (char)b;
            free(l->v[i].p);
            continue;
        }
        flush_bytes(&out, bytes, &n_bytes);
        list_push(&out, l->v[i].p, l->v[i].n);
    }
    flush_bytes(&out, bytes, &n_bytes);
    free(bytes);
    free(l->v);
    *l = out;
}

static void step_fuse(strlist *l)
{
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++)
        n += l->v[i].n;
    char *o = xmalloc(n + 1), *w = o;
    for (size_t i = 0; i < l->n; i++) {
        memcpy(w, l->v[i].p, l->v[i].n);
        w += l->v[i].n;
    }
    *w = '\0';
    list_free(l);
    list_push(l, o, n);
}

/* Up to start leading and stop trailing copies of the character c. */
static void step_strip(strlist *l, const dec_step *st)
{
    for (size_t i = 0; i < l->n; i++) {
        str *s = &l->v[i];
        size_t from = 0, to = s->n;
        for (int k = 0; k < st->start && from + st->a_len <= to &&
                        !memcmp(s->p + from, st->a, st->a_len); k++)
            from += st->a_len;
        for (int k = 0; k < st->stop && to >= from + st->a_len &&
                        !memcmp(s->p + to - st->a_len, st->a, st->a_len); k++)
            to -= st->a_len;
        memmove(s->p, s->p + from, to - from);
        s->n = to - from;
        s->p[s->n] = '\0';
    }
}

static void step_byte_level(strlist *l)
{
    size_t total = 0;
    for (size_t i = 0; i < l->n; i++)
        total += l->v[i].n;
    char *bytes = xmalloc(total + 1);
    size_t n = 0;
    for (size_t i = 0; i < l->n; i++) {
        char *raw;
        size_t n_raw;
        if (bytelevel_to_raw(l->v[i].p, l->v[i].n, &raw, &n_raw) == 0) {
            memcpy(bytes + n, raw, n_raw);
            n += n_raw;
            free(raw);
        } else {
            /* a token outside the byte alphabet (an added token) as it is */
            memcpy(bytes + n, l->v[i].p, l->v[i].n);
            n += l->v[i].n;
        }
    }
    size_t n_text;
    char *text = utf8_lossy(bytes, n, &n_text);
    free(bytes);
    list_free(l);
    list_push(l, text, n_text);
}

/* The replacement becomes a space; in the first token (unless the scheme
 * is never) every replacement is dropped, as tokenizers does. */
static void step_metaspace(strlist *l, const dec_step *st)
{
    for (size_t i = 0; i < l->n; i++) {
        str r = replace_all(&l->v[i], st->a, st->a_len,
                            i == 0 && st->prepend_scheme != PREPEND_NEVER ? "" : " ",
                            i == 0 && st->prepend_scheme != PREPEND_NEVER ? 0 : 1);
        free(l->v[i].p);
        l->v[i] = r;
    }
}

int tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n_ids, int skip_special_tokens,
                     char **text, size_t *n_bytes, errbuf *e)
{
    strlist l = {0};
    for (size_t i = 0; i < n_ids; i++) {
        int idx = added_find_id(&t->added, ids[i]);
        const char *tok;
        if (idx >= 0) {
            if (skip_special_tokens && t->added.v[idx].special)
                continue;
        }
        {
            tok = tokenizer_id_to_token(t, ids[i]);
            if (!tok) {
                list_free(&l);
                return err_set(e, "tokenizer %s: id %d is not in the vocabulary (size %zu)",
                               t->path, (int)ids[i], tokenizer_vocab_size(t));
            }
        }
        list_push(&l, copy_n(tok, strlen(tok)), strlen(tok));
    }
    for (size_t k = 0; k < t->n_dec; k++) {
        const dec_step *st = &t->dec[k];
        switch (st->kind) {
        case DEC_REPLACE:
            for (size_t i = 0; i < l.n; i++) {
                str r = replace_all(&l.v[i], st->a, st->a_len, st->b, st->b_len);
                free(l.v[i].p);
                l.v[i] = r;
            }
            break;
        case DEC_BYTEFALLBACK:
            step_byte_fallback(&l);
            break;
        case DEC_FUSE:
            step_fuse(&l);
            break;
        case DEC_STRIP:
            step_strip(&l, st);
            break;
        case DEC_BYTELEVEL:
            step_byte_level(&l);
            break;
        case DEC_METASPACE:
            step_metaspace(&l, st);
            break;
        }
    }
    size_t n = 0;
    for (size_t i = 0; i < l.n; i++)
        n += l.v[i].n + (t->has_decoder ? 0 : 1);
    char *o = xmalloc(n + 1), *w = o;
    for (size_t i = 0; i < l.n; i++) {
        if (!t->has_decoder && i > 0)
            *w++ = ' ';
        memcpy(w, l.v[i].p, l.v[i].n);
        w += l.v[i].n;
    }
    *w = '\0';
    list_free(&l);
    *text = o;
    *n_bytes = (size_t)(w - o);
    return 0;
}
