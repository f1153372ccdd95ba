/* jinja_value.c: the arena, and the values a chat template computes with --
 * Python's None, bool, int, float, str, list and dict as Jinja sees them,
 * Jinja's Undefined, and namespace() -- with Python's str(), ==, ordering
 * and json.dumps. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

struct jarena_block {
    jarena_block *next;
    size_t size, used;
    max_align_t data[];
};

void *ja_alloc(jarena *a, size_t n)
{
    n = (n + sizeof(max_align_t) - 1) / sizeof(max_align_t) * sizeof(max_align_t);
    if (n == 0)
        n = sizeof(max_align_t);
    jarena_block *b = a->head;
    if (!b || b->size - b->used < n) {
        size_t size = n > (1u << 16) ? n : (1u << 16);
        if (a->used + size > JINJA_MAX_ARENA)
            ja_fail(a, 0, "the template needs more than %d MiB of memory (the limit)", JINJA_MAX_ARENA >> 20);
        b = malloc(sizeof *b + size);
        if (!b)
            ja_fail(a, 0, "out of memory");
        b->size = size;
        b->used = 0;
        b->next = a->head;
        a->head = b;
        a->used += size;
    }
    void *p = (char *)b->data + b->used;
    b->used += n;
    memset(p, 0, n);
    return p;
}

char *ja_strndup(jarena *a, const char *s, size_t n)
{
    char *d = ja_alloc(a, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

void ja_free_all(jarena *a)
{
    while (a->head) {
        jarena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
    a->used = 0;
}

void ja_fail(jarena *a, int line, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* err_set keeps it one line whatever the template quoted into it */
    if (line > 0)
        err_set(a->e, "chat template line %d: %s", line, msg);
    else
        err_set(a->e, "chat template: %s", msg);
    longjmp(*a->fail, 1);
}

void jb_put(jarena *a, int line, jbuf *b, const char *s, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        if (b->n + n > JINJA_MAX_OUTPUT)
            ja_fail(a, line, "the text grows beyond %d MiB (the limit)", JINJA_MAX_OUTPUT >> 20);
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n + 1)
            cap *= 2;
        char *s2 = ja_alloc(a, cap);
        if (b->n)
            memcpy(s2, b->s, b->n);
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void jb_puts(jarena *a, int line, jbuf *b, const char *s) { jb_put(a, line, b, s, strlen(s)); }

jv JV_UNDEFINED = {.kind = JV_UNDEF}, JV_NONE_V = {.kind = JV_NONE}, JV_TRUE_V = {.kind = JV_BOOL, .u.b = 1},
   JV_FALSE_V = {.kind = JV_BOOL, .u.b = 0};

jv *jv_int(jarena *a, int64_t i)
{
    jv *v = ja_alloc(a, sizeof *v);
    v->kind = JV_INT;
    v->u.i = i;
    return v;
}

jv *jv_float(jarena *a, double f)
{
    jv *v = ja_alloc(a, sizeof *v);
    v->kind = JV_FLOAT;
    v->u.f = f;
    return v;
}

jv *jv_bool(int b) { return b ? &JV_TRUE_V : &JV_FALSE_V; }

jv *jv_str_nocopy(jarena *a, const char *s, size_t n)
{
    jv *v = ja_alloc(a, sizeof *v);
    v->kind = JV_STR;
    v->u.str.s = s;
    v->u.str.n = n;
    return v;
}

jv *jv_str(jarena *a, const char *s, size_t n) { return jv_str_nocopy(a, ja_strndup(a, s, n), n); }

jv *jv_list(jarena *a)
{
    jv *v = ja_alloc(a, sizeof *v);
    v->kind = JV_LIST;
    return v;
}

jv *jv_dict(jarena *a, jv_kind kind)
{
    jv *v = ja_alloc(a, sizeof *v);
    v->kind = kind;
    return v;
}

