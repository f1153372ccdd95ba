/* jinja_builtins.c: the filters, tests, str/dict methods and globals chat
 * templates call, with the semantics of Jinja2 and Python; transformers'
 * globals (raise_exception, strftime_now, namespace) and tojson.  Case
 * mapping is ASCII only: text beyond ASCII is refused there rather than
 * changed differently from Python. */
#define _GNU_SOURCE /* strptime */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja_internal.h"

static const char *const FILTERS[] = {"trim", "tojson", "length", "count", "join", "default", "d", "upper",
                                      "lower", "capitalize", "title", "first", "last", "items", "list", "string",
                                      "selectattr", "rejectattr", "map", "safe", "int", "float", "abs", "reverse",
                                      "replace", NULL};
static const char *const TESTS[] = {"defined", "undefined", "none", "string", "mapping", "iterable", "sequence",
                                    "number", "integer", "float", "boolean", "true", "false", "even", "odd",
                                    "divisibleby", "eq", "equalto", "ne", "in", "lower", "upper", NULL};
static const char *const GLOBALS[] = {"range", "namespace", "raise_exception", "strftime_now", "dict", NULL};
static const char *const STR_METHODS[] = {"strip", "lstrip", "rstrip", "split", "replace", "startswith",
                                          "endswith", "upper", "lower", "title", "capitalize", "join", "find",
                                          "format", "count", "rsplit", "splitlines", "isdigit", "isspace", NULL};
static const char *const DICT_METHODS[] = {"get", "items", "keys", "values", "copy", "update", "pop",
                                           "setdefault", "clear", "popitem", NULL};

static int in_list(const char *const *l, const char *name)
{
    for (; *l; l++)
        if (!strcmp(*l, name))
            return 1;
    return 0;
}

int jinja_filter_known(const char *name) { return in_list(FILTERS, name); }
int jinja_test_known(const char *name) { return in_list(TESTS, name); }
int jinja_global_known(const char *name) { return in_list(GLOBALS, name); }

int jinja_is_method(const jv *value, const char *name)
{
    return (value->kind == JV_STR && in_list(STR_METHODS, name)) ||
           (value->kind == JV_DICT && in_list(DICT_METHODS, name));
}

/* ---- arguments ---- */

/* argument i (positional) or kw (keyword), NULL when not given */
static jv *arg(const jcall *c, size_t i, const char *kw)
{
    if (i < c->n_args)
        return c->args[i];
    for (size_t k = 0; kw && k < c->n_kwargs; k++)
        if (!strcmp(c->kwnames[k], kw))
            return c->kwargs[k];
    return NULL;
}

static void check_args(const jcall *c, const char *what, size_t max_pos, const char *const *kws)
{
    if (c->n_args > max_pos)
        ja_fail(c->a, c->line, "%s: more than %zu arguments", what, max_pos);
    for (size_t k = 0; k < c->n_kwargs; k++) {
        int ok = 0;
        for (size_t i = 0; kws && kws[i]; i++)
            ok |= !strcmp(kws[i], c->kwnames[k]);
        if (!ok)
            ja_fail(c->a, c->line, "%s: the argument %s= is not supported", what, c->kwnames[k]);
    }
}

static const jv *need_str(const jcall *c, const char *what, const jv *v)
{
    if (!v || v->kind != JV_STR)
        ja_fail(c->a, c->line, "%s needs a string, not %s", what, v ? jv_type_name(v) : "nothing");
    return v;
}

static int64_t need_int(const jcall *c, const char *what, const jv *v)
{
    if (!v || (v->kind != JV_INT && v->kind != JV_BOOL))
        ja_fail(c->a, c->line, "%s needs an integer, not %s", what, v ? jv_type_name(v) : "nothing");
    return v->kind == JV_INT ? v->u.i : v->u.b;
}

/* ---- strings ---- */

static void ascii_only(const jcall *c, const char *what, const jv *s)
{
    for (size_t i = 0; i < s->u.str.n; i++)
        if ((unsigned char)s->u.str.s[i] >= 0x80)
            ja_fail(c->a, c->line, "%s of text beyond ASCII is not supported", what);
}

