/* backend_cpu.c: the reference backend.  fp32, matrix products from oneDNN
 * (gemm.c), the rest as plain loops parallelised with OpenMP.  Written for
 * clarity first: every other backend is checked against this one.  Under
 * bf16 (--bf16 on a CPU with bf16 instructions) every product rounds its
 * inputs to bf16 and accumulates in fp32 and the residual stream is kept in
 * bf16, as in the CUDA backend's bf16 mode; a gathered layer keeps its
 * linear weights in bf16 (rounded once, not by every product); everything
 * else stays fp32. */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cpu_vec.h"
#include "gemm.h"
#include "log.h"
#include "rng.h"
#include "weight4.h"

/* ---- memory: a small header in front of each block remembers its size and
 * category, so free() can account without the caller repeating them. ---- */

typedef struct cpu_block {
    size_t n_bytes;
    mem_category cat;
    int on_host;
    size_t pad; /* keeps the payload 32-byte aligned after the 32-byte header */
} cpu_block;

static void *cpu_alloc_at(backend *be, size_t n_bytes, mem_category cat, int on_host)
{
    void *raw = NULL;
    if (posix_memalign(&raw, 64, sizeof(cpu_block) + n_bytes + 64) != 0)
        die(EXIT_FAILURE_RUN, "cpu backend: out of memory allocating %zu bytes for %s", n_bytes,
            mem_category_names[cat]);
    cpu_block *blk = raw;
    blk->n_bytes = n_bytes;
    blk->cat = cat;
    blk->on_host = on_host;
    void *p = blk + 1;
    memset(p, 0, n_bytes);
    backend_account_alloc(be, n_bytes, cat, on_host);
    return p;
}

static void *cpu_alloc(backend *be, size_t n_bytes, mem_category cat) { return cpu_alloc_at(be, n_bytes, cat, 0); }
static void *cpu_alloc_host(backend *be, size_t n_bytes, mem_category cat) { return cpu_alloc_at(be, n_bytes, cat, 1); }

static void cpu_free(backend *be, void *p)
{
    if (!p)
        return;
    cpu_block *blk = (cpu_block *)p - 1;
    backend_account_free(be, blk->n_bytes, blk->cat, blk->on_host);
    free(blk);
}

static void cpu_zero(backend *be, void *p, size_t n_bytes) { memset(p, 0, n_bytes); }
static void cpu_copy(backend *be, void *dst, const void *src, size_t n_bytes) { memcpy(dst, src, n_bytes); }
static void cpu_synchronize(backend *be) {}

/* ---- linear algebra ---- */

/* The backend's precision for every product (cpu_impl): GEMM_F32, or
 * GEMM_BF16 under --bf16 on a CPU with bf16 instructions. */
typedef struct cpu_impl {
    gemm_precision prec;
} cpu_impl;

static gemm_precision precision_of(const backend *be) { return ((const cpu_impl *)be->impl)->prec; }

/* oneDNN threads each product itself over the OpenMP threads (called from
 * inside a parallel region, as attention does, it runs on the calling
 * thread alone).  Its split depends only on the shape and the thread
 * count, so results are reproducible run to run. */
static void cpu_matmul(backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    gemm(precision_of(be), trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void cpu_matmul_bf16_weight(backend *be, int trans_w, int m, int n, int k, const float *a, int lda, int k2,
                                   const float *a2, int lda2, const uint16_t *w, int ldw, float beta, float *c, int ldc)
{
    gemm_bf16_b_cat(trans_w, m, n, k, a, lda, k2, a2, lda2, w, ldw, beta, c, ldc);
}

static void cpu_lora_fuse_bf16(backend *be, uint16_t *w, int ldw, int out, int in, int r, const float *a,
                               const float *b, float scale)
{
    if (b) {
        float *sb = xmalloc((size_t)out * r * sizeof *sb);
        for (size_t i = 0; i < (size_t)out * r; i++)
            sb[i] = scale * b[i];
        gemm_round_rows_bf16_strided(w + in, (size_t)ldw, sb, (size_t)r, (size_t)out, (size_t)r);
        free(sb);
    }
    if (a)
        gemm_round_rows_bf16_strided(w + (size_t)out * ldw, (size_t)ldw, a, (size_t)in, (size_t)r, (size_t)in);
}

static void cpu_to_f32(backend *be, float *out, const void *in, storage_dtype dt, size_t n_elems)
{
    enum { CHUNK = 1 << 16 };
    size_t n_chunks = (n_elems + CHUNK - 1) / CHUNK;
    if (weight4_is(dt)) { /* a whole 4-bit tensor: codes, then its block state */
        storage_to_f32(dt, in, out, n_elems);
        return;
    }
    size_t width = storage_bytes(dt, 1);
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * CHUNK, n = n_elems - lo < CHUNK ? n_elems - lo : CHUNK;
        storage_to_f32(dt, (const unsigned char *)in + lo * width, out + lo, n);
    }
}

static void cpu_from_f32(backend *be, void *out, const float *in, storage_dtype dt, size_t n_elems)
{
    enum { CHUNK = 1 << 16 };
    size_t n_chunks = (n_elems + CHUNK - 1) / CHUNK, width = storage_bytes(dt, 1);
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * CHUNK, n = n_elems - lo < CHUNK ? n_elems - lo : CHUNK;
        storage_from_f32(dt, in + lo, (unsigned char *)out + lo * width, n);
    }
}

