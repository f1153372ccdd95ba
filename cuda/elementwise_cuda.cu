// elementwise_cuda.cu: the CUDA backend's per-element and per-row ops:
// widening of stored weights, add/scale, sum of squares, embedding, RMSNorm,
// RoPE, SwiGLU, dropout, DoRA's row norms and column sums, and AdamW.  Each
// follows the CPU backend's formula (backend_cpu.c) operation for operation,
// so that the two differ only by summation order.
#include "cuda_internal.h"

#include <cmath>
#include <cuda_bf16.h>
#include <cuda_fp16.h>

extern "C" {
#include "log.h"
#include "rng.h"
}

enum { THREADS = 256 };

static cudaStream_t stream_of(backend *be) { return impl_of(be)->stream; }

// ---- widening stored values to fp32 ----

// Stored values sit at any byte offset of a flat shard buffer: aligned
// ranges are read as words, others byte by byte (little-endian).
__device__ inline uint32_t load_bits(const unsigned char *in, size_t i, int width, int aligned)
{
    if (aligned)
        return width == 4 ? ((const uint32_t *)in)[i] : ((const uint16_t *)in)[i];
    const unsigned char *p = in + i * width;
    uint32_t v = 0;
    for (int b = 0; b < width; b++)
        v |= (uint32_t)p[b] << (8 * b);
    return v;
}

__global__ void k_to_f32(float *out, const unsigned char *in, int dt, int width, int aligned, size_t n)
{
    GRID_STRIDE(i, n)
    {
        uint32_t bits = load_bits(in, i, width, aligned);
        if (dt == DT_F32)
            out[i] = __uint_as_float(bits);
        else if (dt == DT_BF16)
            out[i] = __uint_as_float(bits << 16);
        else
            out[i] = __half2float(__ushort_as_half((unsigned short)bits));
    }
}

static void cuda_to_f32(backend *be, float *out, const void *in, storage_dtype dt, size_t n_elems)
{
    if (n_elems == 0)
        return;
    if (dt != DT_F32 && dt != DT_BF16 && dt != DT_F16) { /* 4-bit: a whole tensor, codes then block state */
        cuda_dequant4(be, out, in, dt, n_elems);
        return;
    }
    int width = (int)storage_bytes(dt, 1);
    int aligned = (uintptr_t)in % (uintptr_t)width == 0;
    CUDA_LAUNCH(k_to_f32, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), out, (const unsigned char *)in,
                (int)dt, width, aligned, n_elems);
}

// The residual stream stored narrow: fp32 to bf16 (nearest even), or a copy.
__global__ void k_from_f32(void *out, const float *in, int dt, size_t n)
{
    GRID_STRIDE(i, n)
    {
        if (dt == DT_BF16)
            ((__nv_bfloat16 *)out)[i] = __float2bfloat16(in[i]);
        else
            ((float *)out)[i] = in[i];
    }
}

static void cuda_from_f32(backend *be, void *out, const float *in, storage_dtype dt, size_t n_elems)
{
    if (dt != DT_F32 && dt != DT_BF16)
        die(EXIT_FAILURE_RUN, "cuda backend: values are stored narrow as bf16 only, not %s", storage_dtype_name(dt));
    if (n_elems == 0)
        return;
    CUDA_LAUNCH(k_from_f32, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), out, in, (int)dt, n_elems);
}

// ---- flat ranges ----

__global__ void k_add(float *y, const float *x, size_t n) { GRID_STRIDE(i, n) y[i] += x[i]; }

__global__ void k_scale(float *x, size_t n, float s) { GRID_STRIDE(i, n) x[i] *= s; }

static void cuda_add(backend *be, float *y, const float *x, size_t n_elems)
{
    if (!n_elems)
        return;
    CUDA_LAUNCH(k_add, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), y, x, n_elems);
}

static void cuda_scale(backend *be, float *x, size_t n_elems, float s)
{
    if (!n_elems)
        return;
    CUDA_LAUNCH(k_scale, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), x, n_elems, s);
}

// A fixed number of blocks, each summing a fixed set of elements, and the
// block sums added in order on the host: the same result every run.
enum { SUMSQ_BLOCKS = 512 };

__global__ void k_sum_squares(double *part, const float *x, size_t n)
{
    double acc = 0.0;
    GRID_STRIDE(i, n) acc += (double)x[i] * (double)x[i];
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        part[blockIdx.x] = acc;
}

static double cuda_sum_squares(backend *be, const float *x, size_t n_elems)
{
    if (!n_elems)
        return 0.0;
    double *part = (double *)cuda_scratch(be, SCRATCH_REDUCE, SUMSQ_BLOCKS * sizeof(double));
    CUDA_LAUNCH(k_sum_squares, SUMSQ_BLOCKS, THREADS, stream_of(be), part, x, n_elems);
    double host[SUMSQ_BLOCKS];
    be->copy_to_host(be, host, part, sizeof host);
    double total = 0.0;
    for (int b = 0; b < SUMSQ_BLOCKS; b++)
        total += host[b];
    return total;
}

// ---- model ops ----