static int is_lower(char ch) { return ch >= 'a' && ch <= 'z'; }
static int is_upper(char ch) { return ch >= 'A' && ch <= 'Z'; }
static char to_upper(char ch) { return is_lower(ch) ? (char)(ch - 32) : ch; }
static char to_lower(char ch) { return is_upper(ch) ? (char)(ch + 32) : ch; }

/* mode: 'u' upper, 'l' lower, 'c' capitalize, 't' str.title(), 'j' Jinja's
 * title filter (words start after '-', whitespace, '(', '{', '[', '<') */
static jv *change_case(const jcall *c, const jv *s, char mode)
{
    static const char *const names[] = {"upper", "lower", "capitalize", "title"};
    ascii_only(c, names[mode == 'u' ? 0 : mode == 'l' ? 1 : mode == 'c' ? 2 : 3], s);
    size_t n = s->u.str.n;
    char *d = ja_alloc(c->a, n + 1);
    int word_start = 1;
    for (size_t i = 0; i < n; i++) {
        char ch = s->u.str.s[i];
        switch (mode) {
        case 'u':
            d[i] = to_upper(ch);
            break;
        case 'l':
            d[i] = to_lower(ch);
            break;
        case 'c':
            d[i] = i == 0 ? to_upper(ch) : to_lower(ch);
            break;
        case 't': /* a letter after a non-letter starts a word */
            d[i] = word_start ? to_upper(ch) : to_lower(ch);
            word_start = !(is_lower(ch) || is_upper(ch));
            break;
        default:
            d[i] = word_start ? to_upper(ch) : to_lower(ch);
            word_start = strchr("-({[< \t\n\v\f\r\x1c\x1d\x1e\x1f", ch) != NULL && ch;
        }
    }
    return jv_str_nocopy(c->a, d, n);
}

static int in_chars(const jv *chars, const char *s, size_t len)
{
    for (size_t i = 0; i < chars->u.str.n;) {
        size_t l = 1;
        while (i + l < chars->u.str.n && ((unsigned char)chars->u.str.s[i + l] & 0xc0) == 0x80)
            l++;
        if (l == len && !memcmp(chars->u.str.s + i, s, len))
            return 1;
        i += l;
    }
    return 0;
}

static size_t char_len_at(const char *s, size_t n)
{
    size_t l = 1;
    while (l < n && ((unsigned char)s[l] & 0xc0) == 0x80)
        l++;
    return l;
}

static size_t char_len_before(const char *s, size_t n)
{
    size_t l = 1;
    while (l < n && ((unsigned char)s[n - l] & 0xc0) == 0x80)
        l++;
    return l;
}

/* str.strip/lstrip/rstrip(chars): whitespace when chars is None */
static jv *strip(const jcall *c, const jv *s, const jv *chars, int left, int right)
{
    if (chars && chars->kind == JV_NONE)
        chars = NULL;
    if (chars)
        need_str(c, "strip(chars)", chars);
    const char *p = s->u.str.s;
    size_t b = 0, e = s->u.str.n;
    while (left && b < e) {
        size_t l = chars ? char_len_at(p + b, e - b) : jinja_space_len(p + b, e - b);
        if (!l || (chars && !in_chars(chars, p + b, l)))
            break;
        b += l;
    }
    while (right && e > b) {
        size_t l = chars ? char_len_before(p + b, e - b) : jinja_space_len_before(p + b, e - b);
        if (!l || (chars && !in_chars(chars, p + e - l, l)))
            break;
        e -= l;
    }
    return jv_str_nocopy(c->a, p + b, e - b);
}

static const char *find_sub(const char *s, size_t n, const char *sub, size_t m)
{
    if (m == 0)
        return s;
    for (size_t i = 0; i + m <= n; i++)
        if (!memcmp(s + i, sub, m))
            return s + i;
    return NULL;
}

