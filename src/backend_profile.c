/* backend_profile.c: a backend that times another one op by op
 * (SHARDTUNE_PROFILE=1, see backend_profile_wrap).
 *
 * Each op runs on the inner backend, which is then synchronized, so an op's
 * time includes its device work.  Waiting after every op takes away the
 * overlap of a GPU's queue with the host (and of collectives with compute),
 * so a profiled step is slower than a plain one; the shares still say where
 * the time goes, which is what a short session on a GPU needs to know.
 * Memory calls are passed through and the inner backend's accounting is
 * mirrored, so reports read the same numbers as without the wrapper. */
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"

enum {
    OP_MATMUL, OP_MATMUL_THIN, OP_TO_F32, OP_FROM_F32, OP_ADD, OP_SCALE, OP_SUM_SQUARES, OP_EMBEDDING, OP_RMSNORM_FWD,
    OP_RMSNORM_BWD, OP_ROPE, OP_ATTENTION_FWD, OP_ATTENTION_BWD, OP_ATTENTION_DECODE, OP_SWIGLU_FWD, OP_SWIGLU_BWD, OP_DROPOUT,
    OP_DORA_NORM, OP_SCALE_COLS, OP_COL_DOT, OP_LM_HEAD_XENT, OP_ADAMW, OP_COPY, OP_LM_HEAD_XENT_DW, OP_EMBEDDING_BWD,
    OP_TO_BF16, OP_LORA_FUSE_BF16, N_OPS
};

static const char *const op_names[N_OPS] = {
    "matmul", "matmul (thin)", "to_f32", "from_f32", "add", "scale", "sum_squares", "embedding_fwd", "rmsnorm_fwd",
    "rmsnorm_bwd", "rope", "attention_fwd", "attention_bwd", "attention_decode", "swiglu_fwd", "swiglu_bwd", "dropout",
    "dora_norm", "scale_cols", "col_dot", "lm_head_xent",
    "adamw", "copy (device)", "lm_head_xent_dw", "embedding_bwd", "to_bf16", "lora_fuse_bf16",
};

typedef struct profile {
    backend *inner;
    double seconds[N_OPS];
    long calls[N_OPS];
    double created;
} profile;

/* an adapter's rank, as the CPU's gemm_thin.h draws the line */
enum { THIN_SIDE = 16 };

static profile *prof(backend *be) { return be->impl; }
static backend *inner(backend *be) { return prof(be)->inner; }

/* The accounting lives in the inner backend; the wrapper shows a copy. */
static void mirror(backend *be)
{
    const backend *in = inner(be);
    memcpy(be->cur_bytes, in->cur_bytes, sizeof be->cur_bytes);
    memcpy(be->peak_bytes, in->peak_bytes, sizeof be->peak_bytes);
    memcpy(be->host_cur_bytes, in->host_cur_bytes, sizeof be->host_cur_bytes);
    memcpy(be->host_peak_bytes, in->host_peak_bytes, sizeof be->host_peak_bytes);
    be->peak_total_bytes = in->peak_total_bytes;
    be->allocator_peak_bytes = in->allocator_peak_bytes;
}

/* Runs `call` on the inner backend `in`, waits for it, and books the time. */
#define TIMED(op, call)                                                                                    \
    do {                                                                                                   \
        profile *p_ = prof(be);                                                                            \
        backend *in = p_->inner;                                                                           \
        const double t0_ = monotonic_seconds();                                                            \
        call;                                                                                              \
        in->synchronize(in);                                                                               \
        p_->seconds[op] += monotonic_seconds() - t0_;                                                      \
        p_->calls[op]++;                                                                                   \
    } while (0)

static void *p_alloc(backend *be, size_t n, mem_category cat)
{
    void *p = inner(be)->alloc(inner(be), n, cat);
    mirror(be);
    return p;
}

static void *p_alloc_host(backend *be, size_t n, mem_category cat)
{
    void *p = inner(be)->alloc_host(inner(be), n, cat);
    mirror(be);
    return p;
}

static void p_free(backend *be, void *p)
{
    inner(be)->free(inner(be), p);
    mirror(be);
}

static void p_zero(backend *be, void *p, size_t n) { inner(be)->zero(inner(be), p, n); }
static void p_copy_to_device(backend *be, void *d, const void *s, size_t n) { inner(be)->copy_to_device(inner(be), d, s, n); }
static void p_copy_to_host(backend *be, void *d, const void *s, size_t n) { inner(be)->copy_to_host(inner(be), d, s, n); }
static void p_synchronize(backend *be) { inner(be)->synchronize(inner(be)); }
static void p_copy(backend *be, void *d, const void *s, size_t n) { TIMED(OP_COPY, in->copy(in, d, s, n)); }

/* products with a side of at most THIN_SIDE (an adapter's) are
 * memory-bound: booked apart from the full-size ones */
static int matmul_op(int m, int n, int k)
{
    return m <= THIN_SIDE || n <= THIN_SIDE || k <= THIN_SIDE ? OP_MATMUL_THIN : OP_MATMUL;
}

