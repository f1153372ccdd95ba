/* jinja_lex.c: template text to tokens, as Jinja2's lexer with the options
 * transformers sets (trim_blocks, lstrip_blocks, keep_trailing_newline off). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

/* Python's str.isspace(): ASCII \t\n\v\f\r, \x1c-\x1f, space, and the
 * Unicode spaces (U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028, U+2029,
 * U+202F, U+205F, U+3000). */
static int is_space_cp(uint32_t c)
{
    return (c >= 9 && c <= 13) || (c >= 0x1c && c <= 0x20) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}

/* The code point at s (n bytes left) and its length; length 0 when the bytes
 * are not well-formed UTF-8. */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
    if (n == 0)
        return 0;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc0 ? 2 : 0;
    if (len == 0 || len > n)
        return 0;
    uint32_t c = s[0] & (0x7f >> len);
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (s[k] & 0x3f);
    }
    *cp = c;
    return len;
}

size_t jinja_space_len(const char *s, size_t n)
{
    uint32_t c;
    size_t len = utf8_decode((const unsigned char *)s, n, &c);
    return len && is_space_cp(c) ? len : 0;
}

size_t jinja_space_len_before(const char *s, size_t n)
{
    for (size_t len = 1; len <= 4 && len <= n; len++) {
        unsigned char b = (unsigned char)s[n - len];
        if ((b & 0xc0) != 0x80) /* the first byte of the last character */
            return jinja_space_len(s + n - len, len) == len ? len : 0;
    }
    return 0;
}

size_t jinja_utf8_len(const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)s[i] & 0xc0) != 0x80;
    return k;
}

size_t jinja_utf8_offset(const char *s, size_t n, size_t k)
{
    size_t i = 0;
    for (; i < n; i++)
        if (((unsigned char)s[i] & 0xc0) != 0x80) {
            if (k == 0)
                return i;
            k--;
        }
    return n;
}

typedef struct lexer {
    jarena *a;
    const char *s;
    size_t n, pos;
    int line;
    jtok *toks;
    size_t n_toks, cap;
} lexer;

static jtok *push(lexer *L, jtok_kind kind, int line, const char *s, size_t n)
{
    if (L->n_toks == L->cap) {
        size_t cap = L->cap ? 2 * L->cap : 256;
        jtok *t = ja_alloc(L->a, cap * sizeof *t);
        if (L->n_toks)
            memcpy(t, L->toks, L->n_toks * sizeof *t);
        L->toks = t;
        L->cap = cap;
    }
    jtok *t = &L->toks[L->n_toks++];
    *t = (jtok){.kind = kind, .line = line, .s = s, .n = n};
    return t;
}

static int count_lines(const char *s, size_t n)
{
    int k = 0;
    for (size_t i = 0; i < n; i++)
        k += s[i] == '\n';
    return k;
}

static void put_utf8(jbuf *b, jarena *a, int line, uint32_t c)
{
    char u[4];
    size_t n;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xc0 | c >> 6);
        u[1] = (char)(0x80 | (c & 0x3f));
        n = 2;
    } else if (c < 0x10000) {
        if (c >= 0xd800 && c <= 0xdfff)
            ja_fail(a, line, "a surrogate escape (\\u%04x) in a string is not supported", (unsigned)c);
        u[0] = (char)(0xe0 | c >> 12);
        u[1] = (char)(0x80 | ((c >> 6) & 0x3f));
        u[2] = (char)(0x80 | (c & 0x3f));
        n = 3;
    } else if (c < 0x110000) {
        u[0] = (char)(0xf0 | c >> 18);
        u[1] = (char)(0x80 | ((c >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3f));
        u[3] = (char)(0x80 | (c & 0x3f));
        n = 4;
    } else {
        ja_fail(a, line, "a string escape beyond U+10FFFF");
    }
    jb_put(a, line, b, u, n);
}