/* str.split(sep=None, maxsplit=-1) */
static jv *split(const jcall *c, const jv *s, const jv *sep, const jv *maxsplit)
{
    int64_t max = maxsplit ? need_int(c, "split(maxsplit)", maxsplit) : -1;
    jv *out = jv_list(c->a);
    const char *p = s->u.str.s;
    size_t n = s->u.str.n, i = 0;
    if (sep && sep->kind != JV_NONE) {
        need_str(c, "split(sep)", sep);
        if (!sep->u.str.n)
            ja_fail(c->a, c->line, "split(): empty separator");
        for (;;) {
            const char *f = max != 0 ? find_sub(p + i, n - i, sep->u.str.s, sep->u.str.n) : NULL;
            if (!f)
                break;
            jv_push(c->a, out, jv_str_nocopy(c->a, p + i, (size_t)(f - p) - i));
            i = (size_t)(f - p) + sep->u.str.n;
            max--;
        }
        jv_push(c->a, out, jv_str_nocopy(c->a, p + i, n - i));
        return out;
    }
    for (;;) { /* runs of whitespace separate; none at the ends */
        size_t l;
        while (i < n && (l = jinja_space_len(p + i, n - i)))
            i += l;
        if (i >= n)
            break;
        if (max == 0) { /* the rest, trailing whitespace and all */
            jv_push(c->a, out, jv_str_nocopy(c->a, p + i, n - i));
            break;
        }
        size_t j = i;
        while (j < n && !jinja_space_len(p + j, n - j))
            j += char_len_at(p + j, n - j);
        jv_push(c->a, out, jv_str_nocopy(c->a, p + i, j - i));
        i = j;
        max--;
    }
    return out;
}

static jv *replace(const jcall *c, const jv *s, const jv *old, const jv *new, const jv *count)
{
    need_str(c, "replace(old)", old);
    need_str(c, "replace(new)", new);
    int64_t max = count ? need_int(c, "replace(count)", count) : -1;
    if (!old->u.str.n)
        ja_fail(c->a, c->line, "replace() with an empty old string is not supported");
    jbuf b = {0};
    const char *p = s->u.str.s;
    size_t n = s->u.str.n, i = 0;
    for (;;) {
        const char *f = max != 0 ? find_sub(p + i, n - i, old->u.str.s, old->u.str.n) : NULL;
        if (!f)
            break;
        jb_put(c->a, c->line, &b, p + i, (size_t)(f - p) - i);
        jb_put(c->a, c->line, &b, new->u.str.s, new->u.str.n);
        i = (size_t)(f - p) + old->u.str.n;
        max--;
    }
    jb_put(c->a, c->line, &b, p + i, n - i);
    return jv_str_nocopy(c->a, b.s, b.n);
}

/* str.startswith/endswith(prefix or tuple of prefixes) */
static int affix(const jcall *c, const jv *s, const jv *x, int end)
{
    if (x && x->kind == JV_LIST) {
        for (size_t i = 0; i < x->u.seq.n; i++)
            if (affix(c, s, x->u.seq.items[i], end))
                return 1;
        return 0;
    }
    need_str(c, end ? "endswith()" : "startswith()", x);
    size_t m = x->u.str.n;
    return m <= s->u.str.n && !memcmp(s->u.str.s + (end ? s->u.str.n - m : 0), x->u.str.s, m);
}

static jv *join(const jcall *c, jv *seq, const jv *sep, const char *attribute);

/* ---- attribute paths (selectattr, map, join) ---- */
static jv *attr_path(const jcall *c, jv *item, const char *path)
{
    const char *p = path;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t n = dot ? (size_t)(dot - p) : strlen(p);
        jv key = {.kind = JV_STR, .u.str = {p, n}};
        if (item->kind == JV_DICT || item->kind == JV_NS) {
            jv *v = jv_dict_get(item, &key);
            item = v ? v : &JV_UNDEFINED;
        } else if (item->kind == JV_LIST && n && strspn(p, "0123456789") >= n) {
            size_t k = (size_t)strtoul(p, NULL, 10);
            item = k < item->u.seq.n ? item->u.seq.items[k] : &JV_UNDEFINED;
        } else if (item->kind == JV_UNDEF) {
            ja_fail(c->a, c->line, "attribute '%.*s' of an undefined value", (int)n, p);
        } else {
            item = &JV_UNDEFINED;
        }
        p += n + (dot != NULL);
    }
    return item;
}

