/* backend_null.c: a backend that computes nothing and only counts what it
 * is asked to allocate.  `shardtune plan` runs the real FSDP schedule of one
 * optimizer step on it, so the planned peaks per category are exactly what
 * the allocations of a real run add up to, for any model size, without
 * memory or time.  Pointers it returns must never be dereferenced. */
#include <stdlib.h>

#include "backend.h"
#include "log.h"

typedef struct null_block {
    size_t n_bytes;
    mem_category cat;
    int on_host;
} null_block;

static void *null_alloc_at(backend *be, size_t n_bytes, mem_category cat, int on_host)
{
    null_block *b = xmalloc(sizeof *b);
    b->n_bytes = n_bytes;
    b->cat = cat;
    b->on_host = on_host;
    backend_account_alloc(be, n_bytes, cat, on_host);
    return b;
}

static void *null_alloc(backend *be, size_t n_bytes, mem_category cat) { return null_alloc_at(be, n_bytes, cat, 0); }
static void *null_alloc_host(backend *be, size_t n_bytes, mem_category cat) { return null_alloc_at(be, n_bytes, cat, 1); }

static void null_free(backend *be, void *p)
{
    if (!p)
        return;
    null_block *b = p;
    backend_account_free(be, b->n_bytes, b->cat, b->on_host);
    free(b);
}

static void null_bytes(backend *be, void *p, size_t n) {}
static void null_copy(backend *be, void *dst, const void *src, size_t n) {}
static void null_sync(backend *be) {}
static void null_matmul(backend *be, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc) {}
static void null_to_f32(backend *be, float *out, const void *in, storage_dtype dt, size_t n) {}
static void null_from_f32(backend *be, void *out, const float *in, storage_dtype dt, size_t n) {}
static void null_add(backend *be, float *y, const float *x, size_t n) {}
static void null_scale(backend *be, float *x, size_t n, float s) {}
static double null_sum_squares(backend *be, const float *x, size_t n) { return 0.0; }
static void null_embedding(backend *be, float *out, const int32_t *ids, const float *t, int n, int d) {}
static void null_rmsnorm_fwd(backend *be, float *o, float *r, const float *x, const float *w, int n, int d, float e) {}
static void null_rmsnorm_bwd(backend *be, float *dx, const float *g, const float *x, const float *w, const float *r,
                             int n, int d) {}
static void null_rope(backend *be, float *x, const int32_t *p, const float *f, int n, int h, int d, int inv) {}
static void null_attn_fwd(backend *be, float *o, float *l, const float *q, const float *k, const float *v,
                          const int32_t *s, int b, int t, int h, int kv, int d) {}
static void null_attn_bwd(backend *be, float *dq, float *dk, float *dv, const float *g, const float *o,
                          const float *l, const float *q, const float *k, const float *v, const int32_t *s, int b,
                          int t, int h, int kv, int d) {}
static void null_attn_decode(backend *be, float *o, const float *q, const float *k, const float *v, int nq, int p0,
                             int nkv, int h, int kvh, int d) {}
static void null_swiglu_fwd(backend *be, float *o, const float *g, const float *u, size_t n) {}
static void null_swiglu_bwd(backend *be, float *dg, float *du, const float *o, const float *g, const float *u,
                            size_t n) {}
static void null_dropout(backend *be, float *o, const float *x, size_t n, float p, uint64_t key) {}
static void null_dora_norm(backend *be, float *nrm, float *g, const float *m, const float *w, int r, int c) {}
static void null_scale_cols(backend *be, float *y, const float *x, const float *g, float o, int n, int d, int acc) {}
static void null_col_dot(backend *be, float *o, const float *a, const float *b, const float *dv, int n, int d) {}
static double null_xent(backend *be, float *dh, float *lg, const float *h, const float *w, const int32_t *t, int n,
                        int d, int v, float s) { return 0.0; }
static void null_adamw(backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                       float b2, float eps, float wd, int step) {}
static void null_destroy(backend *be) { free(be); }

backend *backend_null_create(void)
{
    backend *be = xcalloc(1, sizeof *be);
    be->name = "plan";
    be->alloc = null_alloc;
    be->alloc_host = null_alloc_host;
    be->free = null_free;
    be->zero = null_bytes;
    be->copy_to_device = null_copy;
    be->copy_to_host = null_copy;
    be->copy = null_copy;
    be->synchronize = null_sync;
    be->matmul = null_matmul;
    be->to_f32 = null_to_f32;
    be->from_f32 = null_from_f32;
    be->add = null_add;
    be->scale = null_scale;
    be->sum_squares = null_sum_squares;
    be->embedding_fwd = null_embedding;
    be->rmsnorm_fwd = null_rmsnorm_fwd;
    be->rmsnorm_bwd = null_rmsnorm_bwd;
    be->rope = null_rope;
    be->attention_fwd = null_attn_fwd;
    be->attention_bwd = null_attn_bwd;
    be->attention_decode = null_attn_decode;
    be->swiglu_fwd = null_swiglu_fwd;
    be->swiglu_bwd = null_swiglu_bwd;
    be->dropout = null_dropout;
    be->dora_norm = null_dora_norm;
    be->scale_cols = null_scale_cols;
    be->col_dot = null_col_dot;
    be->lm_head_xent = null_xent;
    be->adamw = null_adamw;
    be->destroy = null_destroy;
    return be;
}
