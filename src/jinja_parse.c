/* jinja_parse.c: tokens to a syntax tree, with Jinja2's grammar and operator
 * precedence; tags, filters and tests outside the supported set are refused
 * here, naming the line. */
#include <string.h>

#include "jinja_internal.h"

typedef struct parser {
    jarena *a;
    const jtok *t;
    size_t n, pos;
    int depth;
    int loops; /* for bodies open: break and continue need one */
} parser;

void jnodes_push(jarena *a, jnodes *l, jnode *n)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 4;
        jnode **v = ja_alloc(a, cap * sizeof *v);
        if (l->n)
            memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = n;
}

static const jtok *peek(parser *P) { return &P->t[P->pos]; }
static const jtok *next(parser *P) { return &P->t[P->pos < P->n - 1 ? P->pos++ : P->pos]; }

static int tok_is(const jtok *t, jtok_kind kind, const char *s)
{
    return t->kind == kind && (!s || (t->n == strlen(s) && !memcmp(t->s, s, t->n)));
}
static int is_op(parser *P, const char *s) { return tok_is(peek(P), JT_OP, s); }
static int is_name(parser *P, const char *s) { return tok_is(peek(P), JT_NAME, s); }

static const char *describe(parser *P, const jtok *t)
{
    switch (t->kind) {
    case JT_EOF:
        return "the end of the template";
    case JT_VAR_END:
        return "'}}'";
    case JT_BLOCK_END:
        return "'%}'";
    case JT_DATA:
        return "text";
    default: {
        size_t n = t->n < 40 ? t->n : 40;
        char *s = ja_alloc(P->a, n + 3);
        s[0] = '\'';
        memcpy(s + 1, t->s, n);
        s[n + 1] = '\'';
        return s;
    }
    }
}

static void expect_op(parser *P, const char *s)
{
    if (!is_op(P, s))
        ja_fail(P->a, peek(P)->line, "expected '%s', found %s", s, describe(P, peek(P)));
    next(P);
}

static const char *expect_name(parser *P)
{
    const jtok *t = peek(P);
    if (t->kind != JT_NAME)
        ja_fail(P->a, t->line, "expected a name, found %s", describe(P, t));
    next(P);
    return ja_strndup(P->a, t->s, t->n);
}

static void expect_block_end(parser *P)
{
    if (peek(P)->kind != JT_BLOCK_END)
        ja_fail(P->a, peek(P)->line, "expected '%%}', found %s", describe(P, peek(P)));
    next(P);
}

static jnode *mk(parser *P, jn_kind kind, int line)
{
    jnode *n = ja_alloc(P->a, sizeof *n);
    n->kind = kind;
    n->line = line;
    return n;
}

static void enter(parser *P, int line)
{
    if (++P->depth > JINJA_MAX_DEPTH)
        ja_fail(P->a, line, "nested deeper than %d (the limit)", JINJA_MAX_DEPTH);
}

static jnode *parse_expr(parser *P);
static jnode *parse_or(parser *P);
static jnode *parse_unary(parser *P, int with_filter);

static int is_reserved(const jtok *t)
{
    static const char *const kw[] = {"and", "or", "not", "in", "is", "if", "else", "true", "false", "none",
                                     "True", "False", "None"};
    for (size_t i = 0; i < sizeof kw / sizeof *kw; i++)
        if (tok_is(t, JT_NAME, kw[i]))
            return 1;
    return 0;
}

