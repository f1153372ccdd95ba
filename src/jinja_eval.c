/* jinja_eval.c: runs a parsed chat template (jinja.h): Jinja2's scoping
 * (a for loop's body gets a fresh scope every iteration, so a {% set %} in it
 * does not outlive the iteration -- namespace() exists for that), Python's
 * operators, and the limits on work and memory. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "jinja_internal.h"

struct jinja_template {
    jarena a;
    jnodes body;
    int has_generation; /* a {% generation %} block somewhere */
};

typedef struct scope {
    jv *vars; /* a JV_DICT */
    struct scope *up;
} scope;

typedef struct ev {
    jarena *a;
    jbuf *out;
    scope *sc;
    long iterations;
    int depth;
    int ctl; /* a pending break (1) or continue (2) */
    jbuf *top;      /* the template's own output */
    int want_spans; /* record where {% generation %} blocks' text lies: */
    size_t *spans;  /* [start, end) byte offsets in top, 2 per block, in */
    size_t n_spans, cap_spans; /* the order the blocks end (as transformers) */
} ev;

/* Expressions and statements recurse; a long a+b+c+... chain is a deep
 * tree without deep parsing, so evaluation counts its own depth. */
enum { EVAL_MAX_DEPTH = 2000 };

static jv *eval(ev *E, const jnode *n);
static void exec_body(ev *E, const jnodes *body);

static jv *lookup(ev *E, const char *name)
{
    jv key = {.kind = JV_STR, .u.str = {name, strlen(name)}};
    for (scope *s = E->sc; s; s = s->up) {
        jv *v = jv_dict_get(s->vars, &key);
        if (v)
            return v;
    }
    return NULL;
}

static void assign(ev *E, const char *name, jv *v)
{
    jv_dict_set(E->a, E->sc->vars, jv_str_nocopy(E->a, name, strlen(name)), v);
}

static void push_scope(ev *E, scope *s)
{
    s->vars = jv_dict(E->a, JV_DICT);
    s->up = E->sc;
    E->sc = s;
}

static void count_iteration(ev *E, int line)
{
    if (++E->iterations > JINJA_MAX_ITERATIONS)
        ja_fail(E->a, line, "more than %d loop iterations (the limit)", JINJA_MAX_ITERATIONS);
}

static int64_t checked(ev *E, int line, int overflow, int64_t r)
{
    if (overflow)
        ja_fail(E->a, line, "an integer beyond 64 bits (not supported)");
    return r;
}

static int is_num(const jv *v) { return v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL; }
static int is_int(const jv *v) { return v->kind == JV_INT || v->kind == JV_BOOL; }
static int64_t ival(const jv *v) { return v->kind == JV_INT ? v->u.i : v->u.b; }
static double fval(const jv *v) { return v->kind == JV_FLOAT ? v->u.f : (double)ival(v); }

static int contains(ev *E, int line, const jv *container, const jv *x)
{
    switch (container->kind) {
    case JV_STR:
        if (x->kind != JV_STR)
            ja_fail(E->a, line, "'in <string>' needs a string on the left, not %s", jv_type_name(x));
        if (!x->u.str.n)
            return 1;
        for (size_t i = 0; i + x->u.str.n <= container->u.str.n; i++)
            if (!memcmp(container->u.str.s + i, x->u.str.s, x->u.str.n))
                return 1;
        return 0;
    case JV_LIST:
        for (size_t i = 0; i < container->u.seq.n; i++)
            if (jv_equal(container->u.seq.items[i], x))
                return 1;
        return 0;
    case JV_DICT:
        return jv_dict_get(container, x) != NULL;
    case JV_UNDEF: /* Jinja's Undefined iterates as empty */
        return 0;
    default:
        ja_fail(E->a, line, "'in' a %s", jv_type_name(container));
    }
}

