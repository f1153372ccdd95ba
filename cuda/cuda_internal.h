// cuda_internal.h: what the CUDA backend's files share (C++ / CUDA only):
// the backend's state, error checks, the row-major GEMM helper, grow-only
// scratch buffers and block reductions.
#ifndef SHARDTUNE_CUDA_INTERNAL_H
#define SHARDTUNE_CUDA_INTERNAL_H

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <unordered_map>
#include <vector>

#include "backend_cuda.h"

#define CUDA_CHECK(call) cuda_check((call), #call, __FILE__, __LINE__)
#define CUBLAS_CHECK(call) cublas_check((call), #call, __FILE__, __LINE__)

void cuda_check(cudaError_t err, const char *what, const char *file, int line);
void cublas_check(cublasStatus_t st, const char *what, const char *file, int line);

// Scratch buffers the ops keep between calls (grown, never shrunk), so that
// no op allocates in the steady state.  Accounted as MEM_ACTIVATIONS.
enum cuda_scratch_slot {
    SCRATCH_ATTN_S,    // scores / probabilities of a query block
    SCRATCH_ATTN_DP,   // their gradient
    SCRATCH_ATTN_D,    // rowsum(dO * O) per position and head
    SCRATCH_XENT,      // logits chunk of lm_head_xent
    SCRATCH_XENT_GRAD, // its gradient when the logits are kept
    SCRATCH_ROW_LOSS,  // per-row losses (double)
    SCRATCH_REDUCE,    // per-block partial sums (double)
    SCRATCH_N
};

struct cuda_block_info {
    size_t n_bytes;     // asked for (accounting)
    size_t cached_size; // size class the block belongs to (device blocks)
    mem_category cat;
    int on_host;
};

struct cuda_impl {
    int device;
    cudaStream_t stream;
    cublasHandle_t blas;
    cublasComputeType_t compute;
    int bf16; // bf16 compute asked for
    // caching allocator: live blocks, and free device blocks by size class
    std::unordered_map<void *, cuda_block_info> live;
    std::multimap<size_t, void *> cache;
    size_t cached_bytes;
    size_t reserved_bytes; // all that cudaMalloc holds (its peak: backend.allocator_peak_bytes)
    void *scratch[SCRATCH_N];
    size_t scratch_bytes[SCRATCH_N];
    float *quant4_tables; // the 4-bit and 8-bit code values (dequant4_cuda.cu), made on first use
};

static inline cuda_impl *impl_of(backend *be) { return static_cast<cuda_impl *>(be->impl); }

// Device scratch of at least n_bytes in slot (contents undefined).
void *cuda_scratch(backend *be, cuda_scratch_slot slot, size_t n_bytes);

// How many bytes an op may hold in one scratch block (attention's score
// block, a chunk of logits): 256 MiB, or SHARDTUNE_CUDA_SCRATCH_KIB, which
// the op check lowers so that small shapes take several blocks.
size_t cuda_scratch_budget(void);

// Row-major C = alpha op(A) op(B) + beta C, batched with element strides
// (batch 1: strides unused), fp32 in memory, computed as the backend's
// precision says.
void cuda_gemm(backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               long long stride_a, const float *b, int ldb, long long stride_b, float beta, float *c, int ldc,
               long long stride_c, int batch);

// Launch shape for a flat loop over n elements (grid-stride kernels).
static inline unsigned cuda_grid_for(size_t n, unsigned threads)
{
    size_t blocks = (n + threads - 1) / threads;
    return blocks > 65535u * 16u ? 65535u * 16u : (blocks ? (unsigned)blocks : 1u);
}

// The loop of a grid-stride kernel: i over [0, n), whatever the grid.
#define GRID_STRIDE(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