/* Row by row, in pieces through an fp32 buffer on the stack; bf16 storage
 * is copied (rounding it again changes nothing) and a 4-bit tensor, which
 * dequantizes only whole, goes through one fp32 copy of itself. */
static void cpu_to_bf16(backend *be, uint16_t *out, size_t ld_out, const void *in, storage_dtype dt, size_t rows,
                        size_t cols)
{
    enum { PIECE = 1 << 12 };
    if (weight4_is(dt)) {
        float *wide = xmalloc(rows * cols * sizeof *wide);
        storage_to_f32(dt, in, wide, rows * cols);
        gemm_round_rows_bf16_strided(out, ld_out, wide, cols, rows, cols);
        free(wide);
        return;
    }
    const size_t width = storage_bytes(dt, 1);
#pragma omp parallel for schedule(static)
    for (size_t r = 0; r < rows; r++) {
        const unsigned char *src = (const unsigned char *)in + r * cols * width;
        uint16_t *dst = out + r * ld_out;
        if (dt == DT_BF16) {
            memcpy(dst, src, cols * sizeof *dst);
            continue;
        }
        float wide[PIECE];
        for (size_t lo = 0; lo < cols; lo += PIECE) {
            const size_t n = cols - lo < PIECE ? cols - lo : PIECE;
            storage_to_f32(dt, src + lo * width, wide, n);
            storage_from_f32(DT_BF16, wide, dst + lo, n);
        }
    }
}

static void cpu_add(backend *be, float *y, const float *x, size_t n_elems)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n_elems; i++)
        y[i] += x[i];
}

static void cpu_scale(backend *be, float *x, size_t n_elems, float s)
{
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n_elems; i++)
        x[i] *= s;
}

/* Partial sums over a fixed number of blocks, added in order: the result
 * does not depend on the number of threads (bitwise-reproducible runs). */
enum { SUMSQ_BLOCKS = 64 };

static double cpu_sum_squares(backend *be, const float *x, size_t n_elems)
{
    double part[SUMSQ_BLOCKS];
    size_t per = (n_elems + SUMSQ_BLOCKS - 1) / SUMSQ_BLOCKS;
#pragma omp parallel for schedule(static)
    for (int blk = 0; blk < SUMSQ_BLOCKS; blk++) {
        size_t lo = (size_t)blk * per, hi = lo + per < n_elems ? lo + per : n_elems;
        double acc = 0.0;
        for (size_t i = lo; i < hi; i++)
            acc += (double)x[i] * (double)x[i];
        part[blk] = acc;
    }
    double total = 0.0;
    for (int blk = 0; blk < SUMSQ_BLOCKS; blk++)
        total += part[blk];
    return total;
}

/* ---- model ops ---- */

static void cpu_embedding_fwd(backend *be, float *out, const int32_t *ids, const float *table, int n,
                              int dim)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        memcpy(out + (size_t)i * dim, table + (size_t)ids[i] * dim, (size_t)dim * sizeof(float));
}

/* Columns in parallel, positions in order: the same sums at any thread count. */
static void cpu_embedding_bwd(backend *be, float *dtable, const int32_t *ids, const float *dout, int n, int dim,
                              int padding_idx)
{
#pragma omp parallel for schedule(static)
    for (int j = 0; j < dim; j++)
        for (int i = 0; i < n; i++)
            if (ids[i] != padding_idx)
                dtable[(size_t)ids[i] * dim + j] += dout[(size_t)i * dim + j];
}

/* A row per thread (cpu_vec.c): each row's sums have a fixed order, the
 * same at any thread count. */
static void cpu_rmsnorm_fwd(backend *be, float *out, float *rstd, const float *x, const float *w, int n,
                            int dim, float eps)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        rstd[i] = vec_rmsnorm_row(out + (size_t)i * dim, x + (size_t)i * dim, w, eps, (size_t)dim);
}