__global__ void k_embedding(float *out, const int32_t *ids, const float *table, int dim)
{
    const float *src = table + (size_t)ids[blockIdx.x] * dim;
    float *dst = out + (size_t)blockIdx.x * dim;
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        dst[j] = src[j];
}

static void cuda_embedding_fwd(backend *be, float *out, const int32_t *ids, const float *table, int n, int dim)
{
    if (n <= 0)
        return;
    CUDA_LAUNCH(k_embedding, n, THREADS, stream_of(be), out, ids, table, dim);
}

// One block per row.
__global__ void k_rmsnorm_fwd(float *out, float *rstd, const float *x, const float *w, int dim, float eps)
{
    const float *xi = x + (size_t)blockIdx.x * dim;
    float *oi = out + (size_t)blockIdx.x * dim;
    double ss = 0.0;
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        ss += (double)xi[j] * xi[j];
    ss = block_sum(ss);
    const float r = (float)(1.0 / sqrt(ss / dim + eps));
    if (threadIdx.x == 0)
        rstd[blockIdx.x] = r;
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        oi[j] = w[j] * (xi[j] * r);
}

__global__ void k_rmsnorm_bwd(float *dx, const float *dout, const float *x, const float *w, const float *rstd, int dim)
{
    const size_t row = (size_t)blockIdx.x * dim;
    const float r = rstd[blockIdx.x];
    double dot = 0.0;
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        dot += (double)w[j] * dout[row + j] * x[row + j];
    dot = block_sum(dot);
    const float c = (float)(dot * r * r * r / dim);
    for (int j = threadIdx.x; j < dim; j += blockDim.x)
        dx[row + j] += r * w[j] * dout[row + j] - x[row + j] * c;
}

static void cuda_rmsnorm_fwd(backend *be, float *out, float *rstd, const float *x, const float *w, int n, int dim,
                             float eps)
{
    if (n <= 0)
        return;
    CUDA_LAUNCH(k_rmsnorm_fwd, n, THREADS, stream_of(be), out, rstd, x, w, dim, eps);
}

static void cuda_rmsnorm_bwd(backend *be, float *dx, const float *dout, const float *x, const float *w,
                             const float *rstd, int n, int dim)
{
    if (n <= 0)
        return;
    CUDA_LAUNCH(k_rmsnorm_bwd, n, THREADS, stream_of(be), dx, dout, x, w, rstd, dim);
}

// One thread per (position, head, rotated pair).
__global__ void k_rope(float *x, const int32_t *pos, const float *inv_freq, int n, int n_heads, int half, int inverse)
{
    const size_t total = (size_t)n * n_heads * half;
    GRID_STRIDE(t, total)
    {
        const int j = (int)(t % half);
        const size_t ih = t / half; // position * n_heads + head
        const int i = (int)(ih / n_heads);
        const float angle = (float)pos[i] * inv_freq[j];
        const float cs = cosf(angle), sn = inverse ? -sinf(angle) : sinf(angle);
        float *v = x + ih * (size_t)(2 * half);
        const float a = v[j], b = v[j + half];
        v[j] = a * cs - b * sn;
        v[j + half] = b * cs + a * sn;
    }
}

static void cuda_rope(backend *be, float *x, const int32_t *pos, const float *inv_freq, int n, int n_heads,
                      int head_dim, int inverse)
{
    const size_t total = (size_t)n * n_heads * (head_dim / 2);
    if (!total)
        return;
    CUDA_LAUNCH(k_rope, cuda_grid_for(total, THREADS), THREADS, stream_of(be), x, pos, inv_freq, n, n_heads,
                head_dim / 2, inverse);
}

__device__ inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

__global__ void k_swiglu_fwd(float *out, const float *gate, const float *up, size_t n)
{
    GRID_STRIDE(i, n)
    {
        const float g = gate[i];
        out[i] = g * sigmoid(g) * up[i];
    }
}

__global__ void k_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up, size_t n)
{
    GRID_STRIDE(i, n)
    {
        const float g = gate[i], s = sigmoid(g), d = dout[i];
        const float u = up[i];
        dup[i] = d * g * s;
        dgate[i] = d * u * s * (1.0f + g * (1.0f - s));
    }
}

static void cuda_swiglu_fwd(backend *be, float *out, const float *gate, const float *up, size_t n_elems)
{
    if (!n_elems)
        return;
    CUDA_LAUNCH(k_swiglu_fwd, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), out, gate, up, n_elems);
}

static void cuda_swiglu_bwd(backend *be, float *dgate, float *dup, const float *dout, const float *gate,
                            const float *up, size_t n_elems)
{
    if (!n_elems)
        return;
    CUDA_LAUNCH(k_swiglu_bwd, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), dgate, dup, dout, gate, up,
                n_elems);
}

// The mask bit of element i is rng_hash(key, i), as on the CPU: the same
// key gives the same mask on every backend.
__global__ void k_dropout(float *out, const float *x, size_t n, uint64_t threshold, float keep_scale, uint64_t key)
{
    GRID_STRIDE(i, n) out[i] = rng_hash(key, i) >= threshold ? x[i] * keep_scale : 0.0f;
}