/* ( args ) after a callee, filter or test: positional, then name=value */
static void parse_args(parser *P, jnode *n)
{
    expect_op(P, "(");
    while (!is_op(P, ")")) {
        if (n->args.n + n->kwargs.n)
            expect_op(P, ",");
        if (is_op(P, ")"))
            break;
        if (is_op(P, "*") || is_op(P, "**"))
            ja_fail(P->a, peek(P)->line, "*args and **kwargs in a call are not supported");
        if (peek(P)->kind == JT_NAME && tok_is(&P->t[P->pos + 1], JT_OP, "=")) {
            const char **names = ja_alloc(P->a, (n->kwargs.n + 1) * sizeof *names);
            if (n->kwargs.n)
                memcpy(names, n->kwnames, n->kwargs.n * sizeof *names);
            names[n->kwargs.n] = expect_name(P);
            n->kwnames = names;
            next(P);
            jnodes_push(P->a, &n->kwargs, parse_expr(P));
        } else {
            if (n->kwargs.n)
                ja_fail(P->a, peek(P)->line, "a positional argument after a keyword argument");
            jnodes_push(P->a, &n->args, parse_expr(P));
        }
    }
    next(P);
}

/* The items of a list [a, b] or a dict {k: v} literal up to close (a
 * trailing comma allowed); a dict's keys go to args, its values to
 * kwargs. */
static jnode *parse_display(parser *P, jnode *n, const char *close)
{
    while (!is_op(P, close)) {
        if (n->args.n)
            expect_op(P, ",");
        if (is_op(P, close))
            break;
        jnodes_push(P->a, &n->args, parse_expr(P));
        if (n->kind == JN_DICT) {
            expect_op(P, ":");
            jnodes_push(P->a, &n->kwargs, parse_expr(P));
        }
    }
    next(P);
    return n;
}

/* f(args): a call of the value n */
static jnode *parse_call(parser *P, jnode *n)
{
    jnode *m = mk(P, JN_CALL, peek(P)->line);
    m->a = n;
    parse_args(P, m);
    return m;
}

static jnode *parse_primary(parser *P)
{
    const jtok *t = peek(P);
    int line = t->line;
    jnode *n;
    if (t->kind == JT_NAME) {
        next(P);
        if (tok_is(t, JT_NAME, "true") || tok_is(t, JT_NAME, "True") || tok_is(t, JT_NAME, "false") ||
            tok_is(t, JT_NAME, "False")) {
            n = mk(P, JN_LIT, line);
            n->lit = jv_bool(t->s[0] == 't' || t->s[0] == 'T');
        } else if (tok_is(t, JT_NAME, "none") || tok_is(t, JT_NAME, "None")) {
            n = mk(P, JN_LIT, line);
            n->lit = &JV_NONE_V;
        } else {
            if (is_reserved(t))
                ja_fail(P->a, line, "unexpected '%.*s'", (int)t->n, t->s);
            n = mk(P, JN_NAME, line);
            n->name = ja_strndup(P->a, t->s, t->n);
        }
        return n;
    }
    if (t->kind == JT_STRING) { /* adjacent literals join, as in Python */
        jbuf b = {0};
        while (peek(P)->kind == JT_STRING) {
            jb_put(P->a, line, &b, peek(P)->s, peek(P)->n);
            next(P);
        }
        n = mk(P, JN_LIT, line);
        n->lit = jv_str_nocopy(P->a, b.s ? b.s : "", b.n);
        return n;
    }
    if (t->kind == JT_INT || t->kind == JT_FLOAT) {
        next(P);
        n = mk(P, JN_LIT, line);
        n->lit = t->kind == JT_INT ? jv_int(P->a, t->i) : jv_float(P->a, t->f);
        return n;
    }
    if (tok_is(t, JT_OP, "(")) {
        next(P);
        if (is_op(P, ")")) {
            next(P);
            return mk(P, JN_TUPLE, line);
        }
        jnode *first = parse_expr(P);
        if (!is_op(P, ",")) {
            expect_op(P, ")");
            return first;
        }
        n = mk(P, JN_TUPLE, line);
        jnodes_push(P->a, &n->args, first);
        while (is_op(P, ",")) {
            next(P);
            if (is_op(P, ")"))
                break;
            jnodes_push(P->a, &n->args, parse_expr(P));
        }
        expect_op(P, ")");
        return n;
    }
    if (tok_is(t, JT_OP, "[") || tok_is(t, JT_OP, "{")) {
        int list = tok_is(t, JT_OP, "[");
        next(P);
        return parse_display(P, mk(P, list ? JN_LIST : JN_DICT, line), list ? "]" : "}");
    }
    ja_fail(P->a, line, "unexpected %s", describe(P, t));
}

