// flash_attention_cuda.cu: causal grouped-query attention as fused, tiled
// kernels on the tensor cores (WMMA m16n16k16, bf16 inputs, fp32
// accumulation), for the bf16 precision: nothing of size seq x seq is ever
// in device memory, only tiles in shared memory.
//
// Forward, one block per (64 queries, head, batch): Q's tile stays in shared
// memory; for each 64-key tile up to the diagonal, S = Q K^T on the tensor
// cores, an online softmax row by row (running max m and sum l; the output
// so far is rescaled by exp(m_old - m_new)), then O += P V on the tensor
// cores.  Masked keys (later positions, other documents, padding) get
// probability 0.  Writes O / l and lse = m + log l.
//
// Backward recomputes P from lse, in two kernels so that every output has
// one writer and sums run in a fixed order (no atomics):
//  - dK, dV: one block per (64 keys, KV head, batch) walks the query heads
//    of its group and the 32-query tiles at or after its keys:
//    dV += P^T dO, dK += dS^T Q with dS = P (dP - D), dP = dO V^T;
//  - dQ: one block per (32 queries, head, batch) walks the key tiles up to
//    the diagonal: dQ += dS K.
// The softmax scale is applied to S (forward) and to dK, dQ at the end.
//
// WMMA fragments are only loaded, stored, filled and multiplied (their
// layout across a warp is unspecified); row-wise work happens in shared
// memory.  Pointers given to WMMA are 32-byte aligned and leading
// dimensions multiples of 8: every tile below starts at a multiple of 32
// bytes because head_dim is a multiple of 16.
#include "cuda_internal.h"

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <cuda_bf16.h>
#include <mma.h>

using namespace nvcuda;
typedef __nv_bfloat16 bf16;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc_frag;

enum {
    FA_THREADS = 128, // 4 warps
    FA_BQ = 64,       // queries per forward block
    FA_BK = 64,       // keys per tile
    FA_BQB = 32,      // queries per backward tile
};

struct fa_shape {
    int seq, n_heads, n_kv_heads, group, hd;
    float scale;
};

// Rows [row0, row0 + rows) of one head of x ([seq, heads, hd] per batch,
// already offset to the batch and head) into a bf16 tile; rows past the
// sequence are zero.
__device__ inline void load_tile(bf16 *dst, const float *x, int rows, int row0, int seq, size_t row_stride, int hd)
{
    for (int i = threadIdx.x; i < rows * hd; i += blockDim.x) {
        const int r = i / hd, c = i % hd, t = row0 + r;
        dst[i] = __float2bfloat16(t < seq ? x[(size_t)t * row_stride + c] : 0.0f);
    }
}

__device__ inline bool fa_visible(const int32_t *seg, int i, int j, int seq)
{
    return i < seq && j <= i && (!seg || seg[i] == seg[j]);
}

// acc += A B over ksteps steps of 16: A is 16 x 16k, B is 16k x 16, each in
// the layout its template says; a_step and b_step move one step along k.
template <typename LA, typename LB>
__device__ inline void mma_k(acc_frag &acc, const bf16 *a, int lda, int a_step, const bf16 *b, int ldb, int b_step,
                             int ksteps)
{
    wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, LA> fa;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, LB> fb;
    for (int kk = 0; kk < ksteps; kk++) {
        wmma::load_matrix_sync(fa, a + kk * a_step, lda);
        wmma::load_matrix_sync(fb, b + kk * b_step, ldb);
        wmma::mma_sync(acc, fa, fb, acc);
    }
}

// S[rows x FA_BK] (fp32, row stride FA_BK) = X Y^T for X [rows x hd] and Y
// [FA_BK x hd] (bf16, row-major): warp w computes key columns [16w, 16w+16)
// for every 16-row group.
__device__ inline void tile_xyt(float *S, const bf16 *X, const bf16 *Y, int rows, int hd)
{
    const int warp = threadIdx.x / 32;
    for (int rs = 0; rs < rows / 16; rs++) {
        acc_frag acc;
        wmma::fill_fragment(acc, 0.0f);
        mma_k<wmma::row_major, wmma::col_major>(acc, X + rs * 16 * hd, hd, 16, Y + warp * 16 * hd, hd, 16, hd / 16);
        wmma::store_matrix_sync(S + rs * 16 * FA_BK + warp * 16, acc, FA_BK, wmma::mem_row_major);
    }
}

// ---- forward ----