static jv *repeat(ev *E, int line, const jv *seq, int64_t k)
{
    if (k < 0)
        k = 0;
    size_t unit = seq->kind == JV_STR ? seq->u.str.n : seq->u.seq.n;
    if (unit && (uint64_t)k > (uint64_t)JINJA_MAX_OUTPUT / unit)
        ja_fail(E->a, line, "a repetition beyond %d MiB (the limit)", JINJA_MAX_OUTPUT >> 20);
    if (seq->kind == JV_STR) {
        jbuf b = {0};
        for (int64_t i = 0; i < k; i++)
            jb_put(E->a, line, &b, seq->u.str.s, seq->u.str.n);
        return jv_str_nocopy(E->a, b.s ? b.s : "", b.n);
    }
    jv *out = jv_list(E->a);
    for (int64_t i = 0; i < k; i++)
        for (size_t j = 0; j < seq->u.seq.n; j++)
            jv_push(E->a, out, seq->u.seq.items[j]);
    return out;
}

static jv *arith(ev *E, int line, const char *op, const jv *x, const jv *y)
{
    jarena *a = E->a;
    if (x->kind == JV_UNDEF || y->kind == JV_UNDEF)
        ja_fail(a, line, "'%s' with an undefined value", op);
    char o = op[0];
    int both_int = is_int(x) && is_int(y);
    if (is_num(x) && is_num(y)) {
        int64_t p = ival(x), q = ival(y), r;
        double f = fval(x), g = fval(y);
        if (o == '+' || o == '-' || (o == '*' && !op[1])) {
            if (both_int) {
                int overflow = o == '+'   ? __builtin_add_overflow(p, q, &r)
                               : o == '-' ? __builtin_sub_overflow(p, q, &r)
                                          : __builtin_mul_overflow(p, q, &r);
                return jv_int(a, checked(E, line, overflow, r));
            }
            return jv_float(a, o == '+' ? f + g : o == '-' ? f - g : f * g);
        }
        if (!strcmp(op, "**")) {
            if (both_int && q >= 0) {
                int64_t acc = 1;
                for (int64_t i = 0; i < q; i++) {
                    checked(E, line, __builtin_mul_overflow(acc, p, &acc), 0);
                    if (acc == 0 || acc == 1)
                        break;
                }
                return jv_int(a, acc);
            }
            return jv_float(a, pow(f, g));
        }
        if ((both_int && q == 0) || (!both_int && g == 0))
            ja_fail(a, line, "division by zero");
        if (o == '/' && !op[1])
            return jv_float(a, f / g);
        if (both_int) { /* Python floors */
            if (p == INT64_MIN && q == -1)
                ja_fail(a, line, "an integer beyond 64 bits (not supported)");
            int64_t d = p / q, m = p % q;
            if (m != 0 && ((m < 0) != (q < 0))) {
                d--;
                m += q;
            }
            return jv_int(a, o == '%' ? m : d);
        }
        double d = floor(f / g), m = fmod(f, g);
        if (m != 0 && ((m < 0) != (g < 0)))
            m += g;
        return jv_float(a, o == '%' ? m : d);
    }
    if (o == '+' && x->kind == JV_STR && y->kind == JV_STR) {
        jbuf b = {0};
        jb_put(a, line, &b, x->u.str.s, x->u.str.n);
        jb_put(a, line, &b, y->u.str.s, y->u.str.n);
        return jv_str_nocopy(a, b.s ? b.s : "", b.n);
    }
    if (o == '+' && x->kind == JV_LIST && y->kind == JV_LIST) {
        jv *out = jv_list(a);
        for (size_t i = 0; i < x->u.seq.n; i++)
            jv_push(a, out, x->u.seq.items[i]);
        for (size_t i = 0; i < y->u.seq.n; i++)
            jv_push(a, out, y->u.seq.items[i]);
        return out;
    }
    if (o == '*' && !op[1] && (x->kind == JV_STR || x->kind == JV_LIST) && is_int(y))
        return repeat(E, line, x, ival(y));
    if (o == '*' && !op[1] && (y->kind == JV_STR || y->kind == JV_LIST) && is_int(x))
        return repeat(E, line, y, ival(x));
    if (o == '%' && x->kind == JV_STR)
        ja_fail(a, line, "string formatting with '%%' is not supported");
    ja_fail(a, line, "unsupported operand types for %s: %s and %s", op, jv_type_name(x), jv_type_name(y));
}

