// attention_cuda.cu: causal grouped-query attention on the GPU, forward and
// backward, and the decode step of generation.
//
// Under bf16 compute (head_dim a multiple of 16, at most 128) the fused
// kernels of flash_attention_cuda.cu run instead; what follows is the fp32
// path (and SHARDTUNE_CUDA_ATTENTION=blocked).  The same blocked algorithm as the CPU backend, with the matrix products
// on cuBLAS (tensor cores under bf16 compute): for each block of QB queries,
// S = scale Q K^T over the keys up to the block's last query, masked and
// soft-maxed in place, then O = P V.  One strided-batched GEMM covers all
// KV heads at once (query head h = kv_head * group + g, for each g in turn).
// Backward recomputes P from the saved log-sum-exp, so nothing quadratic in
// the sequence is kept: the scratch is QB x seq per KV head, QB chosen to
// keep it under a fixed budget, so memory grows linearly with the sequence.
// The heads of a group accumulate into dK and dV one after another (beta 1),
// in a fixed order: no atomics, the same result every run.
#include "cuda_internal.h"

#include <cmath>

enum { THREADS = 256 };

// Rows per query block: the largest multiple of 16 (at most 1024) whose
// score block over all KV heads fits the scratch budget.
static int query_block(int seq, int n_kv_heads)
{
    const size_t budget_bytes = cuda_scratch_budget();
    size_t qb = budget_bytes / ((size_t)seq * n_kv_heads * sizeof(float));
    qb = qb > 1024 ? 1024 : qb < 16 ? 16 : qb / 16 * 16;
    return qb > (size_t)seq ? seq : (int)qb;
}

__device__ inline bool visible(const int32_t *seg_row, int i, int j)
{
    return j <= i && (!seg_row || seg_row[i] == seg_row[j]);
}

// Forward: block (r, kv head) soft-maxes row r of that head's score block
// in place and writes its log-sum-exp.
__global__ void k_softmax_rows(float *S, int n_keys, long long head_stride, int i0, const int32_t *seg_row, float *lse,
                               long long lse_head_stride)
{
    const int r = blockIdx.x, kh = blockIdx.y, i = i0 + r;
    float *row = S + kh * head_stride + (size_t)r * n_keys;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n_keys; j += blockDim.x)
        if (visible(seg_row, i, j))
            mx = fmaxf(mx, row[j]);
    mx = block_max(mx);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n_keys; j += blockDim.x)
        if (visible(seg_row, i, j))
            sum += expf(row[j] - mx);
    sum = block_sum(sum);
    const float inv = 1.0f / sum;
    for (int j = threadIdx.x; j < n_keys; j += blockDim.x)
        row[j] = visible(seg_row, i, j) ? expf(row[j] - mx) * inv : 0.0f;
    if (threadIdx.x == 0)
        lse[kh * lse_head_stride + r] = mx + logf(sum);
}

// Backward: P = exp(S - lse) (masked) in place, and dS = P (dP - D) over dP.
__global__ void k_softmax_grad(float *P, float *dP, int n_keys, long long head_stride, int i0, const int32_t *seg_row,
                               const float *lse, long long lse_head_stride, const float *D, int d_stride,
                               int d_head_stride)
{
    const int r = blockIdx.x, kh = blockIdx.y, i = i0 + r;
    const size_t off = kh * head_stride + (size_t)r * n_keys;
    const float l = lse[kh * lse_head_stride + r];
    const float Dr = D[(size_t)r * d_stride + kh * d_head_stride];
    for (int j = threadIdx.x; j < n_keys; j += blockDim.x) {
        const float p = visible(seg_row, i, j) ? expf(P[off + j] - l) : 0.0f;
        P[off + j] = p;
        dP[off + j] = p * (dP[off + j] - Dr);
    }
}

// D[row] = dO[row] . O[row] over one head: a warp per (position, head).
__global__ void k_rowdot(float *D, const float *dout, const float *out, size_t n_rows, int head_dim)
{
    const size_t row = blockIdx.x * (size_t)(blockDim.x / 32) + threadIdx.x / 32;
    if (row >= n_rows)
        return;
    const int lane = threadIdx.x & 31;
    const float *g = dout + row * head_dim, *o = out + row * head_dim;
    float acc = 0.0f;
    for (int d = lane; d < head_dim; d += 32)
        acc += g[d] * o[d];
    for (int s = 16; s > 0; s >>= 1)
        acc += __shfl_down_sync(0xffffffffu, acc, s);
    if (lane == 0)
        D[row] = acc;
}

struct attn_shape {
    int batch, seq, n_heads, n_kv_heads, head_dim, group, qs, ks, qb;
    float scale;
};