__global__ void k_flash_fwd(float *out, float *lse, const float *q, const float *k, const float *v, const int32_t *seg,
                            fa_shape s)
{
    CUDA_DYNAMIC_SHARED(smem);
    const int hd = s.hd, q0 = blockIdx.x * FA_BQ, h = blockIdx.y, b = blockIdx.z, kh = h / s.group;
    const int tid = threadIdx.x, warp = tid / 32;
    bf16 *Qs = (bf16 *)smem;                  // FA_BQ x hd
    bf16 *Ks = Qs + FA_BQ * hd;               // FA_BK x hd
    bf16 *Vs = Ks + FA_BK * hd;               // FA_BK x hd
    bf16 *Ps = Vs + FA_BK * hd;               // FA_BQ x FA_BK
    float *Ss = (float *)(Ps + FA_BQ * FA_BK); // FA_BQ x FA_BK
    float *Os = Ss + FA_BQ * FA_BK;           // FA_BQ x hd
    float *row_alpha = Os + FA_BQ * hd, *row_m = row_alpha + FA_BQ, *row_l = row_m + FA_BQ;
    const size_t qs = (size_t)s.n_heads * hd, ks = (size_t)s.n_kv_heads * hd;
    const float *qb = q + (size_t)b * s.seq * qs + (size_t)h * hd;
    const float *kb = k + (size_t)b * s.seq * ks + (size_t)kh * hd, *vb = v + (size_t)b * s.seq * ks + (size_t)kh * hd;
    const int32_t *sg = seg ? seg + (size_t)b * s.seq : nullptr;

    load_tile(Qs, qb, FA_BQ, q0, s.seq, qs, hd);
    for (int i = tid; i < FA_BQ * hd; i += blockDim.x)
        Os[i] = 0.0f;
    if (tid < FA_BQ)
        row_m[tid] = -INFINITY, row_l[tid] = 0.0f;
    const int key_end = q0 + FA_BQ < s.seq ? q0 + FA_BQ : s.seq; // causal: keys before the tile's last query
    for (int k0 = 0; k0 < key_end; k0 += FA_BK) {
        __syncthreads(); // the previous tile is consumed
        load_tile(Ks, kb, FA_BK, k0, s.seq, ks, hd);
        load_tile(Vs, vb, FA_BK, k0, s.seq, ks, hd);
        __syncthreads();
        tile_xyt(Ss, Qs, Ks, FA_BQ, hd);
        __syncthreads();
        if (tid < FA_BQ) { // thread r keeps row r's running max and sum
            const int i = q0 + tid;
            const float *srow = Ss + tid * FA_BK;
            bf16 *prow = Ps + tid * FA_BK;
            float mx = -INFINITY;
            for (int c = 0; c < FA_BK; c++)
                if (fa_visible(sg, i, k0 + c, s.seq))
                    mx = fmaxf(mx, srow[c] * s.scale);
            const float m_old = row_m[tid], m_new = fmaxf(m_old, mx);
            const float alpha = m_old == -INFINITY ? 0.0f : expf(m_old - m_new);
            float sum = 0.0f;
            for (int c = 0; c < FA_BK; c++) {
                const float p = fa_visible(sg, i, k0 + c, s.seq) ? expf(srow[c] * s.scale - m_new) : 0.0f;
                prow[c] = __float2bfloat16(p);
                sum += p;
            }
            row_l[tid] = row_l[tid] * alpha + sum;
            row_m[tid] = m_new;
            row_alpha[tid] = alpha;
        }
        __syncthreads();
        for (int i = tid; i < FA_BQ * hd; i += blockDim.x)
            Os[i] *= row_alpha[i / hd];
        __syncthreads();
        for (int j = 0; j < hd / 16; j++) { // O[warp's 16 rows, d-columns j] += P V
            acc_frag acc;
            wmma::load_matrix_sync(acc, Os + warp * 16 * hd + j * 16, hd, wmma::mem_row_major);
            mma_k<wmma::row_major, wmma::row_major>(acc, Ps + warp * 16 * FA_BK, FA_BK, 16, Vs + j * 16, hd, 16 * hd,
                                                    FA_BK / 16);
            wmma::store_matrix_sync(Os + warp * 16 * hd + j * 16, acc, hd, wmma::mem_row_major);
        }
    }
    __syncthreads();
    for (int i = tid; i < FA_BQ * hd; i += blockDim.x) {
        const int r = i / hd, c = i % hd, t = q0 + r;
        if (t < s.seq)
            out[((size_t)b * s.seq + t) * qs + (size_t)h * hd + c] = Os[i] / row_l[r];
    }
    if (tid < FA_BQ && q0 + tid < s.seq)
        lse[((size_t)b * s.n_heads + h) * s.seq + q0 + tid] = row_m[tid] + logf(row_l[tid]);
}

