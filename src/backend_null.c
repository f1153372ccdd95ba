/* backend_null.c: a backend that computes nothing and only counts what it
 * is asked to allocate.  `shardtune plan` runs the real FSDP schedule of one
 * optimizer step on it, so the planned peaks per category are exactly what
 * the allocations of a real run add up to, for any model size, without
 * memory or time.  Pointers it returns must never be dereferenced.
 *
 * Three layouts.  The CPU backend's: every op works in the caller's buffers;
 * in its bf16 mode (backend_null_create_cpu_bf16) the residual stream and
 * the gathered linear weights are bf16.
 * The CUDA backend's (backend_null_create_cuda): the same activation_dtype
 * as backend_cuda_create reports for the same bf16 flag (model.c keeps the
 * residual stream in it), and the scratch that the CUDA ops keep per slot
 * (cuda/cuda_internal.h: a slot grows to the largest request and lives until
 * the backend ends), requested by the same ops with the same sizes.  Those
 * sizes restate cuda/attention_cuda.cu, xent_cuda.cu, elementwise_cuda.cu and
 * dequant4_cuda.cu
 * (the plugin cannot be loaded without a device); tests/gpu/plan_matches_cuda.sh
 * holds the two to the byte on the CPU emulation of CUDA. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "weight4.h"

typedef struct null_block {
    size_t n_bytes;
    mem_category cat;
    int on_host;
    struct null_block *prev, *next; /* live blocks, for backend_null_on_device */
} null_block;

/* the CUDA backend's scratch slots (enum cuda_scratch_slot) */
enum { SLOT_ATTN_S, SLOT_ATTN_DP, SLOT_ATTN_D, SLOT_XENT, SLOT_XENT_GRAD, SLOT_ROW_LOSS, SLOT_REDUCE, SLOT_N };

typedef struct null_impl {
    null_block live; /* list head */
    int cuda, bf16;
    void *scratch[SLOT_N];
    size_t scratch_bytes[SLOT_N];
    void *quant4_tables;
} null_impl;

static null_impl *impl_of(backend *be) { return be->impl; }

static void *null_alloc_at(backend *be, size_t n_bytes, mem_category cat, int on_host)
{
    null_impl *im = impl_of(be);
    null_block *b = xmalloc(sizeof *b);
    b->n_bytes = n_bytes;
    b->cat = cat;
    b->on_host = on_host;
    b->prev = &im->live;
    b->next = im->live.next;
    if (b->next)
        b->next->prev = b;
    im->live.next = b;
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
    b->prev->next = b->next;
    if (b->next)
        b->next->prev = b->prev;
    backend_account_free(be, b->n_bytes, b->cat, b->on_host);
    free(b);
}

int backend_null_on_device(backend *be, const void *p)
{
    for (const null_block *b = impl_of(be)->live.next; b; b = b->next)
        if (b == p)
            return !b->on_host;
    return 0; /* the caller's own memory: host */
}

/* cuda_scratch: a slot is replaced by a larger block when a request
 * outgrows it (the old one freed first), else reused. */
static void scratch(backend *be, int slot, size_t n_bytes)
{
    null_impl *im = impl_of(be);
    if (!im->cuda || im->scratch_bytes[slot] >= n_bytes)
        return;
    null_free(be, im->scratch[slot]);
    im->scratch[slot] = null_alloc(be, n_bytes, MEM_ACTIVATIONS);
    im->scratch_bytes[slot] = n_bytes;
}

/* cuda_scratch_budget: the score block and logits chunk bound */
static size_t scratch_budget(void)
{
    const char *env = getenv("SHARDTUNE_CUDA_SCRATCH_KIB");
    return env && atol(env) > 0 ? (size_t)atol(env) << 10 : (size_t)256 << 20;
}

