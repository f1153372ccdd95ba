/* jinja_internal.h: the pieces of the chat-template renderer (jinja.h):
 * arena, tokens, syntax tree and values, shared by jinja_lex.c,
 * jinja_parse.c, jinja_value.c, jinja_builtins.c and jinja_eval.c. */
#ifndef SHARDTUNE_JINJA_INTERNAL_H
#define SHARDTUNE_JINJA_INTERNAL_H

#include <setjmp.h>
#include <stddef.h>
#include <stdint.h>

#include "jinja.h"

/* Limits: a template is untrusted input. */
enum {
    JINJA_MAX_DEPTH = 100,                  /* nesting of expressions and blocks */
    JINJA_MAX_ITERATIONS = 100000,          /* loop iterations of one render, all loops */
    JINJA_MAX_OUTPUT = 64 << 20,            /* bytes of rendered text (and of any one string) */
    JINJA_MAX_ARENA = 512 << 20,            /* bytes of memory of one parse or one render */
    JINJA_MAX_SOURCE = 1 << 20,             /* bytes of template text */
};

/* Everything of a parse or a render is allocated in one arena and freed at
 * once; the arena's size is bounded.  Errors unwind to the entry point with
 * longjmp (the arena owns all memory, so nothing leaks). */
typedef struct jarena_block jarena_block;
typedef struct jarena {
    jarena_block *head;
    size_t used;
    errbuf *e;
    jmp_buf *fail;
} jarena;

void *ja_alloc(jarena *a, size_t n);
char *ja_strndup(jarena *a, const char *s, size_t n);
void ja_free_all(jarena *a);
/* Sets the error "chat template line N: ..." (no line when line <= 0) and
 * unwinds. */
