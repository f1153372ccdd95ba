/* tokenizer_offsets.c: encoding that also says where each token came from.
 *
 * tokenizer_encode_offsets runs the same pipeline as tokenizer_encode
 * (tokenizer.c) but carries, beside every string it makes, an alignment:
 * for each byte, the span of the original text it stands for.  That is how
 * Hugging Face tokenizers' NormalizedString computes offsets, and the rules
 * are theirs: a byte of the original text stands for its whole character;
 * text a normalizer or pre-tokenizer prepends (U+2581, a space) stands for
 * the first character of what it was prepended to; a replacement stands for
 * what it replaced.  A token's span runs from its first byte's start to its
 * last byte's end.  Chat data needs this to train on assistant tokens only.
 * No word cache here (it keeps ids, not lengths): this path is for data
 * preparation, where tokenizer_encode's speed is not needed per call. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

typedef struct span {
    size_t start, end;
} span;

/* A string of the pipeline and the alignment of each of its bytes. */
typedef struct astr {
    const char *p;
    size_t n;
    const span *al;
    int at_start;
} astr;

typedef struct astrvec {
    astr *v;
    size_t n, cap;
} astrvec;

static void astr_push(astrvec *a, astr s)
{
    if (s.n == 0)
        return; /* tokenizers drops empty splits */
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing a word list to %zu", a->cap);
    }
    a->v[a->n++] = s;
}

/* Alignment arrays live in the call's arena (which does not align). */
static span *span_alloc(arena *ar, size_t n)
{
    uintptr_t p = (uintptr_t)arena_alloc(ar, n * sizeof(span) + _Alignof(span));
    p = (p + _Alignof(span) - 1) & ~(uintptr_t)(_Alignof(span) - 1);
    return (span *)p;
}

/* `prefix` + s: the prefix stands for s's first character. */
static astr astr_prepend(const astr *s, const char *prefix, size_t prefix_len, arena *ar)
{
    char *o = arena_alloc(ar, prefix_len + s->n);
    span *al = span_alloc(ar, prefix_len + s->n);
    memcpy(o, prefix, prefix_len);
    memcpy(o + prefix_len, s->p, s->n);
    for (size_t i = 0; i < prefix_len; i++)
        al[i] = s->al[0];
    memcpy(al + prefix_len, s->al, s->n * sizeof *al);
    return (astr){o, prefix_len + s->n, al, s->at_start};
}

/* Each match spans[2k..2k+1] of s becomes b, which stands for the match. */
static astr astr_replace(const astr *s, const size_t *spans, size_t n_vals, const char *b, size_t b_len, arena *ar)
{
    if (n_vals == 0)
        return *s;
    size_t removed = 0;
    for (size_t i = 0; i < n_vals; i += 2)
        removed += spans[i + 1] - spans[i];
    size_t total = s->n - removed + n_vals / 2 * b_len;
    char *o = arena_alloc(ar, total + 1);
    span *al = span_alloc(ar, total + 1);
    size_t w = 0, prev = 0;
    for (size_t i = 0; i < n_vals; i += 2) {
        size_t ms = spans[i], me = spans[i + 1];
        memcpy(o + w, s->p + prev, ms - prev);
        memcpy(al + w, s->al + prev, (ms - prev) * sizeof *al);
        w += ms - prev;
        span whole = {s->al[ms].start, s->al[me - 1].end};
        memcpy(o + w, b, b_len);
        for (size_t k = 0; k < b_len; k++)
            al[w + k] = whole;
        w += b_len;
        prev = me;
    }
    memcpy(o + w, s->p + prev, s->n - prev);
    memcpy(al + w, s->al + prev, (s->n - prev) * sizeof *al);
    w += s->n - prev;
    return (astr){o, w, al, s->at_start};
}

/* normalize_run (tokenizer_pretok.c), step for step, with alignments. */
static astr normalize_aligned(const norm_step *steps, size_t n_steps, astr s, arena *ar, pcre2_match_data *md)
{
    for (size_t k = 0; k < n_steps; k++) {
        const norm_step *st = &steps[k];
        switch (st->kind) {
        case NORM_PREPEND:
            if (s.n > 0)
                s = astr_prepend(&s, st->a, st->a_len, ar);
            break;
        case NORM_REPLACE: {
            size_t n_vals;
            size_t *sp = pretok_find(st->re, st->a, st->a_len, s.p, s.n, &n_vals, md);
            s = astr_replace(&s, sp, n_vals, st->b, st->b_len, ar);
            free(sp);
            break;
        }
        case NORM_STRIP: {
            size_t len;
            while (st->left && s.n > 0 && unicode_is_whitespace(utf8_decode(s.p, &len))) {
                s.p += len;
                s.al += len;
                s.n -= len;
            }
            while (st->right && s.n > 0) {
                size_t back = 1;
                while (back < s.n && ((unsigned char)s.p[s.n - back] & 0xC0) == 0x80)
                    back++;
                if (!unicode_is_whitespace(utf8_decode(s.p + s.n - back, &len)))
                    break;
                s.n -= back;
            }
            break;
        }
        }
    }
    return s;
}