static void cpu_rmsnorm_bwd(backend *be, float *dx, const float *dout, const float *x, const float *w,
                            const float *rstd, int n, int dim)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++)
        vec_rmsnorm_bwd_row(dx + (size_t)i * dim, dout + (size_t)i * dim, x + (size_t)i * dim, w, rstd[i],
                            (size_t)dim);
}

/* The cosines and sines are computed per distinct position rather than per
 * token where positions repeat (the rows of a batch share them: sincos is
 * most of the op's cost), else per token (a few generated tokens at large
 * positions). */
static void cpu_rope(backend *be, float *x, const int32_t *pos, const float *inv_freq, int n, int n_heads,
                     int head_dim, int inverse)
{
    if (n <= 0)
        return;
    const int half = head_dim / 2;
    int32_t p_min = pos[0], p_max = pos[0];
    for (int i = 1; i < n; i++) {
        p_min = pos[i] < p_min ? pos[i] : p_min;
        p_max = pos[i] > p_max ? pos[i] : p_max;
    }
    const int by_pos = (int64_t)p_max - p_min < n;
    const int n_rows = by_pos ? p_max - p_min + 1 : n;
    float *cs = xmalloc((size_t)n_rows * half * sizeof *cs), *sn = xmalloc((size_t)n_rows * half * sizeof *sn);
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int t = 0; t < n_rows; t++) {
            const int32_t p = by_pos ? p_min + t : pos[t];
            for (int j = 0; j < half; j++) {
                float angle = (float)p * inv_freq[j];
                cs[(size_t)t * half + j] = cosf(angle);
                sn[(size_t)t * half + j] = inverse ? -sinf(angle) : sinf(angle);
            }
        }
#pragma omp for schedule(static)
        for (int i = 0; i < n; i++) {
            const size_t row = (size_t)(by_pos ? pos[i] - p_min : i) * half;
            for (int h = 0; h < n_heads; h++)
                vec_rope_rotate(x + ((size_t)i * n_heads + h) * head_dim, cs + row, sn + row, (size_t)half);
        }
    }
    free(cs);
    free(sn);
}

/* Attention as blocks of matrix products.  The work item is a (batch row,
 * KV head, block of QB queries): the block's queries of the `group` query
 * heads that share the KV head are packed into one [group*QB, head_dim]
 * matrix (row r*group + h: query i0+r of the group's head h), so that one
 * product serves all of them: fewer and taller products, each K/V operand
 * fetched (and, for transposed operands, repacked by oneDNN) once for the
 * group.  S = scale Q K^T over the keys up to the block's last query (the
 * causal part), soft-maxed in place, then O = P V.  Backward recomputes P
 * from the saved log-sum-exp (nothing quadratic is stored):
 * dP = dO V^T, dS = P (dP - rowsum(dO o O)), dQ = scale dS K,
 * dK += scale dS^T Q, dV += P^T dO.  One thread owns a (batch row, KV head)
 * in backward, so dK and dV need no atomics and every sum has a fixed
 * order.  Larger blocks measured slower (the score block leaves the
 * caches). */
enum { ATTN_QB = 64 };

/* Query i sees keys [lo[i], i]: the causal part of its segment.  Segments
 * are runs of equal ids (the documents of a packed row, then padding), so
 * lo[i] is where i's run starts; without seg, 0. */
static void attn_visible_from(int *lo, const int32_t *seg_row, int seq)
{
    for (int i = 0; i < seq; i++)
        lo[i] = !seg_row ? 0 : i > 0 && seg_row[i] == seg_row[i - 1] ? lo[i - 1] : i;
}

/* rows x width floats of src (row stride ld_src) into dst (row stride
 * ld_dst): packs a block's query rows of the group, and unpacks results. */
static void attn_copy_rows(float *dst, int ld_dst, const float *src, int ld_src, int rows, int width)
{
    for (int r = 0; r < rows; r++)
        memcpy(dst + (size_t)r * ld_dst, src + (size_t)r * ld_src, (size_t)width * sizeof(float));
}

/* Under bf16, one (batch, KV head)'s K and V rows rounded once for every
 * block and query head that uses them, rather than once a product (the
 * same bits: a product rounds its inputs the same way).  Per thread; NULL
 * buffers in fp32. */
typedef struct kv_bf16 {
    uint16_t *k, *v; /* [seq, head_dim] */
    int b, kh;       /* whose rows they hold; -1: none yet */
} kv_bf16;

static kv_bf16 kv_bf16_open(backend *be, int seq, int head_dim)
{
    kv_bf16 c = {NULL, NULL, -1, -1};
    if (precision_of(be) == GEMM_BF16) {
        c.k = xmalloc((size_t)seq * head_dim * sizeof *c.k);
        c.v = xmalloc((size_t)seq * head_dim * sizeof *c.v);
    }
    return c;
}