static jv *iterable_items(const jcall *c, const char *what, jv *v)
{
    if (v->kind == JV_LIST)
        return v;
    if (v->kind == JV_UNDEF)
        return jv_list(c->a);
    if (v->kind == JV_DICT) {
        jv *l = jv_list(c->a);
        for (size_t i = 0; i < v->u.seq.n; i++)
            jv_push(c->a, l, v->u.seq.keys[i]);
        return l;
    }
    if (v->kind == JV_STR) {
        jv *l = jv_list(c->a);
        for (size_t i = 0; i < v->u.str.n;) {
            size_t len = char_len_at(v->u.str.s + i, v->u.str.n - i);
            jv_push(c->a, l, jv_str_nocopy(c->a, v->u.str.s + i, len));
            i += len;
        }
        return l;
    }
    ja_fail(c->a, c->line, "%s: a %s is not iterable", what, jv_type_name(v));
}

static jv *select_attr(const jcall *c, jv *value, int reject)
{
    const char *what = reject ? "rejectattr" : "selectattr";
    jv *items = iterable_items(c, what, value), *out = jv_list(c->a);
    const jv *attr = need_str(c, what, arg(c, 0, NULL));
    const char *path = ja_strndup(c->a, attr->u.str.s, attr->u.str.n);
    const char *test = NULL;
    if (c->n_args > 1)
        test = ja_strndup(c->a, need_str(c, what, c->args[1])->u.str.s, c->args[1]->u.str.n);
    if (test && !jinja_test_known(test))
        ja_fail(c->a, c->line, "%s: the test '%s' is not supported", what, test);
    jcall tc = {.a = c->a, .line = c->line, .args = c->args + 2, .n_args = c->n_args > 2 ? c->n_args - 2 : 0};
    for (size_t i = 0; i < items->u.seq.n; i++) {
        jv *v = attr_path(c, items->u.seq.items[i], path);
        int ok = test ? jinja_test(test, v, &tc) : jv_truthy(v);
        if (ok != reject)
            jv_push(c->a, out, items->u.seq.items[i]);
    }
    return out;
}

static jv *map_filter(const jcall *c, jv *value)
{
    jv *items = iterable_items(c, "map", value), *out = jv_list(c->a);
    const jv *attribute = arg(c, 99, "attribute"), *dflt = arg(c, 99, "default");
    if (attribute) {
        static const char *const kws[] = {"attribute", "default", NULL};
        check_args(c, "map", 0, kws);
        need_str(c, "map(attribute=)", attribute);
        const char *path = ja_strndup(c->a, attribute->u.str.s, attribute->u.str.n);
        for (size_t i = 0; i < items->u.seq.n; i++) {
            jv *v = attr_path(c, items->u.seq.items[i], path);
            jv_push(c->a, out, v->kind == JV_UNDEF && dflt ? (jv *)dflt : v);
        }
        return out;
    }
    const jv *name = need_str(c, "map(filter)", arg(c, 0, NULL));
    const char *fname = ja_strndup(c->a, name->u.str.s, name->u.str.n);
    if (!jinja_filter_known(fname))
        ja_fail(c->a, c->line, "map: the filter '%s' is not supported", fname);
    jcall fc = *c;
    fc.args++;
    fc.n_args--;
    for (size_t i = 0; i < items->u.seq.n; i++)
        jv_push(c->a, out, jinja_filter(fname, items->u.seq.items[i], &fc));
    return out;
}

static jv *join(const jcall *c, jv *seq, const jv *sep, const char *attribute)
{
    jv *items = iterable_items(c, "join", seq);
    if (sep && sep->kind != JV_STR)
        sep = jv_text(c->a, c->line, sep);
    jbuf b = {0};
    for (size_t i = 0; i < items->u.seq.n; i++) {
        if (i && sep)
            jb_put(c->a, c->line, &b, sep->u.str.s, sep->u.str.n);
        jv *v = attribute ? attr_path(c, items->u.seq.items[i], attribute) : items->u.seq.items[i];
        jv_to_text(c->a, c->line, &b, v);
    }
    return jv_str_nocopy(c->a, b.s ? b.s : "", b.n);
}