static void p_matmul(backend *be, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                     const float *b, int ldb, float beta, float *c, int ldc)
{
    TIMED(matmul_op(m, n, k), in->matmul(in, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc));
}

static void p_matmul_bf16_weight(backend *be, int tw, int m, int n, int k, const float *a, int lda, int k2,
                                 const float *a2, int lda2, const uint16_t *w, int ldw, float beta, float *c, int ldc)
{
    TIMED(matmul_op(m, n, k), in->matmul_bf16_weight(in, tw, m, n, k, a, lda, k2, a2, lda2, w, ldw, beta, c, ldc));
}

static void p_lora_fuse_bf16(backend *be, uint16_t *w, int ldw, int out, int n_in, int r, const float *a,
                             const float *b, float scale)
{
    TIMED(OP_LORA_FUSE_BF16, in->lora_fuse_bf16(in, w, ldw, out, n_in, r, a, b, scale));
}

static void p_to_bf16(backend *be, uint16_t *out, size_t ld, const void *x, storage_dtype dt, size_t rows,
                      size_t cols)
{
    TIMED(OP_TO_BF16, in->to_bf16(in, out, ld, x, dt, rows, cols));
}

static void p_to_f32(backend *be, float *out, const void *x, storage_dtype dt, size_t n)
{
    TIMED(OP_TO_F32, in->to_f32(in, out, x, dt, n));
}

static void p_from_f32(backend *be, void *out, const float *x, storage_dtype dt, size_t n)
{
    TIMED(OP_FROM_F32, in->from_f32(in, out, x, dt, n));
}

static void p_add(backend *be, float *y, const float *x, size_t n) { TIMED(OP_ADD, in->add(in, y, x, n)); }
static void p_scale(backend *be, float *x, size_t n, float s) { TIMED(OP_SCALE, in->scale(in, x, n, s)); }

static double p_sum_squares(backend *be, const float *x, size_t n)
{
    double r = 0.0;
    TIMED(OP_SUM_SQUARES, r = in->sum_squares(in, x, n));
    return r;
}

static void p_embedding_fwd(backend *be, float *out, const int32_t *ids, const float *table, int n, int dim)
{
    TIMED(OP_EMBEDDING, in->embedding_fwd(in, out, ids, table, n, dim));
}

static void p_rmsnorm_fwd(backend *be, float *out, float *rstd, const float *x, const float *w, int n, int dim,
                          float eps)
{
    TIMED(OP_RMSNORM_FWD, in->rmsnorm_fwd(in, out, rstd, x, w, n, dim, eps));
}

static void p_rmsnorm_bwd(backend *be, float *dx, const float *dout, const float *x, const float *w,
                          const float *rstd, int n, int dim)
{
    TIMED(OP_RMSNORM_BWD, in->rmsnorm_bwd(in, dx, dout, x, w, rstd, n, dim));
}

static void p_rope(backend *be, float *x, const int32_t *pos, const float *inv_freq, int n, int heads, int hd,
                   int inverse)
{
    TIMED(OP_ROPE, in->rope(in, x, pos, inv_freq, n, heads, hd, inverse));
}

static void p_attention_fwd(backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                            const int32_t *seg, int batch, int seq, int heads, int kv_heads, int hd)
{
    TIMED(OP_ATTENTION_FWD, in->attention_fwd(in, out, lse, q, k, v, seg, batch, seq, heads, kv_heads, hd));
}

static void p_attention_bwd(backend *be, float *dq, float *dk, float *dv, const float *dout, const float *out,
                            const float *lse, const float *q, const float *k, const float *v, const int32_t *seg,
                            int batch, int seq, int heads, int kv_heads, int hd)
{
    TIMED(OP_ATTENTION_BWD,
          in->attention_bwd(in, dq, dk, dv, dout, out, lse, q, k, v, seg, batch, seq, heads, kv_heads, hd));
}

static void p_attention_decode(backend *be, float *out, const float *q, const float *kc, const float *vc, int n_q,
                               int q_pos0, int n_kv, int heads, int kv_heads, int hd)
{
    TIMED(OP_ATTENTION_DECODE, in->attention_decode(in, out, q, kc, vc, n_q, q_pos0, n_kv, heads, kv_heads, hd));
}

static void p_swiglu_fwd(backend *be, float *out, const float *gate, const float *up, size_t n)
{
    TIMED(OP_SWIGLU_FWD, in->swiglu_fwd(in, out, gate, up, n));
}

static void p_swiglu_bwd(backend *be, float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                         size_t n)
{
    TIMED(OP_SWIGLU_BWD, in->swiglu_bwd(in, dgate, dup, dout, gate, up, n));
}

static void p_dropout(backend *be, float *out, const float *x, size_t n, float p, uint64_t key)
{
    TIMED(OP_DROPOUT, in->dropout(in, out, x, n, p, key));
}

static double p_lm_head_xent(backend *be, float *dh, float *logits, const float *h, const float *w,
                             const int32_t *targets, int n, int dim, int vocab, float grad_scale)
{
    double r = 0.0;
    TIMED(OP_LM_HEAD_XENT, r = in->lm_head_xent(in, dh, logits, h, w, targets, n, dim, vocab, grad_scale));
    return r;
}