static attn_shape shape_of(int batch, int seq, int n_heads, int n_kv_heads, int head_dim)
{
    attn_shape a;
    a.batch = batch, a.seq = seq, a.n_heads = n_heads, a.n_kv_heads = n_kv_heads, a.head_dim = head_dim;
    a.group = n_heads / n_kv_heads;
    a.qs = n_heads * head_dim;
    a.ks = n_kv_heads * head_dim;
    a.qb = query_block(seq, n_kv_heads);
    a.scale = 1.0f / sqrtf((float)head_dim);
    return a;
}

// S[kh] = scale Q[kh*group+g] K[kh]^T for rows i0.. of batch b, all KV heads.
static void scores(backend *be, const attn_shape &a, float *S, const float *q, const float *k, int b, int g, int i0,
                   int rows)
{
    const int n_keys = i0 + rows;
    cuda_gemm(be, 0, 1, rows, n_keys, a.head_dim, a.scale, q + ((size_t)b * a.seq + i0) * a.qs + (size_t)g * a.head_dim,
              a.qs, (long long)a.group * a.head_dim, k + (size_t)b * a.seq * a.ks, a.ks, a.head_dim, 0.0f, S, n_keys,
              (long long)a.qb * a.seq, a.n_kv_heads);
}

static void cuda_attention_fwd(backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                               const int32_t *seg, int batch, int seq, int n_heads, int n_kv_heads, int head_dim)
{
    if (cuda_flash_usable(be, head_dim)) {
        cuda_flash_fwd(be, out, lse, q, k, v, seg, batch, seq, n_heads, n_kv_heads, head_dim);
        return;
    }
    const attn_shape a = shape_of(batch, seq, n_heads, n_kv_heads, head_dim);
    const long long s_stride = (long long)a.qb * seq;
    float *S = (float *)cuda_scratch(be, SCRATCH_ATTN_S, (size_t)s_stride * n_kv_heads * sizeof(float));
    cudaStream_t st = impl_of(be)->stream;
    for (int b = 0; b < batch; b++)
        for (int g = 0; g < a.group; g++)
            for (int i0 = 0; i0 < seq; i0 += a.qb) {
                const int rows = seq - i0 < a.qb ? seq - i0 : a.qb, n_keys = i0 + rows;
                scores(be, a, S, q, k, b, g, i0, rows);
                CUDA_LAUNCH(k_softmax_rows, dim3(rows, n_kv_heads), THREADS, st, S, n_keys, s_stride, i0,
                            seg ? seg + (size_t)b * seq : nullptr, lse + ((size_t)b * n_heads + g) * seq + i0,
                            (long long)a.group * seq);
                cuda_gemm(be, 0, 0, rows, head_dim, n_keys, 1.0f, S, n_keys, s_stride, v + (size_t)b * seq * a.ks, a.ks,
                          head_dim, 0.0f, out + ((size_t)b * seq + i0) * a.qs + (size_t)g * head_dim, a.qs,
                          (long long)a.group * head_dim, n_kv_heads);
            }
}