static void kv_bf16_load(kv_bf16 *c, const float *k, const float *v, int b, int kh, int seq, int ks, int head_dim)
{
    if (!c->k || (c->b == b && c->kh == kh))
        return;
    const size_t off = (size_t)b * seq * ks + (size_t)kh * head_dim;
    gemm_round_rows_bf16(c->k, k + off, (size_t)seq, (size_t)head_dim, (size_t)ks);
    gemm_round_rows_bf16(c->v, v + off, (size_t)seq, (size_t)head_dim, (size_t)ks);
    c->b = b, c->kh = kh;
}

static void kv_bf16_close(kv_bf16 *c)
{
    free(c->k);
    free(c->v);
}

/* C = alpha A op(X) + beta C with X the keys or values of (b, kh): its
 * bf16 copy where there is one (row stride head_dim), else x32 (row
 * stride ks). */
static void attn_matmul_kv(backend *be, int trans_x, int m, int n, int k, float alpha, const float *a, int lda,
                           const float *x32, int ks, const uint16_t *x16, int head_dim, float beta, float *c,
                           int ldc)
{
    if (x16)
        gemm_bf16_b(0, trans_x, m, n, k, alpha, a, lda, x16, head_dim, beta, c, ldc);
    else
        cpu_matmul(be, 0, trans_x, m, n, k, alpha, a, lda, x32, ks, beta, c, ldc);
}

/* One thread's buffers for a work item. */
typedef struct attn_scratch {
    float *qp, *gp; /* [group*QB, head_dim]: packed Q; packed O (fwd) or dO (bwd) */
    float *S, *dP;  /* [group*QB, seq] */
    float *D;       /* [group*QB] */
    int *lo;        /* [seq] */
    kv_bf16 kv;
} attn_scratch;

static attn_scratch attn_scratch_open(backend *be, int group, int seq, int head_dim, int backward)
{
    const size_t rows = (size_t)group * ATTN_QB;
    attn_scratch s = {0};
    s.qp = xmalloc(rows * head_dim * sizeof(float));
    s.gp = xmalloc(rows * head_dim * sizeof(float));
    s.S = xmalloc(rows * seq * sizeof(float));
    if (backward) {
        s.dP = xmalloc(rows * seq * sizeof(float));
        s.D = xmalloc(rows * sizeof(float));
    }
    s.lo = xmalloc((size_t)seq * sizeof(int));
    s.kv = kv_bf16_open(be, seq, head_dim);
    return s;
}

static void attn_scratch_close(attn_scratch *s)
{
    free(s->qp);
    free(s->gp);
    free(s->S);
    free(s->dP);
    free(s->D);
    free(s->lo);
    kv_bf16_close(&s->kv);
}

static void cpu_attention_fwd(backend *be, float *out, float *lse, const float *q, const float *k,
                              const float *v, const int32_t *seg, int batch, int seq, int n_heads,
                              int n_kv_heads, int head_dim)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int group = n_heads / n_kv_heads, gw = group * head_dim; /* gw: a query's row of the group */
    const int qs = n_heads * head_dim, ks = n_kv_heads * head_dim;
    const int n_blocks = (seq + ATTN_QB - 1) / ATTN_QB;
#pragma omp parallel
    {
        attn_scratch s = attn_scratch_open(be, group, seq, head_dim, 0);
        int lo_of = -1; /* the batch row s.lo holds */
        /* the largest blocks (last queries, most keys) first, for balance */
#pragma omp for collapse(3) schedule(dynamic, 1)
        for (int b = 0; b < batch; b++)
            for (int kh = 0; kh < n_kv_heads; kh++)
                for (int t = 0; t < n_blocks; t++) {
                    const int i0 = (n_blocks - 1 - t) * ATTN_QB, rows = seq - i0 < ATTN_QB ? seq - i0 : ATTN_QB;
                    const int m = rows * group, n_keys = i0 + rows; /* causal: keys up to the last query */
                    const size_t q0 = ((size_t)b * seq + i0) * qs + (size_t)kh * gw;
                    const size_t kv0 = (size_t)b * seq * ks + (size_t)kh * head_dim;
                    if (lo_of != b)
                        attn_visible_from(s.lo, seg ? seg + (size_t)b * seq : NULL, seq), lo_of = b;
                    kv_bf16_load(&s.kv, k, v, b, kh, seq, ks, head_dim);
                    attn_copy_rows(s.qp, gw, q + q0, qs, rows, gw);
                    attn_matmul_kv(be, 1, m, n_keys, head_dim, scale, s.qp, head_dim, k + kv0, ks, s.kv.k, head_dim,
                                   0.0f, s.S, n_keys);
                    for (int r = 0; r < m; r++) {
                        const int i = i0 + r / group, h = kh * group + r % group;
                        lse[((size_t)b * n_heads + h) * seq + i] =
                            vec_softmax_range(s.S + (size_t)r * n_keys, (size_t)s.lo[i], (size_t)i + 1, (size_t)n_keys);
                    }
                    attn_matmul_kv(be, 0, m, head_dim, n_keys, 1.0f, s.S, n_keys, v + kv0, ks, s.kv.v, head_dim, 0.0f,
                                   s.gp, head_dim);
                    attn_copy_rows(out + q0, qs, s.gp, gw, rows, gw);
                }
        attn_scratch_close(&s);
    }
}