_Noreturn void ja_fail(jarena *a, int line, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ---- tokens (jinja_lex.c) ---- */
typedef enum jtok_kind {
    JT_DATA, JT_VAR_BEGIN, JT_VAR_END, JT_BLOCK_BEGIN, JT_BLOCK_END,
    JT_NAME, JT_STRING, JT_INT, JT_FLOAT, JT_OP, JT_EOF
} jtok_kind;

typedef struct jtok {
    jtok_kind kind;
    int line;
    const char *s; /* data, name, decoded string or operator text */
    size_t n;
    int64_t i;
    double f;
} jtok;

/* The tokens of src with whitespace control, trim_blocks and lstrip_blocks
 * applied to the data between tags; comments dropped; ends with JT_EOF. */
jtok *jinja_lex(jarena *a, const char *src, size_t n, size_t *n_toks);

/* Python's str.isspace() for the character at s (bytes left: n): its length
 * in bytes, 0 when not whitespace. */
size_t jinja_space_len(const char *s, size_t n);
/* The same, for the character that ends s[0..n). */
size_t jinja_space_len_before(const char *s, size_t n);

/* ---- values (jinja_value.c) ---- */
typedef enum jv_kind { JV_UNDEF, JV_NONE, JV_BOOL, JV_INT, JV_FLOAT, JV_STR, JV_LIST, JV_DICT, JV_NS } jv_kind;

typedef struct jv jv;
struct jv {
    jv_kind kind;
    int tuple; /* a JV_LIST that is a Python tuple: (a, b) when printed */
    union {
        int b;
        int64_t i;
        double f;
        struct {
            const char *s;
            size_t n;
        } str;
        struct { /* JV_LIST; JV_DICT and JV_NS use keys too */
            jv **items;
            jv **keys;
            size_t n, cap;
        } seq;
    } u;
};

extern jv JV_UNDEFINED, JV_NONE_V, JV_TRUE_V, JV_FALSE_V;

jv *jv_int(jarena *a, int64_t i);
jv *jv_float(jarena *a, double f);
jv *jv_bool(int b);
jv *jv_str(jarena *a, const char *s, size_t n); /* copies */
jv *jv_str_nocopy(jarena *a, const char *s, size_t n);
jv *jv_list(jarena *a);
jv *jv_dict(jarena *a, jv_kind kind); /* JV_DICT or JV_NS */
void jv_push(jarena *a, jv *list, jv *item);
void jv_dict_set(jarena *a, jv *d, jv *key, jv *val);
jv *jv_dict_get(const jv *d, const jv *key);      /* NULL when absent */
jv *jv_dict_get_s(const jv *d, const char *key);  /* NULL when absent */
jv *jv_from_json(jarena *a, json_t *j);

int jv_truthy(const jv *v);
int jv_equal(const jv *x, const jv *y);
/* -1, 0, 1; fails (line) when Python could not order them. */
int jv_compare(jarena *a, int line, const jv *x, const jv *y);
const char *jv_type_name(const jv *v);

/* A growable byte buffer in the arena, bounded by JINJA_MAX_OUTPUT. */
typedef struct jbuf {
    char *s;
    size_t n, cap;
} jbuf;
void jb_put(jarena *a, int line, jbuf *b, const char *s, size_t n);
void jb_puts(jarena *a, int line, jbuf *b, const char *s);

/* str(v) as Jinja prints it ({{ v }}, ~, |string): Python's str(), "" for
 * undefined. */
void jv_to_text(jarena *a, int line, jbuf *b, const jv *v);
/* json.dumps(v, ensure_ascii=False, indent=indent, sort_keys=sort_keys) with
 * Python's separators (indent < 0: none). */
void jv_to_json(jarena *a, int line, jbuf *b, const jv *v, int indent, int sort_keys, int depth);
jv *jv_text(jarena *a, int line, const jv *v); /* str(v) as a value */

/* ---- syntax tree (jinja_parse.c) ---- */
typedef enum jn_kind {
    /* statements */
    JN_DATA, JN_OUTPUT, JN_IF, JN_FOR, JN_SET, JN_SET_ATTR, JN_SET_BLOCK, JN_BREAK, JN_CONTINUE, JN_GENERATION,
    /* expressions */
    JN_LIT, JN_NAME, JN_ATTR, JN_ITEM, JN_SLICE, JN_CALL, JN_FILTER, JN_TEST, JN_NEG, JN_POS, JN_NOT, JN_BIN,
    JN_AND, JN_OR, JN_COND, JN_LIST, JN_TUPLE, JN_DICT
} jn_kind;

typedef struct jnode jnode;
typedef struct jnodes {
    jnode **v;
    size_t n, cap;
} jnodes;

struct jnode {
    jn_kind kind;
    int line;
    const char *name;    /* variable, attribute, filter, test, operator; loop/set target */
    jnode *a, *b, *c;    /* operands; for: iterable, loop filter; if: condition */
    jnodes args;         /* call/filter/test arguments, list items, dict keys; for: targets */
    jnodes kwargs;       /* keyword arguments (values), dict values */
    const char **kwnames;
    jv *lit;
    jnodes body, orelse; /* block bodies */
    int negated;         /* "is not" */
};

void jnodes_push(jarena *a, jnodes *l, jnode *n);
/* The statements of the template. */
jnodes jinja_parse_tokens(jarena *a, const jtok *toks, size_t n_toks);

/* ---- filters, tests, methods, globals (jinja_builtins.c) ---- */
int jinja_filter_known(const char *name);
int jinja_test_known(const char *name);
int jinja_global_known(const char *name);

typedef struct jcall {
    jarena *a;
    int line;
    jv **args;
    size_t n_args;
    const char **kwnames;
    jv **kwargs;
    size_t n_kwargs;
} jcall;

jv *jinja_filter(const char *name, jv *value, const jcall *c);
int jinja_test(const char *name, jv *value, const jcall *c);
/* A method of value (str, dict) called with c; NULL when value has no such
 * method (the caller reports it). */
jv *jinja_method(jv *value, const char *name, const jcall *c);
/* A global function; *ok 0 when name is none. */
jv *jinja_global(const char *name, const jcall *c);
/* A dict or str method name: attribute access x.name on such values means the
 * method (Python's getattr wins over the item). */
int jinja_is_method(const jv *value, const char *name);

/* UTF-8 code points: number in s[0..n), byte offset of code point k. */
size_t jinja_utf8_len(const char *s, size_t n);
size_t jinja_utf8_offset(const char *s, size_t n, size_t k);

#endif