static int hexval(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* A string literal's body, decoded as Jinja does (Python's unicode-escape). */
static void lex_string(lexer *L)
{
    char q = L->s[L->pos];
    int line = L->line;
    size_t i = L->pos + 1;
    jbuf b = {0};
    for (;;) {
        if (i >= L->n)
            ja_fail(L->a, line, "unterminated string");
        char c = L->s[i];
        if (c == q)
            break;
        if (c == '\n')
            L->line++;
        if (c != '\\') {
            jb_put(L->a, line, &b, &c, 1);
            i++;
            continue;
        }
        if (i + 1 >= L->n)
            ja_fail(L->a, line, "unterminated string");
        char d = L->s[i + 1];
        const char *simple = strchr("\\'\"abfnrtv", d);
        if (d && simple) {
            static const char to[] = "\\'\"\a\b\f\n\r\t\v";
            jb_put(L->a, line, &b, &to[simple - "\\'\"abfnrtv"], 1);
            i += 2;
        } else if (d == '\n') { /* line continuation */
            L->line++;
            i += 2;
        } else if (d >= '0' && d <= '7') {
            uint32_t v = 0;
            size_t k = i + 1;
            for (int m = 0; m < 3 && k < L->n && L->s[k] >= '0' && L->s[k] <= '7'; m++, k++)
                v = v * 8 + (uint32_t)(L->s[k] - '0');
            put_utf8(&b, L->a, line, v);
            i = k;
        } else if (d == 'x' || d == 'u' || d == 'U') {
            int digits = d == 'x' ? 2 : d == 'u' ? 4 : 8;
            uint32_t v = 0;
            for (int m = 0; m < digits; m++) {
                int h = i + 2 + m < L->n ? hexval(L->s[i + 2 + m]) : -1;
                if (h < 0)
                    ja_fail(L->a, line, "a truncated \\%c escape in a string", d);
                v = v * 16 + (uint32_t)h;
            }
            put_utf8(&b, L->a, line, v);
            i += 2 + (size_t)digits;
        } else if (d == 'N') {
            ja_fail(L->a, line, "the \\N{...} escape in a string is not supported");
        } else { /* Python keeps an unknown escape as it is */
            jb_put(L->a, line, &b, "\\", 1);
            i++;
        }
    }
    jtok *t = push(L, JT_STRING, line, b.s ? b.s : "", b.n);
    (void)t;
    L->pos = i + 1;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

/* digits with single underscores between them; returns the end */
static size_t scan_digits(const char *s, size_t n, size_t i)
{
    if (i >= n || !is_digit(s[i]))
        return i;
    while (i < n && (is_digit(s[i]) || (s[i] == '_' && i + 1 < n && is_digit(s[i + 1]))))
        i++;
    return i;
}

static void lex_number(lexer *L)
{
    size_t start = L->pos, i = scan_digits(L->s, L->n, start);
    int is_float = 0;
    if (i + 1 < L->n && L->s[i] == '.' && is_digit(L->s[i + 1])) {
        i = scan_digits(L->s, L->n, i + 1);
        is_float = 1;
    }
    if (i < L->n && (L->s[i] == 'e' || L->s[i] == 'E')) {
        size_t k = i + 1;
        if (k < L->n && (L->s[k] == '+' || L->s[k] == '-'))
            k++;
        if (k < L->n && is_digit(L->s[k])) {
            i = scan_digits(L->s, L->n, k);
            is_float = 1;
        }
    }
    char num[64];
    size_t m = 0;
    for (size_t k = start; k < i && m < sizeof num - 1; k++)
        if (L->s[k] != '_')
            num[m++] = L->s[k];
    num[m] = 0;
    if (i - start >= sizeof num - 1)
        ja_fail(L->a, L->line, "a number literal of %zu characters is not supported", i - start);
    jtok *t = push(L, is_float ? JT_FLOAT : JT_INT, L->line, L->s + start, i - start);
    if (is_float) {
        t->f = strtod(num, NULL);
    } else {
        errno = 0;
        char *end;
        long long v = strtoll(num, &end, 10);
        if (errno)
            ja_fail(L->a, L->line, "the integer %s is beyond 64 bits (not supported)", num);
        t->i = v;
    }
    L->pos = i;
}

static const char *const OPS2[] = {"//", "**", "==", "!=", "<=", ">="};
static const char OPS1[] = "+-/*%~[](){}<>=.:|,;";

/* The tokens of a {{ }} or {% %} tag, up to and with its end; returns the
 * end marker's modifier ('-', '+' or 0). */
static char lex_tag(lexer *L, int is_var)
{
    int depth = 0;
    const char *end = is_var ? "}}" : "%}";
    for (;;) {
        size_t sp;
        while (L->pos < L->n && (sp = jinja_space_len(L->s + L->pos, L->n - L->pos))) {
            L->line += L->s[L->pos] == '\n';
            L->pos += sp;
        }
        if (L->pos >= L->n)
            ja_fail(L->a, L->line, "unterminated %s tag", is_var ? "{{ }}" : "{% %}");
        const char *p = L->s + L->pos;
        size_t left = L->n - L->pos;
        if (depth == 0) {
            char mod = 0;
            size_t k = 0;
            if ((*p == '-' || (*p == '+' && !is_var)) && left >= 3 && !strncmp(p + 1, end, 2)) {
                mod = *p;
                k = 1;
            }
            if (left >= k + 2 && !strncmp(p + k, end, 2)) {
                push(L, is_var ? JT_VAR_END : JT_BLOCK_END, L->line, p, k + 2);
                L->pos += k + 2;
                return mod;
            }
        }
        if (*p == '\'' || *p == '"') {
            lex_string(L);
        } else if (is_digit(*p)) {
            lex_number(L);
        } else if (is_name_start(*p)) {
            size_t k = 1;
            while (k < left && (is_name_start(p[k]) || is_digit(p[k])))
                k++;
            push(L, JT_NAME, L->line, p, k);
            L->pos += k;
        } else {
            size_t k = 0;
            for (size_t o = 0; o < sizeof OPS2 / sizeof *OPS2; o++)
                if (left >= 2 && !strncmp(p, OPS2[o], 2))
                    k = 2;
            if (!k && strchr(OPS1, *p) && *p)
                k = 1;
            if (!k)
                ja_fail(L->a, L->line, "unexpected character '%c' in a tag", *p);
            if (k == 1 && strchr("([{", *p)) {
                if (++depth > JINJA_MAX_DEPTH)
                    ja_fail(L->a, L->line, "brackets nested deeper than %d", JINJA_MAX_DEPTH);
            }
            if (k == 1 && strchr(")]}", *p)) {
                if (depth == 0)
                    ja_fail(L->a, L->line, "unexpected '%c'", *p);
                depth--;
            }
            push(L, JT_OP, L->line, p, k);
            L->pos += k;
        }
    }
}

/* After a tag: "-" eats all whitespace; trim_blocks eats one newline after a
 * block or comment tag unless "+". */
static void after_tag(lexer *L, char mod, int is_block)
{
    if (mod == '-') {
        size_t sp;
        while (L->pos < L->n && (sp = jinja_space_len(L->s + L->pos, L->n - L->pos))) {
            L->line += L->s[L->pos] == '\n';
            L->pos += sp;
        }
    } else if (mod != '+' && is_block && L->pos < L->n && L->s[L->pos] == '\n') {
        L->pos++;
        L->line++;
    }
}

/* The whitespace control of the tag opening at tag: '-', '+' (not on
 * {{ }}, where it is a unary plus) or 0. */
static char tag_modifier(const lexer *L, size_t tag)
{
    char c = tag + 2 < L->n ? L->s[tag + 2] : 0;
    return c == '-' || (c == '+' && L->s[tag + 1] != '{') ? c : 0;
}

jtok *jinja_lex(jarena *a, const char *src, size_t n, size_t *n_toks)
{
    if (n > JINJA_MAX_SOURCE)
        ja_fail(a, 0, "the template has %zu bytes (at most %d supported)", n, JINJA_MAX_SOURCE);
    /* newlines become \n; one trailing newline goes (keep_trailing_newline
     * is off) */
    char *s = ja_alloc(a, n + 1);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (src[i] == '\r') {
            s[m++] = '\n';
            if (i + 1 < n && src[i + 1] == '\n')
                i++;
        } else {
            s[m++] = src[i];
        }
    }
    if (m && s[m - 1] == '\n')
        m--;
    s[m] = 0;
    if (memchr(s, 0, m))
        ja_fail(a, 0, "the template holds a NUL byte");
    lexer L = {.a = a, .s = s, .n = m, .line = 1};
    /* line_starting: the last thing lexed ended a line (Jinja's lstrip_blocks
     * also strips the indentation of a tag at the start of the data) */
    int line_starting = 1;
    while (L.pos < L.n) {
        size_t tag = L.pos;
        while (tag + 1 < L.n && !(L.s[tag] == '{' && strchr("{%#", L.s[tag + 1])))
            tag++;
        if (tag + 1 >= L.n)
            tag = L.n;
        size_t d0 = L.pos, d1 = tag;
        int data_line = L.line;
        if (tag < L.n) {
            char kind = L.s[tag + 1];
            char mod = tag_modifier(&L, tag);
            if (mod == '-') {
                size_t sp;
                while (d1 > d0 && (sp = jinja_space_len_before(L.s + d0, d1 - d0)))
                    d1 -= sp;
            } else if (mod != '+' && kind != '{') {
                size_t l = d1;
                while (l > d0 && L.s[l - 1] != '\n')
                    l--;
                if (l > d0 || line_starting) {
                    size_t k = l, sp;
                    while (k < d1 && (sp = jinja_space_len(L.s + k, d1 - k)))
                        k += sp;
                    if (k == d1)
                        d1 = l;
                }
            }
        }
        if (d1 > d0)
            push(&L, JT_DATA, data_line, L.s + d0, d1 - d0);
        L.line += count_lines(L.s + d0, tag - d0);
        if (tag >= L.n) {
            L.pos = L.n;
            break;
        }
        char kind = L.s[tag + 1];
        char mod = tag_modifier(&L, tag);
        L.pos = tag + 2 + (mod != 0);
        if (kind == '#') {
            const char *c = NULL;
            for (size_t k = L.pos; k + 1 < L.n; k++)
                if (L.s[k] == '#' && L.s[k + 1] == '}') {
                    c = L.s + k;
                    break;
                }
            if (!c)
                ja_fail(a, L.line, "unterminated comment");
            size_t endpos = (size_t)(c - L.s);
            char emod = endpos > L.pos && (c[-1] == '-' || c[-1] == '+') ? c[-1] : 0;
            L.line += count_lines(L.s + L.pos, endpos - L.pos);
            L.pos = endpos + 2;
            after_tag(&L, emod, 1);
        } else {
            int is_var = kind == '{';
            push(&L, is_var ? JT_VAR_BEGIN : JT_BLOCK_BEGIN, L.line, L.s + tag, 2);
            char emod = lex_tag(&L, is_var);
            after_tag(&L, emod, !is_var);
        }
        line_starting = L.pos > 0 && L.s[L.pos - 1] == '\n';
    }
    push(&L, JT_EOF, L.line, L.s + L.n, 0);
    *n_toks = L.n_toks;
    return L.toks;
}