/* x[...]: an item or a slice a:b:c */
static jnode *parse_subscript(parser *P, jnode *obj)
{
    int line = peek(P)->line;
    expect_op(P, "[");
    jnode *parts[3] = {NULL, NULL, NULL};
    int colons = 0;
    for (;;) {
        if (is_op(P, "]"))
            break;
        if (is_op(P, ":")) {
            if (++colons > 2)
                ja_fail(P->a, line, "a slice with more than two ':'");
            next(P);
            continue;
        }
        if (parts[colons])
            ja_fail(P->a, line, "expected ':' or ']' in a subscript");
        parts[colons] = parse_expr(P);
        if (is_op(P, ","))
            ja_fail(P->a, line, "a tuple subscript x[a, b] is not supported");
    }
    next(P);
    jnode *n = mk(P, colons ? JN_SLICE : JN_ITEM, line);
    n->a = obj;
    if (!colons && !parts[0])
        ja_fail(P->a, line, "an empty subscript []");
    n->b = parts[0];
    if (colons) {
        n->c = parts[1];
        jnodes_push(P->a, &n->args, parts[2]); /* the step, possibly NULL */
    }
    return n;
}

static jnode *parse_postfix(parser *P, jnode *n)
{
    for (;;) {
        if (is_op(P, ".")) {
            next(P);
            const jtok *t = peek(P);
            jnode *m = mk(P, JN_ATTR, t->line);
            if (t->kind == JT_INT) { /* x.0 is x[0] */
                m->kind = JN_ITEM;
                m->b = mk(P, JN_LIT, t->line);
                m->b->lit = jv_int(P->a, t->i);
                next(P);
            } else {
                m->name = expect_name(P);
            }
            m->a = n;
            n = m;
        } else if (is_op(P, "[")) {
            n = parse_subscript(P, n);
        } else if (is_op(P, "(")) {
            n = parse_call(P, n);
        } else {
            return n;
        }
    }
}

/* value | filter(args) ..., value is [not] test [arg] */
static jnode *parse_filters(parser *P, jnode *n)
{
    for (;;) {
        if (is_op(P, "|")) {
            next(P);
            int line = peek(P)->line;
            const char *name = expect_name(P);
            while (is_op(P, ".")) { /* dotted filter names */
                next(P);
                ja_fail(P->a, line, "the filter '%s.%s' is not supported", name, expect_name(P));
            }
            if (!jinja_filter_known(name))
                ja_fail(P->a, line, "the filter '%s' is not supported", name);
            jnode *m = mk(P, JN_FILTER, line);
            m->name = name;
            m->a = n;
            if (is_op(P, "("))
                parse_args(P, m);
            n = m;
        } else if (is_name(P, "is")) {
            next(P);
            int line = peek(P)->line, negated = 0;
            if (is_name(P, "not")) {
                next(P);
                negated = 1;
            }
            const jtok *t = peek(P);
            const char *name;
            if (tok_is(t, JT_NAME, "none") || tok_is(t, JT_NAME, "true") || tok_is(t, JT_NAME, "false") ||
                tok_is(t, JT_NAME, "in")) {
                name = ja_strndup(P->a, t->s, t->n);
                next(P);
            } else {
                name = expect_name(P);
            }
            if (!jinja_test_known(name))
                ja_fail(P->a, line, "the test 'is %s' is not supported", name);
            jnode *m = mk(P, JN_TEST, line);
            m->name = name;
            m->negated = negated;
            m->a = n;
            if (is_op(P, "(")) {
                parse_args(P, m);
            } else {
                /* "x is divisibleby 3": one argument without parentheses */
                const jtok *u = peek(P);
                if (u->kind == JT_STRING || u->kind == JT_INT || u->kind == JT_FLOAT ||
                    (u->kind == JT_NAME && !is_reserved(u)) || tok_is(u, JT_OP, "[") || tok_is(u, JT_OP, "{")) {
                    jnodes_push(P->a, &m->args, parse_primary(P));
                    m->args.v[0] = parse_postfix(P, m->args.v[0]);
                }
            }
            n = m;
        } else if (is_op(P, "(")) {
            n = parse_call(P, n);
        } else {
            return n;
        }
    }
}