static jv *tojson(const jcall *c, jv *value)
{
    static const char *const kws[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
    check_args(c, "tojson", 4, kws);
    const jv *ascii = arg(c, 0, "ensure_ascii"), *indent = arg(c, 1, "indent"), *seps = arg(c, 2, "separators"),
             *sort = arg(c, 3, "sort_keys");
    if (ascii && jv_truthy(ascii))
        ja_fail(c->a, c->line, "tojson(ensure_ascii=True) is not supported");
    if (seps && seps->kind != JV_NONE)
        ja_fail(c->a, c->line, "tojson(separators=...) is not supported");
    int ind = -1;
    if (indent && indent->kind != JV_NONE) {
        int64_t k = need_int(c, "tojson(indent)", indent);
        if (k < 0 || k > 64)
            ja_fail(c->a, c->line, "tojson(indent=%lld) is not supported", (long long)k);
        ind = (int)k;
    }
    jbuf b = {0};
    jv_to_json(c->a, c->line, &b, value, ind, sort && jv_truthy(sort), 0);
    return jv_str_nocopy(c->a, b.s, b.n);
}

static jv *length(const jcall *c, const jv *v)
{
    switch (v->kind) {
    case JV_STR:
        return jv_int(c->a, (int64_t)jinja_utf8_len(v->u.str.s, v->u.str.n));
    case JV_LIST:
    case JV_DICT:
        return jv_int(c->a, (int64_t)v->u.seq.n);
    case JV_UNDEF:
        return jv_int(c->a, 0);
    default:
        ja_fail(c->a, c->line, "length of a %s", jv_type_name(v));
    }
}

static jv *first_last(const jcall *c, jv *v, int last)
{
    jv *items = iterable_items(c, last ? "last" : "first", v);
    if (!items->u.seq.n)
        return &JV_UNDEFINED;
    return items->u.seq.items[last ? items->u.seq.n - 1 : 0];
}

static jv *dict_items(const jcall *c, jv *v)
{
    jv *out = jv_list(c->a);
    if (v->kind == JV_UNDEF)
        return out;
    if (v->kind != JV_DICT)
        ja_fail(c->a, c->line, "items of a %s", jv_type_name(v));
    for (size_t i = 0; i < v->u.seq.n; i++) {
        jv *pair = jv_list(c->a);
        pair->tuple = 1;
        jv_push(c->a, pair, v->u.seq.keys[i]);
        jv_push(c->a, pair, v->u.seq.items[i]);
        jv_push(c->a, out, pair);
    }
    return out;
}

jv *jinja_filter(const char *name, jv *v, const jcall *c)
{
    if (!strcmp(name, "tojson"))
        return tojson(c, v);
    if (!strcmp(name, "default") || !strcmp(name, "d")) {
        static const char *const kws[] = {"default_value", "boolean", NULL};
        check_args(c, name, 2, kws);
        jv *dflt = arg(c, 0, "default_value"), *boolean = arg(c, 1, "boolean");
        int use = v->kind == JV_UNDEF || (boolean && jv_truthy(boolean) && !jv_truthy(v));
        return use ? (dflt ? dflt : jv_str_nocopy(c->a, "", 0)) : v;
    }
    if (!strcmp(name, "length") || !strcmp(name, "count"))
        return length(c, v);
    if (!strcmp(name, "join")) {
        static const char *const kws[] = {"d", "attribute", NULL};
        check_args(c, "join", 2, kws);
        const jv *sep = arg(c, 0, "d"), *attribute = arg(c, 1, "attribute");
        const char *path = NULL;
        if (attribute)
            path = ja_strndup(c->a, need_str(c, "join(attribute)", attribute)->u.str.s, attribute->u.str.n);
        return join(c, v, sep, path);
    }
    if (!strcmp(name, "selectattr") || !strcmp(name, "rejectattr"))
        return select_attr(c, v, name[0] == 'r');
    if (!strcmp(name, "map"))
        return map_filter(c, v);
    if (!strcmp(name, "first") || !strcmp(name, "last"))
        return first_last(c, v, name[0] == 'l');
    if (!strcmp(name, "items"))
        return dict_items(c, v);
    if (!strcmp(name, "list"))
        return iterable_items(c, "list", v);
    if (!strcmp(name, "safe"))
        return v;
    if (!strcmp(name, "reverse")) {
        jv *items = iterable_items(c, "reverse", v), *out = jv_list(c->a);
        for (size_t i = items->u.seq.n; i > 0; i--)
            jv_push(c->a, out, items->u.seq.items[i - 1]);
        if (v->kind != JV_STR)
            return out;
        jcall jc = {.a = c->a, .line = c->line};
        return join(&jc, out, NULL, NULL);
    }
    if (!strcmp(name, "abs")) {
        if (v->kind == JV_INT)
            return jv_int(c->a, v->u.i < 0 ? -v->u.i : v->u.i);
        if (v->kind == JV_FLOAT)
            return jv_float(c->a, v->u.f < 0 ? -v->u.f : v->u.f);
        ja_fail(c->a, c->line, "abs of a %s", jv_type_name(v));
    }
    if (!strcmp(name, "int") || !strcmp(name, "float")) {
        if (c->n_args || c->n_kwargs)
            ja_fail(c->a, c->line, "the %s filter with arguments is not supported", name);
        if (v->kind == JV_INT || v->kind == JV_BOOL)
            return name[0] == 'i' ? jv_int(c->a, v->kind == JV_INT ? v->u.i : v->u.b)
                                  : jv_float(c->a, v->kind == JV_INT ? (double)v->u.i : v->u.b);
        if (v->kind == JV_FLOAT)
            return name[0] == 'i' ? jv_int(c->a, (int64_t)v->u.f) : v;
        ja_fail(c->a, c->line, "the %s filter of a %s is not supported", name, jv_type_name(v));
    }
    jv *s = jv_text(c->a, c->line, v); /* the rest work on str(value) */
    if (!strcmp(name, "string"))
        return s;
    if (!strcmp(name, "trim")) {
        check_args(c, "trim", 1, NULL);
        return strip(c, s, arg(c, 0, NULL), 1, 1);
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "capitalize"))
        return change_case(c, s, name[0] == 'u' ? 'u' : name[0] == 'l' ? 'l' : 'c');
    if (!strcmp(name, "title"))
        return change_case(c, s, 'j');
    if (!strcmp(name, "replace"))
        return replace(c, s, arg(c, 0, "old"), arg(c, 1, "new"), arg(c, 2, "count"));
    ja_fail(c->a, c->line, "the filter '%s' is not supported", name);
}