static jv *binary(ev *E, const jnode *n)
{
    const char *op = n->name;
    jv *x = eval(E, n->a), *y = eval(E, n->b);
    if (!strcmp(op, "~")) {
        jbuf b = {0};
        jv_to_text(E->a, n->line, &b, x);
        jv_to_text(E->a, n->line, &b, y);
        return jv_str_nocopy(E->a, b.s ? b.s : "", b.n);
    }
    if (!strcmp(op, "in") || !strcmp(op, "not in"))
        return jv_bool(contains(E, n->line, y, x) == (op[0] == 'i'));
    if (!strcmp(op, "=="))
        return jv_bool(jv_equal(x, y));
    if (!strcmp(op, "!="))
        return jv_bool(!jv_equal(x, y));
    if (op[0] == '<' || op[0] == '>') {
        if (x->kind == JV_UNDEF || y->kind == JV_UNDEF)
            ja_fail(E->a, n->line, "'%s' with an undefined value", op);
        int c = jv_compare(E->a, n->line, x, y);
        return jv_bool(op[0] == '<' ? (op[1] ? c <= 0 : c < 0) : (op[1] ? c >= 0 : c > 0));
    }
    return arith(E, n->line, op, x, y);
}

/* Python's slice indices of seq[start:stop:step] for a length n */
static size_t slice_indices(ev *E, int line, size_t n, const jv *start, const jv *stop, const jv *step,
                            int64_t *first, int64_t *by)
{
    int64_t len = (int64_t)n, st = 1;
    if (step && step->kind != JV_NONE) {
        if (!is_int(step))
            ja_fail(E->a, line, "a slice step that is a %s", jv_type_name(step));
        st = ival(step);
        if (st == 0)
            ja_fail(E->a, line, "a slice step of zero");
    }
    int64_t lo, hi;
    const jv *bounds[2] = {start, stop};
    int64_t v[2];
    for (int k = 0; k < 2; k++) {
        const jv *b = bounds[k];
        if (!b || b->kind == JV_NONE) {
            v[k] = st > 0 ? (k ? len : 0) : (k ? -1 : len - 1);
            continue;
        }
        if (!is_int(b))
            ja_fail(E->a, line, "a slice bound that is a %s", jv_type_name(b));
        int64_t x = ival(b);
        if (x < 0)
            x = x + len < 0 ? (st > 0 ? 0 : -1) : x + len;
        else if (x >= len)
            x = st > 0 ? len : len - 1;
        v[k] = x;
    }
    lo = v[0];
    hi = v[1];
    *first = lo;
    *by = st;
    if (st > 0)
        return hi > lo ? (size_t)((hi - lo + st - 1) / st) : 0;
    return lo > hi ? (size_t)((lo - hi - st - 1) / -st) : 0;
}

static jv *slice(ev *E, const jnode *n)
{
    jv *obj = eval(E, n->a);
    jv *start = n->b ? eval(E, n->b) : NULL, *stop = n->c ? eval(E, n->c) : NULL;
    jv *step = n->args.v[0] ? eval(E, n->args.v[0]) : NULL;
    int64_t first, by;
    if (obj->kind == JV_LIST) {
        size_t k = slice_indices(E, n->line, obj->u.seq.n, start, stop, step, &first, &by);
        jv *out = jv_list(E->a);
        for (size_t i = 0; i < k; i++)
            jv_push(E->a, out, obj->u.seq.items[first + (int64_t)i * by]);
        return out;
    }
    if (obj->kind == JV_STR) {
        const char *s = obj->u.str.s;
        size_t len = jinja_utf8_len(s, obj->u.str.n);
        size_t k = slice_indices(E, n->line, len, start, stop, step, &first, &by);
        if (by == 1 && len == obj->u.str.n) /* ASCII: bytes are characters */
            return jv_str_nocopy(E->a, s + first, k);
        jbuf b = {0};
        for (size_t i = 0; i < k; i++) {
            size_t at = jinja_utf8_offset(s, obj->u.str.n, (size_t)(first + (int64_t)i * by));
            size_t end = jinja_utf8_offset(s, obj->u.str.n, (size_t)(first + (int64_t)i * by) + 1);
            jb_put(E->a, n->line, &b, s + at, end - at);
        }
        return jv_str_nocopy(E->a, b.s ? b.s : "", b.n);
    }
    if (obj->kind == JV_UNDEF)
        ja_fail(E->a, n->line, "slicing an undefined value");
    ja_fail(E->a, n->line, "slicing a %s is not supported", jv_type_name(obj));
}