static void grow(jarena *a, jv *v)
{
    if (v->u.seq.n < v->u.seq.cap)
        return;
    size_t cap = v->u.seq.cap ? 2 * v->u.seq.cap : 8;
    jv **items = ja_alloc(a, cap * sizeof *items);
    if (v->u.seq.n)
        memcpy(items, v->u.seq.items, v->u.seq.n * sizeof *items);
    v->u.seq.items = items;
    if (v->kind != JV_LIST) {
        jv **keys = ja_alloc(a, cap * sizeof *keys);
        if (v->u.seq.n)
            memcpy(keys, v->u.seq.keys, v->u.seq.n * sizeof *keys);
        v->u.seq.keys = keys;
    }
    v->u.seq.cap = cap;
}

void jv_push(jarena *a, jv *list, jv *item)
{
    grow(a, list);
    list->u.seq.items[list->u.seq.n++] = item;
}

jv *jv_dict_get(const jv *d, const jv *key)
{
    for (size_t i = 0; i < d->u.seq.n; i++)
        if (jv_equal(d->u.seq.keys[i], key))
            return d->u.seq.items[i];
    return NULL;
}

jv *jv_dict_get_s(const jv *d, const char *key)
{
    jv k = {.kind = JV_STR, .u.str = {key, strlen(key)}};
    return jv_dict_get(d, &k);
}

void jv_dict_set(jarena *a, jv *d, jv *key, jv *val)
{
    for (size_t i = 0; i < d->u.seq.n; i++)
        if (jv_equal(d->u.seq.keys[i], key)) {
            d->u.seq.items[i] = val;
            return;
        }
    grow(a, d);
    d->u.seq.keys[d->u.seq.n] = key;
    d->u.seq.items[d->u.seq.n++] = val;
}

jv *jv_from_json(jarena *a, json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_NULL:
        return &JV_NONE_V;
    case JSON_TRUE:
        return &JV_TRUE_V;
    case JSON_FALSE:
        return &JV_FALSE_V;
    case JSON_INTEGER:
        return jv_int(a, json_integer_value(j));
    case JSON_REAL:
        return jv_float(a, json_real_value(j));
    case JSON_STRING:
        return jv_str_nocopy(a, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        jv *l = jv_list(a);
        size_t i;
        json_t *x;
        json_array_foreach(j, i, x) jv_push(a, l, jv_from_json(a, x));
        return l;
    }
    case JSON_OBJECT: {
        jv *d = jv_dict(a, JV_DICT);
        const char *k;
        json_t *x;
        json_object_foreach(j, k, x) jv_dict_set(a, d, jv_str_nocopy(a, k, strlen(k)), jv_from_json(a, x));
        return d;
    }
    }
    return &JV_UNDEFINED;
}

int jv_truthy(const jv *v)
{
    switch (v->kind) {
    case JV_UNDEF:
    case JV_NONE:
        return 0;
    case JV_BOOL:
        return v->u.b;
    case JV_INT:
        return v->u.i != 0;
    case JV_FLOAT:
        return v->u.f != 0;
    case JV_STR:
        return v->u.str.n > 0;
    case JV_LIST:
    case JV_DICT:
        return v->u.seq.n > 0;
    case JV_NS:
        return 1;
    }
    return 0;
}

static int is_number(const jv *v) { return v->kind == JV_BOOL || v->kind == JV_INT || v->kind == JV_FLOAT; }
static double num(const jv *v) { return v->kind == JV_FLOAT ? v->u.f : v->kind == JV_INT ? (double)v->u.i : v->u.b; }
static int64_t inum(const jv *v) { return v->kind == JV_INT ? v->u.i : v->u.b; }