int jinja_test(const char *name, jv *v, const jcall *c)
{
    jv_kind k = v->kind;
    const jv *x = arg(c, 0, NULL);
    if (!strcmp(name, "defined"))
        return k != JV_UNDEF;
    if (!strcmp(name, "undefined"))
        return k == JV_UNDEF;
    if (!strcmp(name, "none"))
        return k == JV_NONE;
    if (!strcmp(name, "string"))
        return k == JV_STR;
    if (!strcmp(name, "mapping"))
        return k == JV_DICT;
    if (!strcmp(name, "iterable")) /* Jinja's Undefined iterates as empty */
        return k == JV_STR || k == JV_LIST || k == JV_DICT || k == JV_UNDEF;
    if (!strcmp(name, "sequence"))
        return k == JV_STR || k == JV_LIST || k == JV_DICT;
    if (!strcmp(name, "number"))
        return k == JV_INT || k == JV_FLOAT || k == JV_BOOL;
    if (!strcmp(name, "integer"))
        return k == JV_INT;
    if (!strcmp(name, "float"))
        return k == JV_FLOAT;
    if (!strcmp(name, "boolean"))
        return k == JV_BOOL;
    if (!strcmp(name, "true") || !strcmp(name, "false"))
        return k == JV_BOOL && v->u.b == (name[0] == 't');
    if (!strcmp(name, "even") || !strcmp(name, "odd")) {
        int64_t i = need_int(c, name, v);
        return (i % 2 == 0) == (name[0] == 'e');
    }
    if (!strcmp(name, "divisibleby")) {
        int64_t d = need_int(c, "divisibleby", x);
        if (d == 0)
            ja_fail(c->a, c->line, "divisibleby 0");
        return need_int(c, "divisibleby", v) % d == 0;
    }
    if (!x)
        ja_fail(c->a, c->line, "the test '%s' needs an argument", name);
    if (!strcmp(name, "eq") || !strcmp(name, "equalto"))
        return jv_equal(v, x);
    if (!strcmp(name, "ne"))
        return !jv_equal(v, x);
    if (!strcmp(name, "in")) {
        if (x->kind == JV_LIST) {
            for (size_t i = 0; i < x->u.seq.n; i++)
                if (jv_equal(v, x->u.seq.items[i]))
                    return 1;
            return 0;
        }
        if (x->kind == JV_DICT)
            return jv_dict_get(x, v) != NULL;
        if (x->kind == JV_STR && v->kind == JV_STR)
            return find_sub(x->u.str.s, x->u.str.n, v->u.str.s, v->u.str.n) != NULL;
        ja_fail(c->a, c->line, "'in' test on a %s", jv_type_name(x));
    }
    ja_fail(c->a, c->line, "the test '%s' is not supported", name);
}