// kernel<<<grid, block, 0, stream>>>(args...), then a check of the launch.
// A macro, so that the CPU emulation of CUDA (tests/cuda_emu) can run the
// same kernels: there the launch is a call of the emulator.
// CUDA_LAUNCH_SMEM also gives the bytes of dynamic shared memory, which a
// kernel declares with CUDA_DYNAMIC_SHARED(name).
#ifdef SHARDTUNE_CUDA_EMULATION
#define CUDA_LAUNCH_SMEM(kernel, grid, block, smem, stream, ...)                                           \
    do {                                                                                                   \
        cuda_emu_launch((grid), (block), (smem), (const void *)&kernel, [&] { kernel(__VA_ARGS__); });     \
        CUDA_CHECK(cudaGetLastError());                                                                    \
    } while (0)
#define CUDA_DYNAMIC_SHARED(name) unsigned char *name = (unsigned char *)cuda_emu_dynamic_shared()
#else
#define CUDA_LAUNCH_SMEM(kernel, grid, block, smem, stream, ...)                                           \
    do {                                                                                                   \
        kernel<<<(grid), (block), (smem), (stream)>>>(__VA_ARGS__);                                        \
        CUDA_CHECK(cudaGetLastError());                                                                    \
    } while (0)
#define CUDA_DYNAMIC_SHARED(name) extern __shared__ __align__(128) unsigned char name[]
#endif
#define CUDA_LAUNCH(kernel, grid, block, stream, ...) CUDA_LAUNCH_SMEM(kernel, grid, block, 0, stream, __VA_ARGS__)

#if defined(__CUDACC__) || defined(SHARDTUNE_CUDA_EMULATION)
// A reduction over a block whose size is a multiple of 32 (warp shuffles,
// then one value per warp through shared memory); every thread gets the
// result.  Safe to call several times in a row.
template <typename T, typename Op> __device__ inline T block_reduce(T v, T identity, Op op)
{
    __shared__ T part[32];
    __shared__ T result;
    for (int o = 16; o > 0; o >>= 1)
        v = op(v, __shfl_down_sync(0xffffffffu, v, o));
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0)
        part[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < (int)(blockDim.x >> 5) ? part[lane] : identity;
        for (int o = 16; o > 0; o >>= 1)
            v = op(v, __shfl_down_sync(0xffffffffu, v, o));
        if (lane == 0)
            result = v;
    }
    __syncthreads();
    T r = result;
    __syncthreads();
    return r;
}

template <typename T> __device__ inline T block_sum(T v)
{
    return block_reduce(v, T(0), [](T a, T b) { return a + b; });
}

__device__ inline float block_max(float v)
{
    return block_reduce(v, -INFINITY, [](float a, float b) { return fmaxf(a, b); });
}
#endif

// The ops, one file per family (backend_cuda.cu fills the table).
void cuda_install_elementwise(backend *be); // elementwise_cuda.cu
void cuda_install_attention(backend *be);   // attention_cuda.cu
void cuda_install_xent(backend *be);        // xent_cuda.cu

// to_f32 of a whole 4-bit tensor (src/weight4.h's layout: codes, then block
// state) into fp32, bit for bit as the CPU (dequant4_cuda.cu).
void cuda_dequant4(backend *be, float *out, const void *in, storage_dtype dt, size_t n_elems);

// Fused (flash) attention on the tensor cores, flash_attention_cuda.cu:
// used under bf16 compute for head_dim a multiple of 16 up to 128, unless
// SHARDTUNE_CUDA_ATTENTION=blocked.  D is rowsum(dout * out) per (position,
// head), as attention_cuda.cu computes it.
int cuda_flash_usable(backend *be, int head_dim);
void cuda_flash_fwd(backend *be, float *out, float *lse, const float *q, const float *k, const float *v,
                    const int32_t *seg, int batch, int seq, int n_heads, int n_kv_heads, int head_dim);
void cuda_flash_bwd(backend *be, float *dq, float *dk, float *dv, const float *dout, const float *D, const float *lse,
                    const float *q, const float *k, const float *v, const int32_t *seg, int batch, int seq,
                    int n_heads, int n_kv_heads, int head_dim);

#endif