static void cpu_attention_bwd(backend *be, float *dq, float *dk, float *dv, const float *dout,
                              const float *out, const float *lse, const float *q, const float *k,
                              const float *v, const int32_t *seg, int batch, int seq, int n_heads,
                              int n_kv_heads, int head_dim)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int group = n_heads / n_kv_heads, gw = group * head_dim;
    const int qs = n_heads * head_dim, ks = n_kv_heads * head_dim;
    const int n_blocks = (seq + ATTN_QB - 1) / ATTN_QB;
#pragma omp parallel
    {
        attn_scratch s = attn_scratch_open(be, group, seq, head_dim, 1);
#pragma omp for collapse(2) schedule(dynamic, 1)
        for (int b = 0; b < batch; b++)
            for (int kh = 0; kh < n_kv_heads; kh++) {
                const size_t kv0 = (size_t)b * seq * ks + (size_t)kh * head_dim;
                attn_visible_from(s.lo, seg ? seg + (size_t)b * seq : NULL, seq);
                kv_bf16_load(&s.kv, k, v, b, kh, seq, ks, head_dim);
                /* the last block first: it reaches every key, so its dK and
                 * dV products overwrite (no zeroing) and the others add */
                for (int t = 0; t < n_blocks; t++) {
                    const int i0 = (n_blocks - 1 - t) * ATTN_QB, rows = seq - i0 < ATTN_QB ? seq - i0 : ATTN_QB;
                    const int m = rows * group, n_keys = i0 + rows;
                    const size_t q0 = ((size_t)b * seq + i0) * qs + (size_t)kh * gw;
                    const float beta = t == 0 ? 0.0f : 1.0f;
                    attn_copy_rows(s.qp, gw, q + q0, qs, rows, gw);
                    attn_copy_rows(s.gp, gw, dout + q0, qs, rows, gw);
                    for (int r = 0; r < m; r++) { /* D_i = dO_i . O_i */
                        const float *o = out + q0 + (size_t)(r / group) * qs + (size_t)(r % group) * head_dim;
                        const float *g = s.gp + (size_t)r * head_dim;
                        float acc = 0.0f;
                        for (int d = 0; d < head_dim; d++)
                            acc += g[d] * o[d];
                        s.D[r] = acc;
                    }
                    attn_matmul_kv(be, 1, m, n_keys, head_dim, scale, s.qp, head_dim, k + kv0, ks, s.kv.k, head_dim,
                                   0.0f, s.S, n_keys);
                    attn_matmul_kv(be, 1, m, n_keys, head_dim, 1.0f, s.gp, head_dim, v + kv0, ks, s.kv.v, head_dim,
                                   0.0f, s.dP, n_keys);
                    for (int r = 0; r < m; r++) {
                        const int i = i0 + r / group, h = kh * group + r % group;
                        vec_softmax_grad_range(s.S + (size_t)r * n_keys, s.dP + (size_t)r * n_keys,
                                               lse[((size_t)b * n_heads + h) * seq + i], s.D[r], (size_t)s.lo[i],
                                               (size_t)i + 1, (size_t)n_keys);
                    }
                    /* dQ of the packed rows, unpacked: s.qp is free again after dK */
                    cpu_matmul(be, 1, 0, n_keys, head_dim, m, scale, s.dP, n_keys, s.qp, head_dim, beta, dk + kv0, ks);
                    cpu_matmul(be, 1, 0, n_keys, head_dim, m, 1.0f, s.S, n_keys, s.gp, head_dim, beta, dv + kv0, ks);
                    attn_matmul_kv(be, 0, m, head_dim, n_keys, scale, s.dP, n_keys, k + kv0, ks, s.kv.k, head_dim,
                                   0.0f, s.qp, head_dim);
                    attn_copy_rows(dq + q0, qs, s.qp, gw, rows, gw);
                }
            }
        attn_scratch_close(&s);
    }
}