static jv *item(ev *E, int line, jv *obj, jv *key)
{
    switch (obj->kind) {
    case JV_UNDEF:
        ja_fail(E->a, line, "an item of an undefined value");
    case JV_DICT:
    case JV_NS: {
        jv *v = jv_dict_get(obj, key);
        return v ? v : &JV_UNDEFINED;
    }
    case JV_LIST:
    case JV_STR: {
        if (!is_int(key))
            return &JV_UNDEFINED;
        int64_t len = obj->kind == JV_LIST ? (int64_t)obj->u.seq.n : (int64_t)jinja_utf8_len(obj->u.str.s, obj->u.str.n);
        int64_t i = ival(key);
        if (i < 0)
            i += len;
        if (i < 0 || i >= len)
            return &JV_UNDEFINED;
        if (obj->kind == JV_LIST)
            return obj->u.seq.items[i];
        size_t at = jinja_utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)i);
        size_t end = jinja_utf8_offset(obj->u.str.s, obj->u.str.n, (size_t)i + 1);
        return jv_str_nocopy(E->a, obj->u.str.s + at, end - at);
    }
    default:
        return &JV_UNDEFINED;
    }
}

static jv *attribute(ev *E, const jnode *n)
{
    jv *obj = eval(E, n->a);
    if (obj->kind == JV_UNDEF)
        ja_fail(E->a, n->line, "the attribute '%s' of an undefined value", n->name);
    if (jinja_is_method(obj, n->name))
        ja_fail(E->a, n->line, "the method %s used without a call is not supported", n->name);
    if (obj->kind == JV_DICT || obj->kind == JV_NS) {
        jv *v = jv_dict_get_s(obj, n->name);
        return v ? v : &JV_UNDEFINED;
    }
    return &JV_UNDEFINED;
}

static void eval_args(ev *E, const jnode *n, jcall *c, size_t skip)
{
    c->a = E->a;
    c->line = n->line;
    c->n_args = n->args.n - skip;
    c->args = ja_alloc(E->a, (c->n_args + 1) * sizeof *c->args);
    for (size_t i = 0; i < c->n_args; i++)
        c->args[i] = eval(E, n->args.v[i + skip]);
    c->n_kwargs = n->kwargs.n;
    c->kwnames = n->kwnames;
    c->kwargs = ja_alloc(E->a, (c->n_kwargs + 1) * sizeof *c->kwargs);
    for (size_t i = 0; i < c->n_kwargs; i++)
        c->kwargs[i] = eval(E, n->kwargs.v[i]);
}

static jv *call(ev *E, const jnode *n)
{
    const jnode *f = n->a;
    jcall c;
    if (f->kind == JN_ATTR) {
        jv *obj = eval(E, f->a);
        if (obj->kind == JV_UNDEF)
            ja_fail(E->a, n->line, "calling %s() of an undefined value", f->name);
        if (!jinja_is_method(obj, f->name))
            ja_fail(E->a, n->line, "calling the %s method %s() is not supported", jv_type_name(obj), f->name);
        eval_args(E, n, &c, 0);
        return jinja_method(obj, f->name, &c);
    }
    if (f->kind == JN_NAME && !lookup(E, f->name) && jinja_global_known(f->name)) {
        eval_args(E, n, &c, 0);
        return jinja_global(f->name, &c);
    }
    if (f->kind == JN_NAME)
        ja_fail(E->a, n->line, "calling '%s' is not supported", f->name);
    ja_fail(E->a, n->line, "calling a computed value is not supported");
}

