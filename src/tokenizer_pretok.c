/* tokenizer_pretok.c: normalizers (Prepend, Replace, Strip) and
 * pre-tokenizers (Metaspace, ByteLevel, Split) of Hugging Face tokenizers.
 *
 * Pre-tokenizers cut a piece of text into words that the model then
 * encodes one by one; their splitting rules are tokenizers' (a regex's
 * matches and the gaps between them, then Isolated / Removed / Merged* /
 * Contiguous).  Regexes run on PCRE2 with UTF and UCP so that \p{L}, \p{N}
 * and \s mean what they mean in Oniguruma, which tokenizers uses.  The
 * ByteLevel byte -> character mapping is not done here: the BPE model of a
 * byte-level tokenizer reads raw bytes directly (see tokenizer_bpe.c). */
#define _GNU_SOURCE /* memmem */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

const char *const GPT2_REGEX =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

void piecevec_push(piecevec *a, const char *p, size_t n, int at_start)
{
    if (n == 0)
        return; /* tokenizers drops empty splits */
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing a word list to %zu", a->cap);
    }
    a->v[a->n++] = (piece){p, n, at_start};
}

/* Oniguruma's \s (tokenizers' regex engine): Unicode White_Space.  PCRE2's
 * \s also takes U+180E (a space before Unicode 6.3), which splits words
 * differently, so \s and \S are spelled out before compiling. */
#define WS_CHARS "\\t\\n\\x0B\\f\\r\\x20\\x85\\xA0\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}" \
                 "\\x{202F}\\x{205F}\\x{3000}"

static char *regex_translate(const char *pattern, size_t len, size_t *n_out)
{
    size_t cap = len * (sizeof WS_CHARS + 3) + 1, o = 0;
    char *out = xmalloc(cap);
    int in_class = 0;
    for (size_t i = 0; i < len; i++) {
        char c = pattern[i];
        if (c == '\\' && i + 1 < len) {
            char d = pattern[i + 1];
            const char *rep = NULL;
            if (d == 's')
                rep = in_class ? WS_CHARS : "[" WS_CHARS "]";
            else if (d == 'S' && !in_class)
                rep = "[^" WS_CHARS "]";
            if (rep) {
                memcpy(out + o, rep, strlen(rep));
                o += strlen(rep);
            } else {
                out[o++] = c;
                out[o++] = d;
            }
            i++;
            continue;
        }
        if (!in_class && c == '[') {
            in_class = 1;
            out[o++] = c;
            /* a ']' right after '[' or '[^' is a literal */
            if (i + 1 < len && pattern[i + 1] == '^')
                out[o++] = pattern[++i];
            if (i + 1 < len && pattern[i + 1] == ']')
                out[o++] = pattern[++i];
            continue;
        }
        if (in_class && c == '[' && i + 1 < len && pattern[i + 1] == ':') {
            /* a POSIX class [:alpha:] inside the class */
            const char *end = strstr(pattern + i, ":]");
            size_t n = end && (size_t)(end - pattern) < len ? (size_t)(end - pattern) + 2 - i : 1;
            memcpy(out + o, pattern + i, n);
            o += n;
            i += n - 1;
            continue;
        }
        if (in_class && c == ']')
            in_class = 0;
        out[o++] = c;
    }
    out[o] = '\0';
    *n_out = o;
    return out;
}

pcre2_code *regex_compile(const char *pattern, size_t len, const char *path, const char *what,
                          errbuf *e)
{
    int code;
    PCRE2_SIZE at;
    size_t n;
    char *translated = regex_translate(pattern, len, &n);
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)translated, n, PCRE2_UTF | PCRE2_UCP, &code, &at,
                                   NULL);
    free(translated);
    if (!re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        err_set(e, "%s: %s: the regex \"%.*s\" does not compile: %s", path, what, (int)len,
                pattern, (const char *)msg);
        return NULL;
    }
    /* JIT is an optimization: without it (e.g. W^X memory) PCRE2 interprets */
    (void)pcre2_jit_compile(re, PCRE2_JIT_COMPLETE);
    return re;
}