int jv_equal(const jv *x, const jv *y)
{
    if (is_number(x) && is_number(y)) {
        if (x->kind == JV_FLOAT || y->kind == JV_FLOAT)
            return num(x) == num(y);
        return inum(x) == inum(y);
    }
    if (x->kind != y->kind || x->tuple != y->tuple)
        return 0;
    switch (x->kind) {
    case JV_UNDEF:
    case JV_NONE:
        return 1;
    case JV_STR:
        return x->u.str.n == y->u.str.n && !memcmp(x->u.str.s, y->u.str.s, x->u.str.n);
    case JV_LIST:
        if (x->u.seq.n != y->u.seq.n)
            return 0;
        for (size_t i = 0; i < x->u.seq.n; i++)
            if (!jv_equal(x->u.seq.items[i], y->u.seq.items[i]))
                return 0;
        return 1;
    case JV_DICT:
        if (x->u.seq.n != y->u.seq.n)
            return 0;
        for (size_t i = 0; i < x->u.seq.n; i++) {
            jv *o = jv_dict_get(y, x->u.seq.keys[i]);
            if (!o || !jv_equal(x->u.seq.items[i], o))
                return 0;
        }
        return 1;
    default:
        return x == y;
    }
}

const char *jv_type_name(const jv *v)
{
    static const char *const names[] = {"undefined", "None", "bool", "int", "float", "str", "list", "dict",
                                        "namespace"};
    return names[v->kind];
}

int jv_compare(jarena *a, int line, const jv *x, const jv *y)
{
    if (is_number(x) && is_number(y)) {
        if (x->kind == JV_FLOAT || y->kind == JV_FLOAT) {
            double p = num(x), q = num(y);
            return p < q ? -1 : p > q;
        }
        int64_t p = inum(x), q = inum(y);
        return p < q ? -1 : p > q;
    }
    if (x->kind == JV_STR && y->kind == JV_STR) { /* UTF-8 byte order is code point order */
        size_t n = x->u.str.n < y->u.str.n ? x->u.str.n : y->u.str.n;
        int c = memcmp(x->u.str.s, y->u.str.s, n);
        if (c)
            return c < 0 ? -1 : 1;
        return x->u.str.n < y->u.str.n ? -1 : x->u.str.n > y->u.str.n;
    }
    if (x->kind == JV_LIST && y->kind == JV_LIST) {
        for (size_t i = 0; i < x->u.seq.n && i < y->u.seq.n; i++)
            if (!jv_equal(x->u.seq.items[i], y->u.seq.items[i]))
                return jv_compare(a, line, x->u.seq.items[i], y->u.seq.items[i]);
        return x->u.seq.n < y->u.seq.n ? -1 : x->u.seq.n > y->u.seq.n;
    }
    ja_fail(a, line, "cannot order %s and %s", jv_type_name(x), jv_type_name(y));
}