/* cuda_flash_usable: the fused bf16 kernels, which keep no scratch */
static int flash_usable(backend *be, int head_dim)
{
    const char *choice = getenv("SHARDTUNE_CUDA_ATTENTION");
    return impl_of(be)->bf16 && head_dim % 16 == 0 && head_dim <= 128 && !(choice && strcmp(choice, "blocked") == 0);
}

/* attention_cuda.cu's score block: query_block rows over all KV heads */
static size_t score_block_bytes(int seq, int n_kv_heads)
{
    size_t qb = scratch_budget() / ((size_t)seq * n_kv_heads * sizeof(float));
    qb = qb > 1024 ? 1024 : qb < 16 ? 16 : qb / 16 * 16;
    if (qb > (size_t)seq)
        qb = (size_t)seq;
    return qb * seq * n_kv_heads * sizeof(float);
}

static void null_bytes(backend *be, void *p, size_t n) {}
static void null_copy(backend *be, void *dst, const void *src, size_t n) {}
static void null_sync(backend *be) {}
static void null_matmul(backend *be, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                        const float *b, int ldb, float beta, float *c, int ldc) {}
/* dequant4_cuda.cu: the 4-bit code tables (16 NF4, 16 FP4, 256 dynamic
 * values, fp32) go to the device on the first 4-bit widening and stay */
static void null_to_f32(backend *be, float *out, const void *in, storage_dtype dt, size_t n)
{
    null_impl *im = impl_of(be);
    if (im->cuda && n && weight4_is(dt) && !im->quant4_tables)
        im->quant4_tables = null_alloc(be, (16 + 16 + 256) * sizeof(float), MEM_ACTIVATIONS);
}
static void null_from_f32(backend *be, void *out, const float *in, storage_dtype dt, size_t n) {}
static void null_to_bf16(backend *be, uint16_t *out, size_t ld, const void *in, storage_dtype dt, size_t rows,
                         size_t cols) {}
static void null_matmul_bf16_weight(backend *be, int tw, int m, int n, int k, const float *a, int lda, int k2,
                                    const float *a2, int lda2, const uint16_t *w, int ldw, float beta, float *c,
                                    int ldc) {}
static void null_lora_fuse_bf16(backend *be, uint16_t *w, int ldw, int out, int in, int r, const float *a,
                                const float *b, float scale) {}
static void null_add(backend *be, float *y, const float *x, size_t n) {}
static void null_scale(backend *be, float *x, size_t n, float s) {}
static double null_sum_squares(backend *be, const float *x, size_t n)
{
    if (n)
        scratch(be, SLOT_REDUCE, 512 * sizeof(double)); /* SUMSQ_BLOCKS partial sums */
    return 0.0;
}
static void null_embedding(backend *be, float *out, const int32_t *ids, const float *t, int n, int d) {}
static void null_rmsnorm_fwd(backend *be, float *o, float *r, const float *x, const float *w, int n, int d, float e) {}
static void null_rmsnorm_bwd(backend *be, float *dx, const float *g, const float *x, const float *w, const float *r,
                             int n, int d) {}
static void null_rope(backend *be, float *x, const int32_t *p, const float *f, int n, int h, int d, int inv) {}
static void null_attn_fwd(backend *be, float *o, float *l, const float *q, const float *k, const float *v,
                          const int32_t *s, int b, int t, int h, int kv, int d)
{
    if (!flash_usable(be, d))
        scratch(be, SLOT_ATTN_S, score_block_bytes(t, kv));
}
static void null_attn_bwd(backend *be, float *dq, float *dk, float *dv, const float *g, const float *o,
                          const float *l, const float *q, const float *k, const float *v, const int32_t *s, int b,
                          int t, int h, int kv, int d)
{
    scratch(be, SLOT_ATTN_D, (size_t)b * t * h * sizeof(float)); /* rowsum(dO * O) */
    if (flash_usable(be, d))
        return;
    scratch(be, SLOT_ATTN_S, score_block_bytes(t, kv));
    scratch(be, SLOT_ATTN_DP, score_block_bytes(t, kv));
}
static void null_attn_decode(backend *be, float *o, const float *q, const float *k, const float *v, int nq, int p0,
                             int nkv, int h, int kvh, int d)
{
    if (nq > 0 && nkv > 0)
        scratch(be, SLOT_ATTN_S, (size_t)nq * h * nkv * sizeof(float));
}
static void null_swiglu_fwd(backend *be, float *o, const float *g, const float *u, size_t n) {}
static void null_swiglu_bwd(backend *be, float *dg, float *du, const float *o, const float *g, const float *u,
                            size_t n) {}