static void cpu_attention_decode(backend *be, float *out, const float *q, const float *k_cache,
                                 const float *v_cache, int n_q, int q_pos0, int n_kv, int n_heads, int n_kv_heads,
                                 int head_dim)
{
    const float scale = 1.0f / sqrtf((float)head_dim);
    const int group = n_heads / n_kv_heads;
    const size_t q_stride = (size_t)n_heads * head_dim, kv_stride = (size_t)n_kv_heads * head_dim;
#pragma omp parallel
    {
        float *score = xmalloc((size_t)n_kv * sizeof(float));
#pragma omp for collapse(2) schedule(static)
        for (int i = 0; i < n_q; i++)
            for (int h = 0; h < n_heads; h++) {
                const int visible = q_pos0 + i + 1 < n_kv ? q_pos0 + i + 1 : n_kv;
                const float *qi = q + (size_t)i * q_stride + (size_t)h * head_dim;
                const int kh = h / group;
                float mx = -INFINITY;
                for (int j = 0; j < visible; j++) {
                    const float *kj = k_cache + (size_t)j * kv_stride + (size_t)kh * head_dim;
                    float s = 0.0f;
                    for (int d = 0; d < head_dim; d++)
                        s += qi[d] * kj[d];
                    score[j] = s * scale;
                    mx = score[j] > mx ? score[j] : mx;
                }
                double sum = 0.0;
                for (int j = 0; j < visible; j++) {
                    score[j] = expf(score[j] - mx);
                    sum += score[j];
                }
                float *oi = out + (size_t)i * q_stride + (size_t)h * head_dim;
                memset(oi, 0, (size_t)head_dim * sizeof(float));
                for (int j = 0; j < visible; j++) {
                    const float *vj = v_cache + (size_t)j * kv_stride + (size_t)kh * head_dim;
                    float p = (float)(score[j] / sum);
                    for (int d = 0; d < head_dim; d++)
                        oi[d] += p * vj[d];
                }
            }
        free(score);
    }
}

/* In chunks, each vectorised (cpu_vec.c). */
enum { ELEM_CHUNK = 1 << 14 };

static void cpu_swiglu_fwd(backend *be, float *out, const float *gate, const float *up, size_t n_elems)
{
    const size_t n_chunks = (n_elems + ELEM_CHUNK - 1) / ELEM_CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * ELEM_CHUNK, n = n_elems - lo < ELEM_CHUNK ? n_elems - lo : ELEM_CHUNK;
        vec_swiglu_fwd(out + lo, gate + lo, up + lo, n);
    }
}

static void cpu_swiglu_bwd(backend *be, float *dgate, float *dup, const float *dout, const float *gate,
                           const float *up, size_t n_elems)
{
    const size_t n_chunks = (n_elems + ELEM_CHUNK - 1) / ELEM_CHUNK;
#pragma omp parallel for schedule(static)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * ELEM_CHUNK, n = n_elems - lo < ELEM_CHUNK ? n_elems - lo : ELEM_CHUNK;
        vec_swiglu_bwd(dgate + lo, dup + lo, dout + lo, gate + lo, up + lo, n);
    }
}

static void cpu_dropout(backend *be, float *out, const float *x, size_t n_elems, float p, uint64_t key)
{
    const float keep_scale = 1.0f / (1.0f - p);
    const uint64_t threshold = (uint64_t)((double)p * 18446744073709551616.0);
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n_elems; i++)
        out[i] = rng_hash(key, i) >= threshold ? x[i] * keep_scale : 0.0f;
}

/* ---- DoRA ---- */

/* One thread per row, summed in order in double: the same at any thread
 * count. */
static void cpu_dora_norm(backend *be, float *norm, float *g, const float *m, const float *w, int rows, int cols)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < rows; i++) {
        const float *row = w + (size_t)i * cols;
        double acc = 0.0;
        for (int j = 0; j < cols; j++)
            acc += (double)row[j] * (double)row[j];
        norm[i] = (float)sqrt(acc);
        if (g)
            g[i] = m[i] / norm[i];
    }
}

static void cpu_scale_cols(backend *be, float *y, const float *x, const float *g, float g_offset, int n, int d,
                           int accumulate)
{
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; i++) {
        float *yr = y + (size_t)i * d;
        const float *xr = x + (size_t)i * d;
        if (accumulate)
            for (int j = 0; j < d; j++)
                yr[j] += (g[j] + g_offset) * xr[j];
        else
            for (int j = 0; j < d; j++)
                yr[j] = (g[j] + g_offset) * xr[j];
    }
}

/* A fixed number of row chunks, each streaming its rows into per-column
 * partial sums (double), the chunks then added in order: reads memory in
 * order and gives the same result at any thread count. */
enum { COL_DOT_CHUNKS = 8 };