// ---- backward ----

// P = exp(scale S - lse) where visible, and dS = P (dP - D), for a tile of
// FA_BQB queries from q0 and FA_BK keys from k0; lse_s and D_s hold the
// tile's rows.
__device__ inline void tile_softmax_grad(bf16 *Ps, bf16 *dSs, const float *Ss, const float *dPs, const float *lse_s,
                                         const float *D_s, int q0, int k0, const int32_t *sg, const fa_shape &s)
{
    for (int i = threadIdx.x; i < FA_BQB * FA_BK; i += blockDim.x) {
        const int r = i / FA_BK, c = i % FA_BK;
        const float p = fa_visible(sg, q0 + r, k0 + c, s.seq) ? expf(Ss[i] * s.scale - lse_s[r]) : 0.0f;
        if (Ps)
            Ps[i] = __float2bfloat16(p);
        dSs[i] = __float2bfloat16(p * (dPs[i] - D_s[r]));
    }
}

// The tile's lse and D rows (0 past the sequence).
__device__ inline void load_rows(float *lse_s, float *D_s, const float *lse, const float *D, int b, int h, int q0,
                                 const fa_shape &s)
{
    for (int r = threadIdx.x; r < FA_BQB; r += blockDim.x) {
        const int t = q0 + r;
        lse_s[r] = t < s.seq ? lse[((size_t)b * s.n_heads + h) * s.seq + t] : 0.0f;
        D_s[r] = t < s.seq ? D[((size_t)b * s.seq + t) * s.n_heads + h] : 0.0f;
    }
}

__global__ void k_flash_bwd_kv(float *dk, float *dv, const float *dout, const float *D, const float *lse,
                               const float *q, const float *k, const float *v, const int32_t *seg, fa_shape s)
{
    CUDA_DYNAMIC_SHARED(smem);
    const int hd = s.hd, k0 = blockIdx.x * FA_BK, kh = blockIdx.y, b = blockIdx.z;
    const int tid = threadIdx.x, warp = tid / 32;
    bf16 *Ks = (bf16 *)smem;                     // FA_BK x hd
    bf16 *Vs = Ks + FA_BK * hd;                  // FA_BK x hd
    bf16 *Qs = Vs + FA_BK * hd;                  // FA_BQB x hd
    bf16 *dOs = Qs + FA_BQB * hd;                // FA_BQB x hd
    bf16 *Ps = dOs + FA_BQB * hd;                // FA_BQB x FA_BK
    bf16 *dSs = Ps + FA_BQB * FA_BK;             // FA_BQB x FA_BK
    float *Ss = (float *)(dSs + FA_BQB * FA_BK); // FA_BQB x FA_BK
    float *dPs = Ss + FA_BQB * FA_BK;            // FA_BQB x FA_BK
    float *dKs = dPs + FA_BQB * FA_BK;           // FA_BK x hd
    float *dVs = dKs + FA_BK * hd;               // FA_BK x hd
    float *lse_s = dVs + FA_BK * hd, *D_s = lse_s + FA_BQB;
    const size_t qs = (size_t)s.n_heads * hd, ks = (size_t)s.n_kv_heads * hd;
    const size_t kv_off = (size_t)b * s.seq * ks + (size_t)kh * hd;
    const int32_t *sg = seg ? seg + (size_t)b * s.seq : nullptr;

    load_tile(Ks, k + kv_off, FA_BK, k0, s.seq, ks, hd);
    load_tile(Vs, v + kv_off, FA_BK, k0, s.seq, ks, hd);
    for (int i = tid; i < FA_BK * hd; i += blockDim.x)
        dKs[i] = dVs[i] = 0.0f;
    for (int g = 0; g < s.group; g++) {
        const int h = kh * s.group + g;
        const size_t q_off = (size_t)b * s.seq * qs + (size_t)h * hd;
        for (int q0 = k0 / FA_BQB * FA_BQB; q0 < s.seq; q0 += FA_BQB) { // earlier queries see none of these keys
            __syncthreads();
            load_tile(Qs, q + q_off, FA_BQB, q0, s.seq, qs, hd);
            load_tile(dOs, dout + q_off, FA_BQB, q0, s.seq, qs, hd);
            load_rows(lse_s, D_s, lse, D, b, h, q0, s);
            __syncthreads();
            tile_xyt(Ss, Qs, Ks, FA_BQB, hd);
            tile_xyt(dPs, dOs, Vs, FA_BQB, hd);
            __syncthreads();
            tile_softmax_grad(Ps, dSs, Ss, dPs, lse_s, D_s, q0, k0, sg, s);
            __syncthreads();
            // warp w owns key rows [16w, 16w+16): dV += P^T dO, dK += dS^T Q
            for (int j = 0; j < hd / 16; j++) {
                acc_frag acc;
                float *dv_tile = dVs + warp * 16 * hd + j * 16, *dk_tile = dKs + warp * 16 * hd + j * 16;
                wmma::load_matrix_sync(acc, dv_tile, hd, wmma::mem_row_major);
                mma_k<wmma::col_major, wmma::row_major>(acc, Ps + warp * 16, FA_BK, 16 * FA_BK, dOs + j * 16, hd,
                                                        16 * hd, FA_BQB / 16);
                wmma::store_matrix_sync(dv_tile, acc, hd, wmma::mem_row_major);
                wmma::load_matrix_sync(acc, dk_tile, hd, wmma::mem_row_major);
                mma_k<wmma::col_major, wmma::row_major>(acc, dSs + warp * 16, FA_BK, 16 * FA_BK, Qs + j * 16, hd,
                                                        16 * hd, FA_BQB / 16);
                wmma::store_matrix_sync(dk_tile, acc, hd, wmma::mem_row_major);
            }
        }
    }
    __syncthreads();
    for (int i = tid; i < FA_BK * hd; i += blockDim.x) {
        const int r = i / hd, c = i % hd, t = k0 + r;
        if (t < s.seq) {
            dk[kv_off + (size_t)t * ks + c] = dKs[i] * s.scale;
            dv[kv_off + (size_t)t * ks + c] = dVs[i];
        }
    }
}