/* Cuts s at its matches; the pieces are substrings, so their alignments are
 * slices of s's. */
static void split_aligned(const astr *s, const size_t *spans, size_t n_vals, int behavior, int invert,
                          piecevec *scratch, astrvec *out)
{
    piece pc = {s->p, s->n, s->at_start};
    scratch->n = 0;
    pretok_split(&pc, spans, n_vals, behavior, invert, scratch);
    for (size_t i = 0; i < scratch->n; i++) {
        size_t off = (size_t)(scratch->v[i].p - s->p);
        astr_push(out, (astr){scratch->v[i].p, scratch->v[i].n, s->al + off, scratch->v[i].at_start});
    }
}

static void pretok_aligned_piece(const pre_step *st, const astr *pc, astrvec *out, arena *ar, piecevec *scratch,
                                 pcre2_match_data *md)
{
    size_t n_vals;
    size_t *sp;
    switch (st->kind) {
    case PRE_METASPACE: {
        sp = pretok_find(NULL, " ", 1, pc->p, pc->n, &n_vals, md);
        astr s = astr_replace(pc, sp, n_vals, st->rep, st->rep_len, ar);
        free(sp);
        int has = s.n >= st->rep_len && memcmp(s.p, st->rep, st->rep_len) == 0;
        if (!has && (st->prepend_scheme == PREPEND_ALWAYS || (st->prepend_scheme == PREPEND_FIRST && pc->at_start)))
            s = astr_prepend(&s, st->rep, st->rep_len, ar);
        if (!st->split) {
            astr_push(out, s);
            return;
        }
        sp = pretok_find(NULL, st->rep, st->rep_len, s.p, s.n, &n_vals, md);
        split_aligned(&s, sp, n_vals, SPLIT_MERGED_NEXT, 0, scratch, out);
        free(sp);
        return;
    }
    case PRE_BYTELEVEL: {
        astr s = *pc;
        if (st->add_prefix_space && !(s.n > 0 && s.p[0] == ' '))
            s = astr_prepend(&s, " ", 1, ar);
        if (!st->re) {
            astr_push(out, s);
            return;
        }
        sp = pretok_find(st->re, NULL, 0, s.p, s.n, &n_vals, md);
        split_aligned(&s, sp, n_vals, SPLIT_ISOLATED, 0, scratch, out);
        free(sp);
        return;
    }
    case PRE_SPLIT:
        sp = pretok_find(st->re, st->literal, st->literal_len, pc->p, pc->n, &n_vals, md);
        split_aligned(pc, sp, n_vals, st->behavior, st->invert, scratch, out);
        free(sp);
        return;
    }
}

typedef struct offsets_state {
    arena ar;
    segvec segs;
    astrvec words_in, words_out;
    piecevec scratch;
    bpe_scratch bpe;
    pcre2_match_data *md;
    idvec ids, word_ids, lens;
    size_t *offsets; /* 2 per id */
    size_t offsets_cap;
} offsets_state;

static void push_token(offsets_state *s, int32_t id, size_t start, size_t end)
{
    idvec_push(&s->ids, id);
    if (2 * s->ids.n > s->offsets_cap) {
        s->offsets_cap = s->offsets_cap ? 2 * s->offsets_cap : 128;
        s->offsets = realloc(s->offsets, s->offsets_cap * sizeof *s->offsets);
        if (!s->offsets)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing an offset list");
    }
    s->offsets[2 * s->ids.n - 2] = start;
    s->offsets[2 * s->ids.n - 1] = end;
}