static jnode *parse_unary(parser *P, int with_filter)
{
    const jtok *t = peek(P);
    enter(P, t->line);
    jnode *n;
    if (tok_is(t, JT_OP, "-") || tok_is(t, JT_OP, "+")) {
        next(P);
        n = mk(P, t->s[0] == '-' ? JN_NEG : JN_POS, t->line);
        n->a = parse_unary(P, 0);
    } else {
        n = parse_postfix(P, parse_primary(P));
    }
    if (with_filter)
        n = parse_filters(P, n);
    P->depth--;
    return n;
}

static jnode *bin(parser *P, const char *op, int line, jnode *x, jnode *y)
{
    jnode *n = mk(P, JN_BIN, line);
    n->name = op;
    n->a = x;
    n->b = y;
    return n;
}

static jnode *parse_pow(parser *P)
{
    jnode *n = parse_unary(P, 1);
    while (is_op(P, "**")) {
        int line = next(P)->line;
        n = bin(P, "**", line, n, parse_unary(P, 1));
    }
    return n;
}

static jnode *parse_mul(parser *P)
{
    jnode *n = parse_pow(P);
    while (is_op(P, "*") || is_op(P, "/") || is_op(P, "//") || is_op(P, "%")) {
        const jtok *t = next(P);
        n = bin(P, ja_strndup(P->a, t->s, t->n), t->line, n, parse_pow(P));
    }
    return n;
}

static jnode *parse_concat(parser *P)
{
    jnode *n = parse_mul(P);
    while (is_op(P, "~")) {
        int line = next(P)->line;
        n = bin(P, "~", line, n, parse_mul(P));
    }
    return n;
}

static jnode *parse_add(parser *P)
{
    jnode *n = parse_concat(P);
    while (is_op(P, "+") || is_op(P, "-")) {
        const jtok *t = next(P);
        n = bin(P, t->s[0] == '+' ? "+" : "-", t->line, n, parse_concat(P));
    }
    return n;
}

static jnode *parse_compare(parser *P)
{
    jnode *n = parse_add(P);
    int compared = 0;
    for (;;) {
        const jtok *t = peek(P);
        const char *op = NULL;
        static const char *const ops[] = {"==", "!=", "<", "<=", ">", ">="};
        for (size_t i = 0; i < sizeof ops / sizeof *ops; i++)
            if (tok_is(t, JT_OP, ops[i]))
                op = ops[i];
        if (op) {
            next(P);
        } else if (tok_is(t, JT_NAME, "in")) {
            next(P);
            op = "in";
        } else if (tok_is(t, JT_NAME, "not") && tok_is(&P->t[P->pos + 1], JT_NAME, "in")) {
            next(P);
            next(P);
            op = "not in";
        } else {
            return n;
        }
        if (compared++)
            ja_fail(P->a, t->line, "chained comparisons (a < b < c) are not supported");
        n = bin(P, op, t->line, n, parse_add(P));
    }
}