jv *jinja_method(jv *v, const char *name, const jcall *c)
{
    if (v->kind == JV_DICT) {
        if (!strcmp(name, "get")) {
            check_args(c, "get()", 2, NULL);
            jv *r = jv_dict_get(v, need_str(c, "get()", arg(c, 0, NULL)));
            jv *d = arg(c, 1, NULL);
            return r ? r : d ? d : &JV_NONE_V;
        }
        if (!strcmp(name, "items"))
            return dict_items(c, v);
        if (!strcmp(name, "keys") || !strcmp(name, "values")) {
            jv *out = jv_list(c->a);
            for (size_t i = 0; i < v->u.seq.n; i++)
                jv_push(c->a, out, name[0] == 'k' ? v->u.seq.keys[i] : v->u.seq.items[i]);
            return out;
        }
        ja_fail(c->a, c->line, "the dict method %s() is not supported", name);
    }
    if (v->kind != JV_STR)
        return NULL;
    char what[48];
    snprintf(what, sizeof what, "%s()", name);
    if (!strcmp(name, "strip") || !strcmp(name, "lstrip") || !strcmp(name, "rstrip")) {
        check_args(c, what, 1, NULL);
        return strip(c, v, arg(c, 0, NULL), name[0] != 'r', name[0] != 'l');
    }
    if (!strcmp(name, "split")) {
        static const char *const kws[] = {"sep", "maxsplit", NULL};
        check_args(c, what, 2, kws);
        return split(c, v, arg(c, 0, "sep"), arg(c, 1, "maxsplit"));
    }
    if (!strcmp(name, "replace")) {
        check_args(c, what, 3, NULL);
        return replace(c, v, arg(c, 0, NULL), arg(c, 1, NULL), arg(c, 2, NULL));
    }
    if (!strcmp(name, "startswith") || !strcmp(name, "endswith")) {
        check_args(c, what, 1, NULL);
        return jv_bool(affix(c, v, arg(c, 0, NULL), name[0] == 'e'));
    }
    if (!strcmp(name, "upper") || !strcmp(name, "lower") || !strcmp(name, "title") || !strcmp(name, "capitalize")) {
        check_args(c, what, 0, NULL);
        return change_case(c, v, name[0] == 'u' ? 'u' : name[0] == 'l' ? 'l' : name[0] == 't' ? 't' : 'c');
    }
    if (!strcmp(name, "join")) {
        check_args(c, what, 1, NULL);
        jv *seq = arg(c, 0, NULL);
        if (!seq || seq->kind != JV_LIST)
            ja_fail(c->a, c->line, "join() needs a list");
        for (size_t i = 0; i < seq->u.seq.n; i++)
            need_str(c, "join()", seq->u.seq.items[i]);
        return join(c, seq, v, NULL);
    }
    ja_fail(c->a, c->line, "the str method %s() is not supported", name);
}