/* Python's repr(float): the shortest digits that read back the same. */
static void float_repr(double f, char *out, size_t cap)
{
    if (isnan(f)) {
        snprintf(out, cap, "nan");
        return;
    }
    if (isinf(f)) {
        snprintf(out, cap, f < 0 ? "-inf" : "inf");
        return;
    }
    char e[40];
    int p = 1;
    for (; p < 17; p++) {
        snprintf(e, sizeof e, "%.*e", p - 1, f);
        if (strtod(e, NULL) == f)
            break;
    }
    snprintf(e, sizeof e, "%.*e", p - 1, f);
    /* e: [-]d[.ddd]e[+-]XX */
    char digits[24];
    size_t nd = 0;
    const char *s = e;
    int neg = *s == '-';
    if (neg)
        s++;
    for (; *s && *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    digits[nd] = 0;
    int exp = atoi(s + 1);
    while (nd > 1 && digits[nd - 1] == '0')
        digits[--nd] = 0;
    char *o = out;
    if (neg)
        *o++ = '-';
    if (exp >= -4 && exp < 16) {
        if (exp < 0) {
            o += sprintf(o, "0.");
            for (int k = -1; k > exp; k--)
                *o++ = '0';
            o += sprintf(o, "%s", digits);
        } else {
            for (int k = 0; k <= exp; k++)
                *o++ = (size_t)k < nd ? digits[k] : '0';
            *o++ = '.';
            if ((size_t)exp + 1 < nd)
                o += sprintf(o, "%s", digits + exp + 1);
            else
                *o++ = '0';
            *o = 0;
        }
    } else {
        *o++ = digits[0];
        if (nd > 1) {
            *o++ = '.';
            o += sprintf(o, "%s", digits + 1);
        }
        sprintf(o, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    }
    (void)cap;
}

/* repr() of a str: refused beyond ASCII, where Python's choice of what to
 * escape follows Unicode tables not kept here. */
static void str_repr(jarena *a, int line, jbuf *b, const char *s, size_t n)
{
    int has_single = memchr(s, '\'', n) != NULL, has_double = memchr(s, '"', n) != NULL;
    char q = has_single && !has_double ? '"' : '\'';
    jb_put(a, line, b, &q, 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c >= 0x80)
            ja_fail(a, line, "Python's repr() of non-ASCII text (a list or dict printed as text) is not supported");
        if (c == '\\' || c == (unsigned char)q) {
            esc[0] = '\\';
            esc[1] = (char)c;
            jb_put(a, line, b, esc, 2);
        } else if (c == '\n' || c == '\r' || c == '\t') {
            esc[0] = '\\';
            esc[1] = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
            jb_put(a, line, b, esc, 2);
        } else if (c < 0x20 || c == 0x7f) {
            snprintf(esc, sizeof esc, "\\x%02x", c);
            jb_put(a, line, b, esc, 4);
        } else {
            jb_put(a, line, b, (const char *)&c, 1);
        }
    }
    jb_put(a, line, b, &q, 1);
}

static void to_text(jarena *a, int line, jbuf *b, const jv *v, int repr, int depth)
{
    char num_text[64];
    if (depth > JINJA_MAX_DEPTH)
        ja_fail(a, line, "a value nested deeper than %d", JINJA_MAX_DEPTH);
    switch (v->kind) {
    case JV_UNDEF:
        if (repr)
            ja_fail(a, line, "printing an undefined value inside a list or dict is not supported");
        return;
    case JV_NONE:
        jb_puts(a, line, b, "None");
        return;
    case JV_BOOL:
        jb_puts(a, line, b, v->u.b ? "True" : "False");
        return;
    case JV_INT:
        snprintf(num_text, sizeof num_text, "%lld", (long long)v->u.i);
        jb_puts(a, line, b, num_text);
        return;
    case JV_FLOAT:
        float_repr(v->u.f, num_text, sizeof num_text);
        jb_puts(a, line, b, num_text);
        return;
    case JV_STR:
        if (repr)
            str_repr(a, line, b, v->u.str.s, v->u.str.n);
        else
            jb_put(a, line, b, v->u.str.s, v->u.str.n);
        return;
    case JV_LIST:
        jb_puts(a, line, b, v->tuple ? "(" : "[");
        for (size_t i = 0; i < v->u.seq.n; i++) {
            if (i)
                jb_puts(a, line, b, ", ");
            to_text(a, line, b, v->u.seq.items[i], 1, depth + 1);
        }
        jb_puts(a, line, b, !v->tuple ? "]" : v->u.seq.n == 1 ? ",)" : ")");
        return;
    case JV_DICT:
        jb_puts(a, line, b, "{");
        for (size_t i = 0; i < v->u.seq.n; i++) {
            if (i)
                jb_puts(a, line, b, ", ");
            to_text(a, line, b, v->u.seq.keys[i], 1, depth + 1);
            jb_puts(a, line, b, ": ");
            to_text(a, line, b, v->u.seq.items[i], 1, depth + 1);
        }
        jb_puts(a, line, b, "}");
        return;
    case JV_NS:
        ja_fail(a, line, "printing a namespace is not supported");
    }
}

void jv_to_text(jarena *a, int line, jbuf *b, const jv *v) { to_text(a, line, b, v, 0, 0); }

jv *jv_text(jarena *a, int line, const jv *v)
{
    if (v->kind == JV_STR)
        return (jv *)v;
    jbuf b = {0};
    jv_to_text(a, line, &b, v);
    return jv_str_nocopy(a, b.s ? b.s : "", b.n);
}

static void json_quote(jarena *a, int line, jbuf *b, const char *s, size_t n)
{
    jb_put(a, line, b, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jb_put(a, line, b, s + run, i - run);
        run = i + 1;
        char esc[8];
        const char *short_esc = c == '"' ? "\\\"" : c == '\\' ? "\\\\" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                              : c == '\t' ? "\\t" : c == '\b' ? "\\b" : c == '\f' ? "\\f" : NULL;
        if (short_esc) {
            jb_puts(a, line, b, short_esc);
        } else {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jb_puts(a, line, b, esc);
        }
    }
    jb_put(a, line, b, s + run, n - run);
    jb_put(a, line, b, "\"", 1);
}

static void json_newline(jarena *a, int line, jbuf *b, int indent, int depth)
{
    jb_puts(a, line, b, "\n");
    for (int k = 0; k < indent * depth; k++)
        jb_puts(a, line, b, " ");
}

void jv_to_json(jarena *a, int line, jbuf *b, const jv *v, int indent, int sort_keys, int depth)
{
    if (depth > JINJA_MAX_DEPTH)
        ja_fail(a, line, "tojson: a value nested deeper than %d", JINJA_MAX_DEPTH);
    const char *item_sep = indent >= 0 ? "," : ", ";
    switch (v->kind) {
    case JV_UNDEF:
        ja_fail(a, line, "tojson of an undefined value");
    case JV_NONE:
        jb_puts(a, line, b, "null");
        return;
    case JV_BOOL:
        jb_puts(a, line, b, v->u.b ? "true" : "false");
        return;
    case JV_INT:
        jv_to_text(a, line, b, v);
        return;
    case JV_FLOAT:
        if (isnan(v->u.f) || isinf(v->u.f))
            jb_puts(a, line, b, isnan(v->u.f) ? "NaN" : v->u.f < 0 ? "-Infinity" : "Infinity");
        else
            jv_to_text(a, line, b, v);
        return;
    case JV_STR:
        json_quote(a, line, b, v->u.str.s, v->u.str.n);
        return;
    case JV_LIST:
        if (!v->u.seq.n) {
            jb_puts(a, line, b, "[]");
            return;
        }
        jb_puts(a, line, b, "[");
        for (size_t i = 0; i < v->u.seq.n; i++) {
            if (i)
                jb_puts(a, line, b, item_sep);
            if (indent >= 0)
                json_newline(a, line, b, indent, depth + 1);
            jv_to_json(a, line, b, v->u.seq.items[i], indent, sort_keys, depth + 1);
        }
        if (indent >= 0)
            json_newline(a, line, b, indent, depth);
        jb_puts(a, line, b, "]");
        return;
    case JV_DICT: {
        if (!v->u.seq.n) {
            jb_puts(a, line, b, "{}");
            return;
        }
        size_t n = v->u.seq.n, *order = ja_alloc(a, n * sizeof *order);
        for (size_t i = 0; i < n; i++) {
            if (v->u.seq.keys[i]->kind != JV_STR)
                ja_fail(a, line, "tojson of a dict with a %s key is not supported", jv_type_name(v->u.seq.keys[i]));
            order[i] = i;
        }
        if (sort_keys) /* insertion sort: dicts of templates are small */
            for (size_t i = 1; i < n; i++)
                for (size_t k = i; k > 0 && jv_compare(a, line, v->u.seq.keys[order[k - 1]], v->u.seq.keys[order[k]]) > 0; k--) {
                    size_t t = order[k];
                    order[k] = order[k - 1];
                    order[k - 1] = t;
                }
        jb_puts(a, line, b, "{");
        for (size_t i = 0; i < n; i++) {
            if (i)
                jb_puts(a, line, b, item_sep);
            if (indent >= 0)
                json_newline(a, line, b, indent, depth + 1);
            jv_to_json(a, line, b, v->u.seq.keys[order[i]], indent, sort_keys, depth + 1);
            jb_puts(a, line, b, ": ");
            jv_to_json(a, line, b, v->u.seq.items[order[i]], indent, sort_keys, depth + 1);
        }
        if (indent >= 0)
            json_newline(a, line, b, indent, depth);
        jb_puts(a, line, b, "}");
        return;
    }
    case JV_NS:
        ja_fail(a, line, "tojson of a namespace");
    }
}