static jnode *parse_not(parser *P)
{
    if (is_name(P, "not")) {
        int line = next(P)->line;
        enter(P, line);
        jnode *n = mk(P, JN_NOT, line);
        n->a = parse_not(P);
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

/* left-associative "x and y and z" / "x or y": word joins operands parsed by
 * operand, into nodes of kind */
static jnode *parse_chain(parser *P, const char *word, jn_kind kind, jnode *(*operand)(parser *))
{
    jnode *n = operand(P);
    while (is_name(P, word)) {
        int line = next(P)->line;
        jnode *m = mk(P, kind, line);
        m->a = n;
        m->b = operand(P);
        n = m;
    }
    return n;
}

static jnode *parse_and(parser *P) { return parse_chain(P, "and", JN_AND, parse_not); }

static jnode *parse_or(parser *P) { return parse_chain(P, "or", JN_OR, parse_and); }

/* a if cond [else b] */
static jnode *parse_expr(parser *P)
{
    enter(P, peek(P)->line);
    jnode *n = parse_or(P);
    while (is_name(P, "if")) {
        int line = next(P)->line;
        jnode *m = mk(P, JN_COND, line);
        m->a = n;
        m->b = parse_or(P);
        if (is_name(P, "else")) {
            next(P);
            m->c = parse_expr(P);
        }
        n = m;
    }
    P->depth--;
    return n;
}

/* ---- statements ---- */

static jnodes parse_body(parser *P, const char *const *until, const char **found);

/* After an if's or a for's body ended at `found`: an else body up to
 * end_word, then the closing tag. */
static void parse_else(parser *P, jnode *n, const char *found, const char *end_word)
{
    if (!strcmp(found, "else")) {
        expect_block_end(P);
        const char *const end[] = {end_word, NULL};
        n->orelse = parse_body(P, end, &found);
    }
    expect_block_end(P);
}

static jnode *parse_if(parser *P, int line)
{
    static const char *const until[] = {"elif", "else", "endif", NULL};
    jnode *n = mk(P, JN_IF, line);
    n->a = parse_expr(P);
    expect_block_end(P);
    const char *found;
    n->body = parse_body(P, until, &found);
    if (!strcmp(found, "elif")) {
        int l = peek(P)->line;
        jnodes_push(P->a, &n->orelse, parse_if(P, l));
        return n; /* the nested if consumed endif */
    }
    parse_else(P, n, found, "endif");
    return n;
}

static jnode *parse_for(parser *P, int line)
{
    jnode *n = mk(P, JN_FOR, line);
    do {
        if (n->args.n)
            next(P);
        jnode *t = mk(P, JN_NAME, peek(P)->line);
        t->name = expect_name(P);
        jnodes_push(P->a, &n->args, t);
    } while (is_op(P, ","));
    if (!is_name(P, "in"))
        ja_fail(P->a, peek(P)->line, "expected 'in' in a for loop, found %s", describe(P, peek(P)));
    next(P);
    /* the iterable stops before a loop filter's "if" (no conditional
     * expression here, as in Jinja) */
    n->a = parse_or(P);
    if (is_name(P, "if")) {
        next(P);
        n->b = parse_expr(P);
    }
    if (is_name(P, "recursive"))
        ja_fail(P->a, peek(P)->line, "recursive for loops are not supported");
    expect_block_end(P);
    static const char *const until[] = {"else", "endfor", NULL};
    const char *found;
    P->loops++;
    n->body = parse_body(P, until, &found);
    P->loops--;
    parse_else(P, n, found, "endfor");
    return n;
}

static jnode *parse_set(parser *P, int line)
{
    jnode *n = mk(P, JN_SET, line);
    n->name = expect_name(P);
    if (is_op(P, ".")) {
        next(P);
        n->kind = JN_SET_ATTR;
        n->a = mk(P, JN_NAME, line);
        n->a->name = n->name;
        n->name = expect_name(P);
    } else if (is_op(P, ",")) {
        ja_fail(P->a, line, "{%% set a, b = ... %%} (unpacking) is not supported");
    }
    if (peek(P)->kind == JT_BLOCK_END && n->kind == JN_SET) { /* {% set x %}...{% endset %} */
        next(P);
        n->kind = JN_SET_BLOCK;
        static const char *const end[] = {"endset", NULL};
        const char *found;
        n->body = parse_body(P, end, &found);
        expect_block_end(P);
        return n;
    }
    if (is_op(P, "|"))
        ja_fail(P->a, line, "a filtered {%% set %%} block is not supported");
    expect_op(P, "=");
    n->b = parse_expr(P);
    expect_block_end(P);
    return n;
}

static jnode *parse_statement(parser *P)
{
    int line = next(P)->line; /* {% */
    const jtok *t = peek(P);
    if (t->kind != JT_NAME)
        ja_fail(P->a, line, "expected a tag name after '{%%', found %s", describe(P, t));
    enter(P, line);
    jnode *n;
    if (tok_is(t, JT_NAME, "if")) {
        next(P);
        n = parse_if(P, line);
    } else if (tok_is(t, JT_NAME, "for")) {
        next(P);
        n = parse_for(P, line);
    } else if (tok_is(t, JT_NAME, "set")) {
        next(P);
        n = parse_set(P, line);
    } else if (tok_is(t, JT_NAME, "break") || tok_is(t, JT_NAME, "continue")) {
        next(P);
        if (!P->loops)
            ja_fail(P->a, line, "{%% %.*s %%} outside a for loop", (int)t->n, t->s);
        n = mk(P, t->s[0] == 'b' ? JN_BREAK : JN_CONTINUE, line);
        expect_block_end(P);
    } else if (tok_is(t, JT_NAME, "generation")) {
        /* transformers' AssistantTracker: renders its body */
        next(P);
        expect_block_end(P);
        n = mk(P, JN_GENERATION, line);
        static const char *const end[] = {"endgeneration", NULL};
        const char *found;
        n->body = parse_body(P, end, &found);
        expect_block_end(P);
    } else {
        ja_fail(P->a, line, "the {%% %.*s %%} tag is not supported", (int)t->n, t->s);
    }
    P->depth--;
    return n;
}

/* Statements up to a {% name %} of until (left at name, *found set) or the
 * end of the template (until NULL). */
static jnodes parse_body(parser *P, const char *const *until, const char **found)
{
    jnodes body = {0};
    int line = peek(P)->line;
    for (;;) {
        const jtok *t = peek(P);
        if (t->kind == JT_EOF) {
            if (until)
            {
                size_t k = 0;
                while (until[k + 1])
                    k++;
                ja_fail(P->a, line, "the block opened here is not closed (expected {%% %s %%})", until[k]);
            }
            return body;
        }
        if (t->kind == JT_DATA) {
            jnode *n = mk(P, JN_DATA, t->line);
            n->lit = jv_str_nocopy(P->a, t->s, t->n);
            jnodes_push(P->a, &body, n);
            next(P);
        } else if (t->kind == JT_VAR_BEGIN) {
            next(P);
            jnode *n = mk(P, JN_OUTPUT, t->line);
            n->a = parse_expr(P);
            if (peek(P)->kind != JT_VAR_END)
                ja_fail(P->a, peek(P)->line, "expected '}}', found %s", describe(P, peek(P)));
            next(P);
            jnodes_push(P->a, &body, n);
        } else if (t->kind == JT_BLOCK_BEGIN) {
            const jtok *name = &P->t[P->pos + 1];
            for (size_t i = 0; until && until[i]; i++)
                if (tok_is(name, JT_NAME, until[i])) {
                    next(P);
                    next(P);
                    *found = until[i];
                    return body;
                }
            static const char *const closers[] = {"elif", "else", "endif", "endfor", "endset", "endgeneration",
                                                  "endmacro", "endcall", "endfilter", "endblock", "endraw"};
            for (size_t i = 0; i < sizeof closers / sizeof *closers; i++)
                if (tok_is(name, JT_NAME, closers[i]))
                    ja_fail(P->a, name->line, "unexpected {%% %s %%}", closers[i]);
            jnodes_push(P->a, &body, parse_statement(P));
        } else {
            ja_fail(P->a, t->line, "unexpected %s", describe(P, t));
        }
    }
}

jnodes jinja_parse_tokens(jarena *a, const jtok *toks, size_t n_toks)
{
    parser P = {.a = a, .t = toks, .n = n_toks};
    return parse_body(&P, NULL, NULL);
}