static void null_dropout(backend *be, float *o, const float *x, size_t n, float p, uint64_t key) {}
static void null_dora_norm(backend *be, float *nrm, float *g, const float *m, const float *w, int r, int c) {}
static void null_scale_cols(backend *be, float *y, const float *x, const float *g, float o, int n, int d, int acc) {}
static void null_col_dot(backend *be, float *o, const float *a, const float *b, const float *dv, int n, int d) {}
static double null_xent(backend *be, float *dh, float *lg, const float *h, const float *w, const int32_t *t, int n,
                        int d, int v, float s)
{
    if (n <= 0)
        return 0.0;
    size_t chunk = scratch_budget() / ((size_t)v * sizeof(float)); /* logits rows at once */
    chunk = chunk < 1 ? 1 : chunk > (size_t)n ? (size_t)n : chunk;
    if (!lg)
        scratch(be, SLOT_XENT, chunk * v * sizeof(float));
    if (dh && lg)
        scratch(be, SLOT_XENT_GRAD, (size_t)n * v * sizeof(float));
    scratch(be, SLOT_ROW_LOSS, (size_t)n * sizeof(double));
    return 0.0;
}

static double null_xent_dw(backend *be, float *dh, float *dw, float *lg, const float *h, const float *w,
                           const int32_t *t, int n, int d, int v, float s)
{
    return null_xent(be, dh, lg, h, w, t, n, d, v, s); /* the same scratch */
}

static void null_embedding_bwd(backend *be, float *dt, const int32_t *ids, const float *g, int n, int d, int pad) {}
static void null_adamw(backend *be, float *p, const float *g, float *m, float *v, size_t n, float lr, float b1,
                       float b2, float eps, float wd, int step) {}
static void null_destroy(backend *be)
{
    null_impl *im = impl_of(be);
    for (int k = 0; k < SLOT_N; k++)
        null_free(be, im->scratch[k]);
    null_free(be, im->quant4_tables);
    while (im->live.next) /* blocks the caller never freed (the plan frees all) */
        null_free(be, im->live.next);
    free(im);
    free(be);
}

backend *backend_null_create(void)
{
    backend *be = xcalloc(1, sizeof *be);
    be->name = "plan";
    be->impl = xcalloc(1, sizeof(null_impl));
    be->activation_dtype = DT_F32;
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
    be->lm_head_xent_dw = null_xent_dw;
    be->embedding_bwd = null_embedding_bwd;
    be->adamw = null_adamw;
    be->destroy = null_destroy;
    return be;
}

backend *backend_null_create_cuda(int bf16)
{
    backend *be = backend_null_create();
    null_impl *im = impl_of(be);
    im->cuda = 1;
    im->bf16 = bf16;
    be->name = bf16 ? "plan (cuda, bf16)" : "plan (cuda, fp32)";
    be->activation_dtype = bf16 ? DT_BF16 : DT_F32; /* as backend_cuda_create */
    return be;
}

backend *backend_null_create_cpu_bf16(void)
{
    backend *be = backend_null_create();
    be->name = "plan (cpu, bf16)";
    /* as backend_cpu_create with bf16 */
    be->activation_dtype = be->weight_dtype = DT_BF16;
    be->matmul_bf16_weight = null_matmul_bf16_weight;
    be->lora_fuse_bf16 = null_lora_fuse_bf16;
    be->to_bf16 = null_to_bf16;
    return be;
}