__global__ void k_flash_bwd_q(float *dq, const float *dout, const float *D, const float *lse, const float *q,
                              const float *k, const float *v, const int32_t *seg, fa_shape s)
{
    CUDA_DYNAMIC_SHARED(smem);
    const int hd = s.hd, q0 = blockIdx.x * FA_BQB, h = blockIdx.y, b = blockIdx.z, kh = h / s.group;
    const int tid = threadIdx.x, warp = tid / 32;
    bf16 *Qs = (bf16 *)smem;                     // FA_BQB x hd
    bf16 *dOs = Qs + FA_BQB * hd;                // FA_BQB x hd
    bf16 *Ks = dOs + FA_BQB * hd;                // FA_BK x hd
    bf16 *Vs = Ks + FA_BK * hd;                  // FA_BK x hd
    bf16 *dSs = Vs + FA_BK * hd;                 // FA_BQB x FA_BK
    float *Ss = (float *)(dSs + FA_BQB * FA_BK); // FA_BQB x FA_BK
    float *dPs = Ss + FA_BQB * FA_BK;            // FA_BQB x FA_BK
    float *dQs = dPs + FA_BQB * FA_BK;           // FA_BQB x hd
    float *lse_s = dQs + FA_BQB * hd, *D_s = lse_s + FA_BQB;
    const size_t qs = (size_t)s.n_heads * hd, ks = (size_t)s.n_kv_heads * hd;
    const size_t q_off = (size_t)b * s.seq * qs + (size_t)h * hd, kv_off = (size_t)b * s.seq * ks + (size_t)kh * hd;
    const int32_t *sg = seg ? seg + (size_t)b * s.seq : nullptr;

    load_tile(Qs, q + q_off, FA_BQB, q0, s.seq, qs, hd);
    load_tile(dOs, dout + q_off, FA_BQB, q0, s.seq, qs, hd);
    load_rows(lse_s, D_s, lse, D, b, h, q0, s);
    for (int i = tid; i < FA_BQB * hd; i += blockDim.x)
        dQs[i] = 0.0f;
    const int key_end = q0 + FA_BQB < s.seq ? q0 + FA_BQB : s.seq;
    for (int k0 = 0; k0 < key_end; k0 += FA_BK) {
        __syncthreads();
        load_tile(Ks, k + kv_off, FA_BK, k0, s.seq, ks, hd);
        load_tile(Vs, v + kv_off, FA_BK, k0, s.seq, ks, hd);
        __syncthreads();
        tile_xyt(Ss, Qs, Ks, FA_BQB, hd);
        tile_xyt(dPs, dOs, Vs, FA_BQB, hd);
        __syncthreads();
        tile_softmax_grad(nullptr, dSs, Ss, dPs, lse_s, D_s, q0, k0, sg, s);
        __syncthreads();
        // dQ += dS K: the (FA_BQB / 16) x (hd / 16) output tiles dealt to the warps
        for (int t = warp; t < (FA_BQB / 16) * (hd / 16); t += FA_THREADS / 32) {
            const int rs = t % (FA_BQB / 16), j = t / (FA_BQB / 16);
            acc_frag acc;
            float *dq_tile = dQs + rs * 16 * hd + j * 16;
            wmma::load_matrix_sync(acc, dq_tile, hd, wmma::mem_row_major);
            mma_k<wmma::row_major, wmma::row_major>(acc, dSs + rs * 16 * FA_BK, FA_BK, 16, Ks + j * 16, hd, 16 * hd,
                                                    FA_BK / 16);
            wmma::store_matrix_sync(dq_tile, acc, hd, wmma::mem_row_major);
        }
    }
    __syncthreads();
    for (int i = tid; i < FA_BQB * hd; i += blockDim.x) {
        const int r = i / hd, c = i % hd, t = q0 + r;
        if (t < s.seq)
            dq[q_off + (size_t)t * qs + c] = dQs[i] * s.scale;
    }
}