/* ------------------------------------------------------------------------- */
/* Matches of a regex or a literal in s[0..n), as (start, end) pairs. */

typedef struct spanvec {
    size_t *v; /* start0, end0, start1, end1, ... */
    size_t n, cap;
} spanvec;

static void span_push(spanvec *a, size_t start, size_t end)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        if (!a->v)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing a match list");
    }
    a->v[a->n++] = start;
    a->v[a->n++] = end;
}

static void find_regex(const pcre2_code *re, const char *s, size_t n, spanvec *out,
                       pcre2_match_data *md)
{
    size_t at = 0;
    while (at <= n) {
        /* input was checked once up front: no UTF check per call, which
         * would make the scan quadratic */
        int rc = pcre2_match(re, (PCRE2_SPTR)s, n, at, PCRE2_NO_UTF_CHECK, md, NULL);
        if (rc < 0)
            break; /* no match (or a resource limit: the rest stays one gap) */
        PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t start = ov[0], end = ov[1];
        if (end == start) {
            /* an empty match splits nothing: step over one character */
            if (start >= n)
                break;
            at = start + utf8_len((unsigned char)s[start]);
            continue;
        }
        span_push(out, start, end);
        at = end;
    }
}

static void find_literal(const char *lit, size_t lit_len, const char *s, size_t n, spanvec *out)
{
    if (lit_len == 0)
        return;
    size_t at = 0;
    while (at + lit_len <= n) {
        const char *p = memmem(s + at, n - at, lit, lit_len);
        if (!p)
            break;
        size_t start = (size_t)(p - s);
        span_push(out, start, start + lit_len);
        at = start + lit_len;
    }
}

/* ------------------------------------------------------------------------- */
/* Normalizers. */

static int starts_with(const char *s, size_t n, const char *prefix, size_t prefix_len)
{
    return n >= prefix_len && memcmp(s, prefix, prefix_len) == 0;
}

/* Replaces each span of s by (b, b_len). */
static void replace_spans(const char *s, size_t n, const spanvec *sp, const char *b, size_t b_len,
                          const char **out, size_t *n_out, arena *ar)
{
    if (sp->n == 0) {
        *out = s;
        *n_out = n;
        return;
    }
    size_t removed = 0;
    for (size_t i = 0; i < sp->n; i += 2)
        removed += sp->v[i + 1] - sp->v[i];
    size_t total = n - removed + sp->n / 2 * b_len;
    char *o = arena_alloc(ar, total + 1), *w = o;
    size_t prev = 0;
    for (size_t i = 0; i < sp->n; i += 2) {
        memcpy(w, s + prev, sp->v[i] - prev);
        w += sp->v[i] - prev;
        memcpy(w, b, b_len);
        w += b_len;
        prev = sp->v[i + 1];
    }
    memcpy(w, s + prev, n - prev);
    w += n - prev;
    *out = o;
    *n_out = (size_t)(w - o);
}

void normalize_run(const norm_step *steps, size_t n_steps, const char *s, size_t n,
                   const char **out, size_t *n_out, arena *ar, pcre2_match_data *md)
{
    spanvec sp = {0};
    for (size_t k = 0; k < n_steps; k++) {
        const norm_step *st = &steps[k];
        switch (st->kind) {
        case NORM_PREPEND:
            if (n > 0) {
                char *o = arena_alloc(ar, st->a_len + n);
                memcpy(o, st->a, st->a_len);
                memcpy(o + st->a_len, s, n);
                s = o;
                n += st->a_len;
            }
            break;
        case NORM_REPLACE:
            sp.n = 0;
            if (st->re)
                find_regex(st->re, s, n, &sp, md);
            else
                find_literal(st->a, st->a_len, s, n, &sp);
            replace_spans(s, n, &sp, st->b, st->b_len, &s, &n, ar);
            break;
        case NORM_STRIP: {
            size_t len;
            while (st->left && n > 0 && unicode_is_whitespace(utf8_decode(s, &len))) {
                s += len;
                n -= len;
            }
            while (st->right && n > 0) {
                size_t back = 1;
                while (back < n && ((unsigned char)s[n - back] & 0xC0) == 0x80)
                    back++;
                if (!unicode_is_whitespace(utf8_decode(s + n - back, &len)))
                    break;
                n -= back;
            }
            break;
        }
        }
    }
    free(sp.v);
    *out = s;
    *n_out = n;
}