static void cpu_col_dot(backend *be, float *out, const float *a, const float *b, const float *div, int n, int d)
{
    double *part = xcalloc((size_t)COL_DOT_CHUNKS * d, sizeof(double));
    const int per = (n + COL_DOT_CHUNKS - 1) / COL_DOT_CHUNKS;
#pragma omp parallel for schedule(static)
    for (int c = 0; c < COL_DOT_CHUNKS; c++) {
        double *acc = part + (size_t)c * d;
        const int lo = c * per, hi = lo + per < n ? lo + per : n;
        for (int i = lo; i < hi; i++) {
            const float *ar = a + (size_t)i * d, *br = b + (size_t)i * d;
            for (int j = 0; j < d; j++)
                acc[j] += (double)ar[j] * (double)br[j];
        }
    }
    for (int j = 0; j < d; j++) {
        double total = 0.0;
        for (int c = 0; c < COL_DOT_CHUNKS; c++)
            total += part[(size_t)c * d + j];
        out[j] += (float)(total / div[j]);
    }
    free(part);
}

/* Rows of logits per chunk: as many as fit 4 Mi floats (16 MiB), between 16
 * and 256: a taller chunk makes the lm_head product more efficient (64 rows
 * ran it at half the GEMM ceiling), a wide vocabulary wants a shorter one. */
enum { XENT_CHUNK_MAX_ROWS = 256 };

static int xent_chunk_rows(int vocab)
{
    int rows = (4 << 20) / (vocab > 0 ? vocab : 1);
    return rows < 16 ? 16 : rows > XENT_CHUNK_MAX_ROWS ? XENT_CHUNK_MAX_ROWS : rows;
}

static double cpu_lm_head_xent_dw(backend *be, float *dh, float *dw, float *logits, const float *h, const float *w,
                                  const int32_t *targets, int n, int dim, int vocab, float grad_scale)
{
    double total = 0.0;
    const int chunk_rows = xent_chunk_rows(vocab);
    float *chunk = logits ? NULL : xmalloc((size_t)chunk_rows * vocab * sizeof(float));
    /* bf16: w rounded once for every chunk's products, not once a product */
    uint16_t *w16 = NULL;
    if (precision_of(be) == GEMM_BF16) {
        w16 = xmalloc((size_t)vocab * dim * sizeof *w16);
        gemm_round_bf16(w16, w, (size_t)vocab * dim);
    }
    for (int r0 = 0; r0 < n; r0 += chunk_rows) {
        int rows = n - r0 < chunk_rows ? n - r0 : chunk_rows;
        float *lg = logits ? logits + (size_t)r0 * vocab : chunk;
        if (w16)
            gemm_bf16_b(0, 1, rows, vocab, dim, 1.0f, h + (size_t)r0 * dim, dim, w16, dim, 0.0f, lg, vocab);
        else
            cpu_matmul(be, 0, 1, rows, vocab, dim, 1.0f, h + (size_t)r0 * dim, dim, w, dim, 0.0f, lg, vocab);
        double row_loss[XENT_CHUNK_MAX_ROWS];
        /* logits are kept when asked for: the gradient goes to a scratch copy */
        float *grad = lg;
        float *scratch = NULL;
        if (dh && logits) {
            scratch = xmalloc((size_t)rows * vocab * sizeof(float));
            grad = scratch;
        }
#pragma omp parallel for schedule(static)
        for (int r = 0; r < rows; r++) {
            row_loss[r] = 0.0;
            const float *row = lg + (size_t)r * vocab;
            float *grow = grad + (size_t)r * vocab;
            int t = targets[r0 + r];
            if (t < 0) {
                if (dh)
                    memset(grow, 0, (size_t)vocab * sizeof(float));
                continue;
            }
            const float target_logit = row[t]; /* grow may be row itself */
            float mx = -INFINITY;
            for (int c = 0; c < vocab; c++)
                mx = row[c] > mx ? row[c] : mx;
            /* one pass of single-precision exponentials, kept for the gradient */
            double sum = dh ? vec_exp_shifted(grow, row, mx, (size_t)vocab) : vec_exp_shifted_sum(row, mx, (size_t)vocab);
            double lse = mx + log(sum);
            row_loss[r] = lse - target_logit;
            if (dh) {
                const float g = (float)(grad_scale / sum);
                for (int c = 0; c < vocab; c++)
                    grow[c] *= g;
                grow[t] -= grad_scale;
            }
        }
        if (dh && w16)
            gemm_bf16_b(0, 0, rows, dim, vocab, 1.0f, grad, vocab, w16, dim, 0.0f, dh + (size_t)r0 * dim, dim);
        else if (dh)
            cpu_matmul(be, 0, 0, rows, dim, vocab, 1.0f, grad, vocab, w, dim, 0.0f, dh + (size_t)r0 * dim, dim);
        if (dh && dw) /* dw += grad^T h, chunk after chunk: the same order at any thread count */
            cpu_matmul(be, 1, 0, vocab, dim, rows, 1.0f, grad, vocab, h + (size_t)r0 * dim, dim, 1.0f, dw, dim);
        free(scratch);
        for (int r = 0; r < rows; r++) /* in order: reproducible */
            total += row_loss[r];
    }
    free(chunk);
    free(w16);
    return total;
}