static double p_lm_head_xent_dw(backend *be, float *dh, float *dw, float *logits, const float *h, const float *w,
                                const int32_t *targets, int n, int dim, int vocab, float grad_scale)
{
    double r = 0.0;
    TIMED(OP_LM_HEAD_XENT_DW, r = in->lm_head_xent_dw(in, dh, dw, logits, h, w, targets, n, dim, vocab, grad_scale));
    return r;
}

static void p_embedding_bwd(backend *be, float *dt, const int32_t *ids, const float *dout, int n, int dim, int pad)
{
    TIMED(OP_EMBEDDING_BWD, in->embedding_bwd(in, dt, ids, dout, n, dim, pad));
}

static void p_dora_norm(backend *be, float *norm, float *g, const float *m, const float *w, int rows, int cols)
{
    TIMED(OP_DORA_NORM, in->dora_norm(in, norm, g, m, w, rows, cols));
}

static void p_scale_cols(backend *be, float *y, const float *x, const float *g, float g_offset, int n, int d,
                         int accumulate)
{
    TIMED(OP_SCALE_COLS, in->scale_cols(in, y, x, g, g_offset, n, d, accumulate));
}

static void p_col_dot(backend *be, float *out, const float *a, const float *b, const float *div, int n, int d)
{
    TIMED(OP_COL_DOT, in->col_dot(in, out, a, b, div, n, d));
}

static void p_adamw(backend *be, float *param, const float *grad, float *m, float *v, size_t n, float lr, float b1,
                    float b2, float eps, float wd, int step)
{
    TIMED(OP_ADAMW, in->adamw(in, param, grad, m, v, n, lr, b1, b2, eps, wd, step));
}

static void p_destroy(backend *be)
{
    inner(be)->destroy(inner(be));
    free(be->impl);
    free(be);
}

backend *backend_profile_wrap(backend *in)
{
    backend *be = xcalloc(1, sizeof *be);
    profile *p = xcalloc(1, sizeof *p);
    p->inner = in;
    p->created = monotonic_seconds();
    be->impl = p;
    be->name = in->name;
    be->activation_dtype = in->activation_dtype;
    be->weight_dtype = in->weight_dtype;
    be->alloc = p_alloc, be->alloc_host = p_alloc_host, be->free = p_free, be->zero = p_zero;
    be->copy_to_device = p_copy_to_device, be->copy_to_host = p_copy_to_host, be->copy = p_copy;
    be->synchronize = p_synchronize, be->matmul = p_matmul, be->to_f32 = p_to_f32, be->from_f32 = p_from_f32;
    be->add = p_add, be->scale = p_scale, be->sum_squares = p_sum_squares, be->embedding_fwd = p_embedding_fwd;
    be->rmsnorm_fwd = p_rmsnorm_fwd, be->rmsnorm_bwd = p_rmsnorm_bwd, be->rope = p_rope;
    be->attention_fwd = p_attention_fwd, be->attention_bwd = p_attention_bwd;
    be->attention_decode = p_attention_decode, be->swiglu_fwd = p_swiglu_fwd, be->swiglu_bwd = p_swiglu_bwd;
    be->dora_norm = p_dora_norm, be->scale_cols = p_scale_cols, be->col_dot = p_col_dot;
    be->dropout = p_dropout, be->lm_head_xent = p_lm_head_xent, be->adamw = p_adamw, be->destroy = p_destroy;
    be->lm_head_xent_dw = in->lm_head_xent_dw ? p_lm_head_xent_dw : NULL; /* NULL: not supported by inner */
    be->embedding_bwd = in->embedding_bwd ? p_embedding_bwd : NULL;
    be->matmul_bf16_weight = in->matmul_bf16_weight ? p_matmul_bf16_weight : NULL;
    be->to_bf16 = in->to_bf16 ? p_to_bf16 : NULL;
    be->lora_fuse_bf16 = in->lora_fuse_bf16 ? p_lora_fuse_bf16 : NULL;
    mirror(be);
    return be;
}

void backend_profile_report(backend *be)
{
    if (be->destroy != p_destroy)
        return;
    const profile *p = prof(be);
    double total = 0.0;
    for (int i = 0; i < N_OPS; i++)
        total += p->seconds[i];
    const double wall = monotonic_seconds() - p->created;
    log_info("profile (SHARDTUNE_PROFILE, %s backend, each op waited for): ops %.3f s of %.3f s since the backend "
             "was made; the rest is loading, collectives and host work",
             be->name, total, wall);
    log_info("  %-18s %9s %11s %7s", "op", "calls", "seconds", "share");
    for (int i = 0; i < N_OPS; i++)
        if (p->calls[i])
            log_info("  %-18s %9ld %11.4f %6.1f%%", op_names[i], p->calls[i], p->seconds[i],
                     total > 0 ? 100.0 * p->seconds[i] / total : 0.0);
}