/* ------------------------------------------------------------------------- */
/* Pre-tokenizers. */

/* Cuts a piece by its matches (sp) with tokenizers' split behaviors. */
static void split_piece(const piece *pc, const spanvec *sp, int behavior, int invert,
                        piecevec *out)
{
    /* the whole piece as alternating (start, end, is_match) stretches */
    size_t n_items = 0, cap = sp->n + 2;
    size_t *start = xmalloc(cap * sizeof *start), *end = xmalloc(cap * sizeof *end);
    unsigned char *is_match = xmalloc(cap);
    size_t prev = 0;
    for (size_t i = 0; i < sp->n; i += 2) {
        if (sp->v[i] != prev) {
            start[n_items] = prev;
            end[n_items] = sp->v[i];
            is_match[n_items++] = (unsigned char)invert;
        }
        start[n_items] = sp->v[i];
        end[n_items] = sp->v[i + 1];
        is_match[n_items++] = (unsigned char)!invert;
        prev = sp->v[i + 1];
    }
    if (prev != pc->n) {
        start[n_items] = prev;
        end[n_items] = pc->n;
        is_match[n_items++] = (unsigned char)invert;
    }

    /* fold into output stretches: (s, e, removed) */
    size_t n_out = 0;
    unsigned char *removed = xcalloc(n_items + 1, 1);
    size_t *os = xmalloc((n_items + 1) * sizeof *os), *oe = xmalloc((n_items + 1) * sizeof *oe);
    int previous_match = 0;
    switch (behavior) {
    case SPLIT_ISOLATED:
        for (size_t i = 0; i < n_items; i++) {
            os[n_out] = start[i];
            oe[n_out++] = end[i];
        }
        break;
    case SPLIT_REMOVED:
        for (size_t i = 0; i < n_items; i++) {
            os[n_out] = start[i];
            oe[n_out] = end[i];
            removed[n_out++] = is_match[i];
        }
        break;
    case SPLIT_CONTIGUOUS:
        for (size_t i = 0; i < n_items; i++) {
            if (is_match[i] == previous_match && n_out > 0)
                oe[n_out - 1] = end[i];
            else {
                os[n_out] = start[i];
                oe[n_out++] = end[i];
            }
            previous_match = is_match[i];
        }
        break;
    case SPLIT_MERGED_PREV:
        for (size_t i = 0; i < n_items; i++) {
            if (is_match[i] && !previous_match && n_out > 0)
                oe[n_out - 1] = end[i];
            else {
                os[n_out] = start[i];
                oe[n_out++] = end[i];
            }
            previous_match = is_match[i];
        }
        break;
    case SPLIT_MERGED_NEXT:
        /* the same fold from the right, then reversed */
        for (size_t i = n_items; i-- > 0;) {
            if (is_match[i] && !previous_match && n_out > 0)
                os[n_out - 1] = start[i];
            else {
                os[n_out] = start[i];
                oe[n_out++] = end[i];
            }
            previous_match = is_match[i];
        }
        for (size_t i = 0; i < n_out / 2; i++) {
            size_t t = os[i];
            os[i] = os[n_out - 1 - i];
            os[n_out - 1 - i] = t;
            t = oe[i];
            oe[i] = oe[n_out - 1 - i];
            oe[n_out - 1 - i] = t;
        }
        break;
    }
    for (size_t i = 0; i < n_out; i++)
        if (!removed[i])
            piecevec_push(out, pc->p + os[i], oe[i] - os[i], pc->at_start && os[i] == 0);
    free(start);
    free(end);
    free(is_match);
    free(removed);
    free(os);
    free(oe);
}