static void cuda_attention_bwd(backend *be, float *dq, float *dk, float *dv, const float *dout, const float *out,
                               const float *lse, const float *q, const float *k, const float *v, const int32_t *seg,
                               int batch, int seq, int n_heads, int n_kv_heads, int head_dim)
{
    const size_t n_rows = (size_t)batch * seq * n_heads;
    float *D = (float *)cuda_scratch(be, SCRATCH_ATTN_D, n_rows * sizeof(float));
    cudaStream_t st = impl_of(be)->stream;
    CUDA_LAUNCH(k_rowdot, (unsigned)((n_rows + THREADS / 32 - 1) / (THREADS / 32)), THREADS, st, D, dout, out, n_rows,
                head_dim);
    if (cuda_flash_usable(be, head_dim)) {
        cuda_flash_bwd(be, dq, dk, dv, dout, D, lse, q, k, v, seg, batch, seq, n_heads, n_kv_heads, head_dim);
        return;
    }
    const attn_shape a = shape_of(batch, seq, n_heads, n_kv_heads, head_dim);
    const long long s_stride = (long long)a.qb * seq;
    const size_t s_bytes = (size_t)s_stride * n_kv_heads * sizeof(float);
    float *P = (float *)cuda_scratch(be, SCRATCH_ATTN_S, s_bytes);
    float *dP = (float *)cuda_scratch(be, SCRATCH_ATTN_DP, s_bytes);
    const size_t kv_bytes = (size_t)batch * seq * a.ks * sizeof(float);
    CUDA_CHECK(cudaMemsetAsync(dk, 0, kv_bytes, st));
    CUDA_CHECK(cudaMemsetAsync(dv, 0, kv_bytes, st));
    const long long head_stride = (long long)a.group * head_dim; // query head kh*group+g, for kh = 0, 1, ...
    for (int b = 0; b < batch; b++)
        for (int g = 0; g < a.group; g++)
            for (int i0 = 0; i0 < seq; i0 += a.qb) {
                const int rows = seq - i0 < a.qb ? seq - i0 : a.qb, n_keys = i0 + rows;
                const size_t q0 = ((size_t)b * seq + i0) * a.qs + (size_t)g * head_dim;
                const float *kb = k + (size_t)b * seq * a.ks, *vb = v + (size_t)b * seq * a.ks;
                scores(be, a, P, q, k, b, g, i0, rows);
                cuda_gemm(be, 0, 1, rows, n_keys, head_dim, 1.0f, dout + q0, a.qs, head_stride, vb, a.ks, head_dim,
                          0.0f, dP, n_keys, s_stride, n_kv_heads);
                CUDA_LAUNCH(k_softmax_grad, dim3(rows, n_kv_heads), THREADS, st, P, dP, n_keys, s_stride, i0,
                            seg ? seg + (size_t)b * seq : nullptr, lse + ((size_t)b * n_heads + g) * seq + i0,
                            (long long)a.group * seq, D + ((size_t)b * seq + i0) * n_heads + g, n_heads, a.group);
                cuda_gemm(be, 0, 0, rows, head_dim, n_keys, a.scale, dP, n_keys, s_stride, kb, a.ks, head_dim, 0.0f,
                          dq + q0, a.qs, head_stride, n_kv_heads);
                cuda_gemm(be, 1, 0, n_keys, head_dim, rows, a.scale, dP, n_keys, s_stride, q + q0, a.qs, head_stride,
                          1.0f, dk + (size_t)b * seq * a.ks, a.ks, head_dim, n_kv_heads);
                cuda_gemm(be, 1, 0, n_keys, head_dim, rows, 1.0f, P, n_keys, s_stride, dout + q0, a.qs, head_stride,
                          1.0f, dv + (size_t)b * seq * a.ks, a.ks, head_dim, n_kv_heads);
            }
}

// Decode: block (query i, head h) over the cache's visible rows.
__global__ void k_decode(float *out, float *score_all, const float *q, const float *k_cache, const float *v_cache,
                         int q_pos0, int n_kv, int n_heads, int group, int head_dim, float scale)
{
    const int i = blockIdx.x, h = blockIdx.y, kh = h / group;
    const int vis = q_pos0 + i + 1 < n_kv ? q_pos0 + i + 1 : n_kv;
    const size_t q_stride = (size_t)n_heads * head_dim, kv_stride = (size_t)(n_heads / group) * head_dim;
    const float *qi = q + i * q_stride + (size_t)h * head_dim;
    float *score = score_all + ((size_t)i * n_heads + h) * n_kv;
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < vis; j += blockDim.x) {
        const float *kj = k_cache + j * kv_stride + (size_t)kh * head_dim;
        float s = 0.0f;
        for (int d = 0; d < head_dim; d++)
            s += qi[d] * kj[d];
        score[j] = s * scale;
        mx = fmaxf(mx, score[j]);
    }
    mx = block_max(mx);
    double sum = 0.0;
    for (int j = threadIdx.x; j < vis; j += blockDim.x) {
        score[j] = expf(score[j] - mx);
        sum += score[j];
    }
    sum = block_sum(sum); // its barriers also publish score[] to the block
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (int j = 0; j < vis; j++)
            acc += (float)(score[j] / sum) * v_cache[j * kv_stride + (size_t)kh * head_dim + d];
        out[i * q_stride + (size_t)h * head_dim + d] = acc;
    }
}

static void cuda_attention_decode(backend *be, float *out, const float *q, const float *k_cache, const float *v_cache,
                                  int n_q, int q_pos0, int n_kv, int n_heads, int n_kv_heads, int head_dim)
{
    if (n_q <= 0 || n_kv <= 0)
        return;
    float *score = (float *)cuda_scratch(be, SCRATCH_ATTN_S, (size_t)n_q * n_heads * n_kv * sizeof(float));
    CUDA_LAUNCH(k_decode, dim3(n_q, n_heads), 128, impl_of(be)->stream, out, score, q, k_cache, v_cache, q_pos0, n_kv,
                n_heads, n_heads / n_kv_heads, head_dim, 1.0f / sqrtf((float)head_dim));
}

void cuda_install_attention(backend *be)
{
    be->attention_fwd = cuda_attention_fwd;
    be->attention_bwd = cuda_attention_bwd;
    be->attention_decode = cuda_attention_decode;
}