static jv *eval(ev *E, const jnode *n)
{
    if (++E->depth > EVAL_MAX_DEPTH)
        ja_fail(E->a, n->line, "an expression nested deeper than %d (the limit)", EVAL_MAX_DEPTH);
    jv *r;
    jcall c;
    switch (n->kind) {
    case JN_LIT:
        r = n->lit;
        break;
    case JN_NAME:
        r = lookup(E, n->name);
        if (!r && jinja_global_known(n->name))
            ja_fail(E->a, n->line, "'%s' used without a call is not supported", n->name);
        if (!r)
            r = &JV_UNDEFINED;
        break;
    case JN_ATTR:
        r = attribute(E, n);
        break;
    case JN_ITEM:
        r = item(E, n->line, eval(E, n->a), eval(E, n->b));
        break;
    case JN_SLICE:
        r = slice(E, n);
        break;
    case JN_CALL:
        r = call(E, n);
        break;
    case JN_FILTER: {
        jv *v = eval(E, n->a);
        eval_args(E, n, &c, 0);
        r = jinja_filter(n->name, v, &c);
        break;
    }
    case JN_TEST: {
        jv *v = eval(E, n->a);
        eval_args(E, n, &c, 0);
        r = jv_bool(jinja_test(n->name, v, &c) != n->negated);
        break;
    }
    case JN_NEG:
    case JN_POS: {
        jv *v = eval(E, n->a);
        if (v->kind == JV_FLOAT)
            r = jv_float(E->a, n->kind == JN_NEG ? -v->u.f : v->u.f);
        else if (is_int(v))
            r = jv_int(E->a, n->kind == JN_NEG ? checked(E, n->line, ival(v) == INT64_MIN, -ival(v)) : ival(v));
        else
            ja_fail(E->a, n->line, "unary %c of a %s", n->kind == JN_NEG ? '-' : '+', jv_type_name(v));
        break;
    }
    case JN_NOT:
        r = jv_bool(!jv_truthy(eval(E, n->a)));
        break;
    case JN_AND:
    case JN_OR: {
        jv *x = eval(E, n->a);
        r = jv_truthy(x) == (n->kind == JN_AND) ? eval(E, n->b) : x;
        break;
    }
    case JN_COND:
        r = jv_truthy(eval(E, n->b)) ? eval(E, n->a) : n->c ? eval(E, n->c) : &JV_UNDEFINED;
        break;
    case JN_BIN:
        r = binary(E, n);
        break;
    case JN_LIST:
    case JN_TUPLE:
        r = jv_list(E->a);
        r->tuple = n->kind == JN_TUPLE;
        for (size_t i = 0; i < n->args.n; i++)
            jv_push(E->a, r, eval(E, n->args.v[i]));
        break;
    case JN_DICT:
        r = jv_dict(E->a, JV_DICT);
        for (size_t i = 0; i < n->args.n; i++) {
            jv *k = eval(E, n->args.v[i]);
            if (k->kind == JV_LIST || k->kind == JV_DICT || k->kind == JV_NS || k->kind == JV_UNDEF)
                ja_fail(E->a, n->line, "a dict key that is a %s", jv_type_name(k));
            jv_dict_set(E->a, r, k, eval(E, n->kwargs.v[i]));
        }
        break;
    default:
        ja_fail(E->a, n->line, "a statement where an expression was expected");
    }
    E->depth--;
    return r;
}

static jv *loop_items(ev *E, int line, jv *v)
{
    jcall c = {.a = E->a, .line = line};
    if (v->kind == JV_NONE || v->kind == JV_INT || v->kind == JV_FLOAT || v->kind == JV_BOOL || v->kind == JV_NS)
        ja_fail(E->a, line, "a for loop over a %s", jv_type_name(v));
    return jinja_filter("list", v, &c);
}

/* binds the loop targets to one item (unpacking a pair for "k, v") */
static void bind_targets(ev *E, const jnode *n, jv *x)
{
    if (n->args.n == 1) {
        assign(E, n->args.v[0]->name, x);
        return;
    }
    if (x->kind != JV_LIST || x->u.seq.n != n->args.n)
        ja_fail(E->a, n->line, "cannot unpack a %s into %zu loop variables", jv_type_name(x), n->args.n);
    for (size_t i = 0; i < n->args.n; i++)
        assign(E, n->args.v[i]->name, x->u.seq.items[i]);
}