static void metaspace_piece(const pre_step *st, const piece *pc, piecevec *out, arena *ar,
                            spanvec *sp)
{
    const char *s = pc->p;
    size_t n = pc->n;
    sp->n = 0;
    find_literal(" ", 1, s, n, sp);
    replace_spans(s, n, sp, st->rep, st->rep_len, &s, &n, ar);
    int prepend = !starts_with(s, n, st->rep, st->rep_len) &&
                  (st->prepend_scheme == PREPEND_ALWAYS ||
                   (st->prepend_scheme == PREPEND_FIRST && pc->at_start));
    if (prepend) {
        char *o = arena_alloc(ar, st->rep_len + n);
        memcpy(o, st->rep, st->rep_len);
        memcpy(o + st->rep_len, s, n);
        s = o;
        n += st->rep_len;
    }
    piece moved = {s, n, pc->at_start};
    if (!st->split) {
        piecevec_push(out, s, n, pc->at_start);
        return;
    }
    sp->n = 0;
    find_literal(st->rep, st->rep_len, s, n, sp);
    split_piece(&moved, sp, SPLIT_MERGED_NEXT, 0, out);
}

static void bytelevel_piece(const pre_step *st, const piece *pc, piecevec *out, arena *ar,
                            spanvec *sp, pcre2_match_data *md)
{
    piece p = *pc;
    if (st->add_prefix_space && !(p.n > 0 && p.p[0] == ' ')) {
        char *o = arena_alloc(ar, p.n + 1);
        o[0] = ' ';
        memcpy(o + 1, p.p, p.n);
        p.p = o;
        p.n++;
    }
    if (!st->re) {
        piecevec_push(out, p.p, p.n, p.at_start);
        return;
    }
    sp->n = 0;
    find_regex(st->re, p.p, p.n, sp, md);
    split_piece(&p, sp, SPLIT_ISOLATED, 0, out);
}

void pretok_run(const pre_step *steps, size_t n_steps, piecevec *in, piecevec *out, arena *ar,
                pcre2_match_data *md)
{
    spanvec sp = {0};
    out->n = 0;
    if (n_steps == 0) {
        for (size_t i = 0; i < in->n; i++)
            piecevec_push(out, in->v[i].p, in->v[i].n, in->v[i].at_start);
        return;
    }
    for (size_t k = 0; k < n_steps; k++) {
        const pre_step *st = &steps[k];
        out->n = 0;
        for (size_t i = 0; i < in->n; i++) {
            const piece *pc = &in->v[i];
            switch (st->kind) {
            case PRE_METASPACE:
                metaspace_piece(st, pc, out, ar, &sp);
                break;
            case PRE_BYTELEVEL:
                bytelevel_piece(st, pc, out, ar, &sp, md);
                break;
            case PRE_SPLIT:
                sp.n = 0;
                if (st->re)
                    find_regex(st->re, pc->p, pc->n, &sp, md);
                else
                    find_literal(st->literal, st->literal_len, pc->p, pc->n, &sp);
                split_piece(pc, &sp, st->behavior, st->invert, out);
                break;
            }
        }
        if (k + 1 < n_steps) {
            piecevec t = *in;
            *in = *out;
            *out = t;
        }
    }
    free(sp.v);
}

void norm_steps_free(norm_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(steps[i].a);
        free(steps[i].b);
        if (steps[i].re)
            pcre2_code_free(steps[i].re);
    }
    free(steps);
}

void pre_steps_free(pre_step *steps, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(steps[i].rep);
        free(steps[i].literal);
        if (steps[i].re)
            pcre2_code_free(steps[i].re);
    }
    free(steps);
}

/* ------------------------------------------------------------------------- */
/* The same matching and splitting for the offset-tracking pipeline
 * (tokenizer_offsets.c), which carries an alignment beside each string. */

size_t *pretok_find(const pcre2_code *re, const char *literal, size_t literal_len, const char *s, size_t n,
                    size_t *n_vals, pcre2_match_data *md)
{
    spanvec sp = {0};
    if (re)
        find_regex(re, s, n, &sp, md);
    else
        find_literal(literal, literal_len, s, n, &sp);
    *n_vals = sp.n;
    return sp.v;
}

void pretok_split(const piece *pc, const size_t *spans, size_t n_vals, int behavior, int invert, piecevec *out)
{
    spanvec sp = {(size_t *)spans, n_vals, n_vals};
    split_piece(pc, &sp, behavior, invert, out);
}