static void cuda_dropout(backend *be, float *out, const float *x, size_t n_elems, float p, uint64_t key)
{
    if (!n_elems)
        return;
    const uint64_t threshold = (uint64_t)((double)p * 18446744073709551616.0);
    CUDA_LAUNCH(k_dropout, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), out, x, n_elems, threshold,
                1.0f / (1.0f - p), key);
}

// ---- DoRA ----

// One block per row, as the CPU sums it: in double.
__global__ void k_dora_norm(float *norm, float *g, const float *m, const float *w, int cols)
{
    const float *row = w + (size_t)blockIdx.x * cols;
    double ss = 0.0;
    for (int j = threadIdx.x; j < cols; j += blockDim.x)
        ss += (double)row[j] * row[j];
    ss = block_sum(ss);
    if (threadIdx.x == 0) {
        const float nrm = (float)sqrt(ss);
        norm[blockIdx.x] = nrm;
        if (g)
            g[blockIdx.x] = m[blockIdx.x] / nrm;
    }
}

static void cuda_dora_norm(backend *be, float *norm, float *g, const float *m, const float *w, int rows, int cols)
{
    if (rows <= 0)
        return;
    CUDA_LAUNCH(k_dora_norm, rows, THREADS, stream_of(be), norm, g, m, w, cols);
}

__global__ void k_scale_cols(float *y, const float *x, const float *g, float g_offset, int d, size_t n, int accumulate)
{
    GRID_STRIDE(i, n)
    {
        const float v = (g[i % d] + g_offset) * x[i];
        y[i] = accumulate ? y[i] + v : v;
    }
}

static void cuda_scale_cols(backend *be, float *y, const float *x, const float *g, float g_offset, int n, int d,
                            int accumulate)
{
    const size_t total = (size_t)n * d;
    if (!total)
        return;
    CUDA_LAUNCH(k_scale_cols, cuda_grid_for(total, THREADS), THREADS, stream_of(be), y, x, g, g_offset, d, total,
                accumulate);
}

// One thread per column walking the rows in order (neighbouring threads read
// neighbouring columns), summed in double as on the CPU.
__global__ void k_col_dot(float *out, const float *a, const float *b, const float *div, int n, int d)
{
    GRID_STRIDE(j, (size_t)d)
    {
        double acc = 0.0;
        for (int i = 0; i < n; i++)
            acc += (double)a[(size_t)i * d + j] * b[(size_t)i * d + j];
        out[j] += (float)(acc / div[j]);
    }
}

static void cuda_col_dot(backend *be, float *out, const float *a, const float *b, const float *div, int n, int d)
{
    if (d <= 0)
        return;
    CUDA_LAUNCH(k_col_dot, cuda_grid_for((size_t)d, THREADS), THREADS, stream_of(be), out, a, b, div, n, d);
}

// torch.optim.AdamW: decoupled decay, then the bias-corrected update.
__global__ void k_adamw(float *param, const float *grad, float *m, float *v, size_t n, float beta1, float beta2,
                        float eps, float step_size, float decay, double bc2_sqrt)
{
    GRID_STRIDE(i, n)
    {
        const float g = grad[i];
        float p = param[i] * decay;
        const float mi = m[i] + (g - m[i]) * (1.0f - beta1);
        const float vi = v[i] * beta2 + (1.0f - beta2) * g * g;
        const float denom = (float)(sqrtf(vi) / bc2_sqrt) + eps; // as the CPU: the division in double
        m[i] = mi;
        v[i] = vi;
        param[i] = p - step_size * (mi / denom);
    }
}

static void cuda_adamw(backend *be, float *param, const float *grad, float *m, float *v, size_t n_elems, float lr,
                       float beta1, float beta2, float eps, float weight_decay, int step)
{
    if (!n_elems)
        return;
    const double bc1 = 1.0 - pow(beta1, step);
    const double bc2_sqrt = sqrt(1.0 - pow(beta2, step));
    CUDA_LAUNCH(k_adamw, cuda_grid_for(n_elems, THREADS), THREADS, stream_of(be), param, grad, m, v, n_elems, beta1,
                beta2, eps, (float)(lr / bc1), 1.0f - lr * weight_decay, bc2_sqrt);
}

void cuda_install_elementwise(backend *be)
{
    be->to_f32 = cuda_to_f32;
    be->from_f32 = cuda_from_f32;
    be->add = cuda_add;
    be->scale = cuda_scale;
    be->sum_squares = cuda_sum_squares;
    be->embedding_fwd = cuda_embedding_fwd;
    be->rmsnorm_fwd = cuda_rmsnorm_fwd;
    be->rmsnorm_bwd = cuda_rmsnorm_bwd;
    be->rope = cuda_rope;
    be->swiglu_fwd = cuda_swiglu_fwd;
    be->swiglu_bwd = cuda_swiglu_bwd;
    be->dropout = cuda_dropout;
    be->dora_norm = cuda_dora_norm;
    be->scale_cols = cuda_scale_cols;
    be->col_dot = cuda_col_dot;
    be->adamw = cuda_adamw;
}