static jv *loop_var(ev *E, size_t i, size_t len, jv *items)
{
    jv *loop = jv_dict(E->a, JV_DICT);
    static const char *const keys[] = {"index0", "index", "revindex0", "revindex", "first", "last", "length",
                                       "depth", "depth0"};
    jv *vals[] = {jv_int(E->a, (int64_t)i), jv_int(E->a, (int64_t)i + 1), jv_int(E->a, (int64_t)(len - i - 1)),
                  jv_int(E->a, (int64_t)(len - i)), jv_bool(i == 0), jv_bool(i + 1 == len),
                  jv_int(E->a, (int64_t)len), jv_int(E->a, 1), jv_int(E->a, 0)};
    for (size_t k = 0; k < sizeof keys / sizeof *keys; k++)
        jv_dict_set(E->a, loop, jv_str_nocopy(E->a, keys[k], strlen(keys[k])), vals[k]);
    if (i > 0)
        jv_dict_set(E->a, loop, jv_str_nocopy(E->a, "previtem", 8), items->u.seq.items[i - 1]);
    if (i + 1 < len)
        jv_dict_set(E->a, loop, jv_str_nocopy(E->a, "nextitem", 8), items->u.seq.items[i + 1]);
    return loop;
}

static void exec_for(ev *E, const jnode *n)
{
    jv *all = loop_items(E, n->line, eval(E, n->a)), *items = all;
    if (n->b) { /* the loop filter sees the item, not loop */
        items = jv_list(E->a);
        for (size_t i = 0; i < all->u.seq.n; i++) {
            count_iteration(E, n->line);
            scope s;
            push_scope(E, &s);
            bind_targets(E, n, all->u.seq.items[i]);
            int keep = jv_truthy(eval(E, n->b));
            E->sc = s.up;
            if (keep)
                jv_push(E->a, items, all->u.seq.items[i]);
        }
    }
    size_t len = items->u.seq.n;
    /* Jinja runs the else block unless some iteration ran its body to the
     * end (one left by break or continue does not count) */
    int completed = 0;
    for (size_t i = 0; i < len; i++) {
        count_iteration(E, n->line);
        scope s;
        push_scope(E, &s);
        bind_targets(E, n, items->u.seq.items[i]);
        assign(E, "loop", loop_var(E, i, len, items));
        exec_body(E, &n->body);
        E->sc = s.up;
        int ctl = E->ctl;
        E->ctl = 0;
        completed |= ctl == 0;
        if (ctl == 1)
            break;
    }
    if (!completed && n->orelse.n) {
        scope s;
        push_scope(E, &s);
        exec_body(E, &n->orelse);
        E->sc = s.up;
    }
}

static void exec_stmt(ev *E, const jnode *n)
{
    switch (n->kind) {
    case JN_DATA:
        jb_put(E->a, n->line, E->out, n->lit->u.str.s, n->lit->u.str.n);
        return;
    case JN_OUTPUT:
        jv_to_text(E->a, n->line, E->out, eval(E, n->a));
        return;
    case JN_IF:
        exec_body(E, jv_truthy(eval(E, n->a)) ? &n->body : &n->orelse);
        return;
    case JN_FOR:
        exec_for(E, n);
        return;
    case JN_SET:
        assign(E, n->name, eval(E, n->b));
        return;
    case JN_SET_ATTR: {
        jv *ns = lookup(E, n->a->name);
        if (!ns || ns->kind != JV_NS)
            ja_fail(E->a, n->line, "{%% set %s.%s %%}: '%s' is not a namespace()", n->a->name, n->name, n->a->name);
        if (n->name[0] == '_')
            ja_fail(E->a, n->line, "{%% set %s.%s %%}: an attribute starting with an underscore", n->a->name, n->name);
        jv_dict_set(E->a, ns, jv_str_nocopy(E->a, n->name, strlen(n->name)), eval(E, n->b));
        return;
    }
    case JN_SET_BLOCK: {
        jbuf b = {0}, *saved = E->out;
        scope s;
        push_scope(E, &s);
        E->out = &b;
        exec_body(E, &n->body);
        E->out = saved;
        E->sc = s.up;
        assign(E, n->name, jv_str_nocopy(E->a, b.s ? b.s : "", b.n));
        return;
    }
    case JN_GENERATION: { /* a call block: its own scope */
        if (E->want_spans && E->out != E->top)
            ja_fail(E->a, n->line, "{%% generation %%} inside a {%% set %%} block (its place in the text is unknown)");
        size_t start = E->out->n;
        scope s;
        push_scope(E, &s);
        exec_body(E, &n->body);
        E->sc = s.up;
        if (E->ctl)
            ja_fail(E->a, n->line, "break or continue inside {%% generation %%} is not supported");
        if (E->want_spans) {
            if (E->n_spans + 2 > E->cap_spans) {
                E->cap_spans = E->cap_spans ? 2 * E->cap_spans : 16;
                size_t *grown = ja_alloc(E->a, E->cap_spans * sizeof *grown);
                if (E->n_spans)
                    memcpy(grown, E->spans, E->n_spans * sizeof *grown);
                E->spans = grown;
            }
            E->spans[E->n_spans++] = start;
            E->spans[E->n_spans++] = E->out->n;
        }
        return;
    }
    case JN_BREAK:
    case JN_CONTINUE:
        E->ctl = n->kind == JN_BREAK ? 1 : 2;
        return;
    default:
        ja_fail(E->a, n->line, "an expression where a statement was expected");
    }
}