static double cpu_lm_head_xent(backend *be, float *dh, float *logits, const float *h, const float *w,
                               const int32_t *targets, int n, int dim, int vocab, float grad_scale)
{
    return cpu_lm_head_xent_dw(be, dh, NULL, logits, h, w, targets, n, dim, vocab, grad_scale);
}

static void cpu_adamw(backend *be, float *param, const float *grad, float *m, float *v, size_t n_elems,
                      float lr, float beta1, float beta2, float eps, float weight_decay, int step)
{
    /* torch.optim.AdamW: decoupled decay first, then the bias-corrected update */
    const double bc1 = 1.0 - pow(beta1, step);
    const double bc2_sqrt = sqrt(1.0 - pow(beta2, step));
    const float step_size = (float)(lr / bc1);
    const float decay = 1.0f - lr * weight_decay;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n_elems; i++) {
        float g = grad[i];
        param[i] *= decay;
        m[i] += (g - m[i]) * (1.0f - beta1);
        v[i] = v[i] * beta2 + (1.0f - beta2) * g * g;
        float denom = (float)(sqrtf(v[i]) / bc2_sqrt) + eps;
        param[i] -= step_size * (m[i] / denom);
    }
}

static void cpu_destroy(backend *be)
{
    gemm_release();
    free(be->impl);
    free(be);
}

int backend_cpu_bf16_usable(const char **why_not)
{
    const char *env = getenv("SHARDTUNE_CPU_BF16");
    if (env && strcmp(env, "0") == 0) {
        *why_not = "SHARDTUNE_CPU_BF16=0";
        return 0;
    }
    if (!gemm_cpu_has_bf16()) {
        *why_not = "this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16)";
        return 0;
    }
    return 1;
}

backend *backend_cpu_create(int n_threads, int bf16)
{
    backend *be = xcalloc(1, sizeof *be);
    be->name = "cpu";
    /* bf16 as the CUDA backend's bf16 mode: products round their inputs,
     * the residual stream is kept in bf16; the linear weights are rounded
     * once, when gathered */
    be->activation_dtype = bf16 ? DT_BF16 : DT_F32;
    be->weight_dtype = bf16 ? DT_BF16 : DT_F32;
    if (bf16) {
        be->matmul_bf16_weight = cpu_matmul_bf16_weight;
        be->lora_fuse_bf16 = cpu_lora_fuse_bf16;
        be->to_bf16 = cpu_to_bf16;
    }
    be->alloc = cpu_alloc;
    be->alloc_host = cpu_alloc_host;
    be->free = cpu_free;
    be->zero = cpu_zero;
    be->copy_to_device = cpu_copy;
    be->copy_to_host = cpu_copy;
    be->copy = cpu_copy;
    be->synchronize = cpu_synchronize;
    be->matmul = cpu_matmul;
    be->to_f32 = cpu_to_f32;
    be->from_f32 = cpu_from_f32;
    be->add = cpu_add;
    be->scale = cpu_scale;
    be->sum_squares = cpu_sum_squares;
    be->embedding_fwd = cpu_embedding_fwd;
    be->rmsnorm_fwd = cpu_rmsnorm_fwd;
    be->rmsnorm_bwd = cpu_rmsnorm_bwd;
    be->rope = cpu_rope;
    be->attention_fwd = cpu_attention_fwd;
    be->attention_bwd = cpu_attention_bwd;
    be->attention_decode = cpu_attention_decode;
    be->swiglu_fwd = cpu_swiglu_fwd;
    be->swiglu_bwd = cpu_swiglu_bwd;
    be->dropout = cpu_dropout;
    be->dora_norm = cpu_dora_norm;
    be->scale_cols = cpu_scale_cols;
    be->col_dot = cpu_col_dot;
    be->lm_head_xent = cpu_lm_head_xent;
    be->lm_head_xent_dw = cpu_lm_head_xent_dw;
    be->embedding_bwd = cpu_embedding_bwd;
    be->adamw = cpu_adamw;
    be->destroy = cpu_destroy;
    (void)n_threads;
    cpu_impl *im = xcalloc(1, sizeof *im);
    im->prec = bf16 ? GEMM_BF16 : GEMM_F32;
    be->impl = im;
    return be;
}