/* strftime_now(format): the local time, or SHARDTUNE_CHAT_TEMPLATE_NOW */
static jv *strftime_now(const jcall *c)
{
    check_args(c, "strftime_now()", 1, NULL);
    const jv *fmt = need_str(c, "strftime_now()", arg(c, 0, NULL));
    struct tm tm;
    const char *pin = getenv("SHARDTUNE_CHAT_TEMPLATE_NOW");
    if (pin) {
        memset(&tm, 0, sizeof tm);
        const char *end = strptime(pin, "%Y-%m-%d %H:%M:%S", &tm);
        if (!end || *end)
            ja_fail(c->a, c->line, "SHARDTUNE_CHAT_TEMPLATE_NOW=\"%s\" is not YYYY-MM-DD HH:MM:SS", pin);
        tm.tm_isdst = -1;
        time_t t = mktime(&tm); /* fills in the weekday and day of the year */
        localtime_r(&t, &tm);
    } else {
        time_t t = time(NULL);
        localtime_r(&t, &tm);
    }
    /* Python passes the format to the C library's strftime too; a format
     * with a NUL or an unknown directive is not something to guess at */
    const char *f = ja_strndup(c->a, fmt->u.str.s, fmt->u.str.n);
    if (strlen(f) != fmt->u.str.n)
        ja_fail(c->a, c->line, "strftime_now(): a NUL in the format");
    for (const char *p = f; *p; p++)
        if (*p == '%') {
            p++;
            if (!*p || !strchr("aAbBcdHIjmMpSUwWxXyYzZ%", *p))
                ja_fail(c->a, c->line, "strftime_now(): the directive %%%c is not supported", *p ? *p : ' ');
        }
    char buf[1024];
    size_t n = strftime(buf, sizeof buf, f, &tm);
    if (n == 0 && *f)
        ja_fail(c->a, c->line, "strftime_now(): the formatted date is too long");
    return jv_str(c->a, buf, n);
}

jv *jinja_global(const char *name, const jcall *c)
{
    if (!strcmp(name, "raise_exception")) {
        const jv *msg = arg(c, 0, NULL);
        jv *text = msg ? jv_text(c->a, c->line, msg) : jv_str_nocopy(c->a, "", 0);
        ja_fail(c->a, c->line, "the template raised an exception: %.*s", (int)(text->u.str.n < 600 ? text->u.str.n : 600),
                text->u.str.s);
    }
    if (!strcmp(name, "strftime_now"))
        return strftime_now(c);
    if (!strcmp(name, "namespace") || !strcmp(name, "dict")) {
        jv *d = jv_dict(c->a, name[0] == 'n' ? JV_NS : JV_DICT);
        if (c->n_args)
            ja_fail(c->a, c->line, "%s() with positional arguments is not supported", name);
        for (size_t k = 0; k < c->n_kwargs; k++) {
            if (name[0] == 'n' && c->kwnames[k][0] == '_')
                ja_fail(c->a, c->line, "namespace(): the attribute %s starts with an underscore", c->kwnames[k]);
            jv_dict_set(c->a, d, jv_str_nocopy(c->a, c->kwnames[k], strlen(c->kwnames[k])), c->kwargs[k]);
        }
        return d;
    }
    if (!strcmp(name, "range")) {
        check_args(c, "range()", 3, NULL);
        int64_t start = 0, stop, step = 1;
        if (c->n_args == 0)
            ja_fail(c->a, c->line, "range() needs an argument");
        if (c->n_args == 1) {
            stop = need_int(c, "range()", c->args[0]);
        } else {
            start = need_int(c, "range()", c->args[0]);
            stop = need_int(c, "range()", c->args[1]);
            if (c->n_args == 3)
                step = need_int(c, "range()", c->args[2]);
        }
        if (step == 0)
            ja_fail(c->a, c->line, "range() step 0");
        /* Jinja's sandbox caps range() at 100000 items */
        double count = step > 0 ? ((double)stop - (double)start) / (double)step
                                : ((double)start - (double)stop) / (double)-step;
        if (count > 100000)
            ja_fail(c->a, c->line, "range() of more than 100000 items (the sandbox's limit)");
        jv *out = jv_list(c->a);
        for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step)
            jv_push(c->a, out, jv_int(c->a, i));
        return out;
    }
    ja_fail(c->a, c->line, "the function %s() is not supported", name);
}