static void exec_body(ev *E, const jnodes *body)
{
    if (++E->depth > EVAL_MAX_DEPTH)
        ja_fail(E->a, body->n ? body->v[0]->line : 0, "blocks nested deeper than %d (the limit)", EVAL_MAX_DEPTH);
    for (size_t i = 0; i < body->n && !E->ctl; i++)
        exec_stmt(E, body->v[i]);
    E->depth--;
}

/* Statements nest no deeper than the parser allows, so this recursion is
 * bounded as parsing was. */
static int any_generation(const jnodes *body)
{
    for (size_t i = 0; i < body->n; i++) {
        const jnode *n = body->v[i];
        if (n->kind == JN_GENERATION || any_generation(&n->body) || any_generation(&n->orelse))
            return 1;
    }
    return 0;
}

int jinja_has_generation(const jinja_template *t) { return t->has_generation; }

jinja_template *jinja_parse(const char *src, size_t n, errbuf *e)
{
    jinja_template *t = xcalloc(1, sizeof *t);
    jmp_buf fail;
    t->a.e = e;
    t->a.fail = &fail;
    if (setjmp(fail)) {
        jinja_free(t);
        return NULL;
    }
    size_t n_toks;
    jtok *toks = jinja_lex(&t->a, src, n, &n_toks);
    t->body = jinja_parse_tokens(&t->a, toks, n_toks);
    t->has_generation = any_generation(&t->body);
    t->a.e = NULL;
    t->a.fail = NULL;
    return t;
}

void jinja_free(jinja_template *t)
{
    if (!t)
        return;
    ja_free_all(&t->a);
    free(t);
}

int jinja_render_spans(const jinja_template *t, json_t *vars, char **out, size_t *n_out, size_t **spans,
                       size_t *n_spans, errbuf *e)
{
    jarena a = {0};
    jmp_buf fail;
    a.e = e;
    a.fail = &fail;
    if (setjmp(fail)) {
        ja_free_all(&a);
        return -1;
    }
    if (!json_is_object(vars))
        ja_fail(&a, 0, "the variables are not a JSON object");
    jbuf b = {0};
    scope root = {.vars = jv_from_json(&a, vars)};
    ev E = {.a = &a, .out = &b, .sc = &root, .top = &b, .want_spans = spans != NULL};
    exec_body(&E, &t->body);
    *out = xmalloc(b.n + 1);
    if (b.n)
        memcpy(*out, b.s, b.n);
    (*out)[b.n] = 0;
    *n_out = b.n;
    if (spans) {
        *n_spans = E.n_spans / 2;
        *spans = xmalloc((E.n_spans ? E.n_spans : 1) * sizeof **spans);
        if (E.n_spans)
            memcpy(*spans, E.spans, E.n_spans * sizeof **spans);
    }
    ja_free_all(&a);
    return 0;
}

int jinja_render(const jinja_template *t, json_t *vars, char **out, size_t *n_out, errbuf *e)
{
    return jinja_render_spans(t, vars, out, n_out, NULL, NULL, e);
}