// ---- host side ----

static size_t fwd_smem(int hd)
{
    return (size_t)(FA_BQ + 2 * FA_BK) * hd * sizeof(bf16) + (size_t)FA_BQ * FA_BK * (sizeof(bf16) + sizeof(float)) +
           (size_t)FA_BQ * hd * sizeof(float) + 3 * FA_BQ * sizeof(float);
}

static size_t bwd_kv_smem(int hd)
{
    return (size_t)(2 * FA_BK + 2 * FA_BQB) * hd * sizeof(bf16) + (size_t)FA_BQB * FA_BK * 2 * (sizeof(bf16) + sizeof(float)) +
           (size_t)2 * FA_BK * hd * sizeof(float) + 2 * FA_BQB * sizeof(float);
}

static size_t bwd_q_smem(int hd)
{
    return (size_t)(2 * FA_BQB + 2 * FA_BK) * hd * sizeof(bf16) + (size_t)FA_BQB * FA_BK * (sizeof(bf16) + 2 * sizeof(float)) +
           (size_t)FA_BQB * hd * sizeof(float) + 2 * FA_BQB * sizeof(float);
}

int cuda_flash_usable(backend *be, int head_dim)
{
    const char *choice = getenv("SHARDTUNE_CUDA_ATTENTION");
    return impl_of(be)->bf16 && head_dim % 16 == 0 && head_dim <= 128 && !(choice && strcmp(choice, "blocked") == 0);
}

static fa_shape shape_of(int seq, int n_heads, int n_kv_heads, int head_dim)
{
    fa_shape s;
    s.seq = seq, s.n_heads = n_heads, s.n_kv_heads = n_kv_heads, s.group = n_heads / n_kv_heads, s.hd = head_dim;
    s.scale = 1.0f / sqrtf((float)head_dim);
    return s;
}

void cuda_flash_fwd(backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                    const int32_t *seg, int batch, int seq, int n_heads, int n_kv_heads, int head_dim)
{
    const fa_shape s = shape_of(seq, n_heads, n_kv_heads, head_dim);
    const size_t smem = fwd_smem(head_dim);
    CUDA_CHECK(cudaFuncSetAttribute(k_flash_fwd, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
    CUDA_LAUNCH_SMEM(k_flash_fwd, dim3((seq + FA_BQ - 1) / FA_BQ, n_heads, batch), FA_THREADS, smem,
                     impl_of(be)->stream, out, lse, q, k, v, seg, s);
}

void cuda_flash_bwd(backend *be, float *dq, float *dk, float *dv, const float *dout, const float *D, const float *lse,
                    const float *q, const float *k, const float *v, const int32_t *seg, int batch, int seq,
                    int n_heads, int n_kv_heads, int head_dim)
{
    const fa_shape s = shape_of(seq, n_heads, n_kv_heads, head_dim);
    cudaStream_t st = impl_of(be)->stream;
    const size_t smem_kv = bwd_kv_smem(head_dim), smem_q = bwd_q_smem(head_dim);
    CUDA_CHECK(cudaFuncSetAttribute(k_flash_bwd_kv, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_kv));
    CUDA_CHECK(cudaFuncSetAttribute(k_flash_bwd_q, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem_q));
    CUDA_LAUNCH_SMEM(k_flash_bwd_kv, dim3((seq + FA_BK - 1) / FA_BK, n_kv_heads, batch), FA_THREADS, smem_kv, st, dk,
                     dv, dout, D, lse, q, k, v, seg, s);
    CUDA_LAUNCH_SMEM(k_flash_bwd_q, dim3((seq + FA_BQB - 1) / FA_BQB, n_heads, batch), FA_THREADS, smem_q, st, dq,
                     dout, D, lse, q, k, v, seg, s);
}