static void encode_words_aligned(const tokenizer *t, offsets_state *s, astr text)
{
    s->words_in.n = 0;
    astr_push(&s->words_in, text);
    if (t->n_pre == 0) {
        s->words_out.n = 0;
        for (size_t i = 0; i < s->words_in.n; i++)
            astr_push(&s->words_out, s->words_in.v[i]);
    }
    for (size_t k = 0; k < t->n_pre; k++) {
        s->words_out.n = 0;
        for (size_t i = 0; i < s->words_in.n; i++)
            pretok_aligned_piece(&t->pre[k], &s->words_in.v[i], &s->words_out, &s->ar, &s->scratch, s->md);
        if (k + 1 < t->n_pre) {
            astrvec tmp = s->words_in;
            s->words_in = s->words_out;
            s->words_out = tmp;
        }
    }
    for (size_t i = 0; i < s->words_out.n; i++) {
        const astr *w = &s->words_out.v[i];
        s->word_ids.n = s->lens.n = 0;
        bpe_encode_word_lens(&t->bpe, &s->bpe, w->p, w->n, &s->word_ids, &s->lens);
        /* the tokens cover the word end to end, in order */
        size_t at = 0;
        for (size_t k = 0; k < s->word_ids.n && at < w->n; k++) {
            size_t end = at + (size_t)s->lens.v[k] <= w->n ? at + (size_t)s->lens.v[k] : w->n;
            push_token(s, s->word_ids.v[k], w->al[at].start, w->al[end - 1].end);
            at = end;
        }
    }
}

int tokenizer_encode_offsets(const tokenizer *t, const char *text, size_t n_bytes, int add_special_tokens,
                             int32_t **ids, size_t **offsets, size_t *n_ids, errbuf *e)
{
    size_t bad;
    if (!text && n_bytes)
        return err_set(e, "tokenizer %s: no text", t->path);
    if (!utf8_valid(text, n_bytes, &bad))
        return err_set(e, "tokenizer %s: the text to encode is not valid UTF-8 (byte %zu of %zu)", t->path, bad,
                       n_bytes);
    offsets_state s;
    memset(&s, 0, sizeof s);
    s.md = pcre2_match_data_create(1, NULL);
    if (!s.md)
        return err_set(e, "tokenizer %s: out of memory", t->path);
    /* each byte of the text stands for its whole character */
    span *al0 = xmalloc((n_bytes ? n_bytes : 1) * sizeof *al0);
    for (size_t i = 0; i < n_bytes;) {
        size_t k = utf8_len((unsigned char)text[i]);
        for (size_t j = 0; j < k; j++)
            al0[i + j] = (span){i, i + k};
        i += k;
    }
    if (add_special_tokens)
        for (size_t i = 0; i < t->post_prefix.n; i++)
            push_token(&s, t->post_prefix.v[i], 0, 0);
    segvec raw = {0};
    added_split(&t->added, 0, text, n_bytes, &raw);
    for (size_t i = 0; i < raw.n; i++) {
        const added_segment *g = &raw.v[i];
        if (g->token >= 0) {
            push_token(&s, t->added.v[g->token].id, g->start, g->end);
            continue;
        }
        if (g->end == g->start)
            continue;
        astr stretch = {text + g->start, g->end - g->start, al0 + g->start, g->start == 0};
        astr norm = normalize_aligned(t->norm, t->n_norm, stretch, &s.ar, s.md);
        if (t->added.norm.n_lens == 0) {
            encode_words_aligned(t, &s, norm);
            continue;
        }
        s.segs.n = 0;
        added_split(&t->added, 1, norm.p, norm.n, &s.segs);
        for (size_t j = 0; j < s.segs.n; j++) {
            const added_segment *h = &s.segs.v[j];
            if (h->token >= 0)
                push_token(&s, t->added.v[h->token].id, norm.al[h->start].start, norm.al[h->end - 1].end);
            else
                encode_words_aligned(t, &s, (astr){norm.p + h->start, h->end - h->start, norm.al + h->start,
                                                   norm.at_start && h->start == 0});
        }
    }
    if (add_special_tokens)
        for (size_t i = 0; i < t->post_suffix.n; i++)
            push_token(&s, t->post_suffix.v[i], 0, 0);
    free(raw.v);
    free(al0);
    arena_free(&s.ar);
    free(s.segs.v);
    free(s.words_in.v);
    free(s.words_out.v);
    free(s.scratch.v);
    free(s.lens.v);
    free(s.word_ids.v);
    bpe_scratch_free(&s.bpe);
    pcre2_match_data_free(s.md);
    *ids = s.ids.v ? s.ids.v : xmalloc(sizeof **ids);
    *offsets = s.offsets ? s.offsets : xmalloc(2 * sizeof **offsets);
    *n_ids = s.ids.n;
    return 0;
}
