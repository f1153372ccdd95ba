// backend_cuda.cu: the CUDA backend's memory, copies and matrix products,
// and the table of ops (the kernels live in elementwise_cuda.cu,
// attention_cuda.cu and xent_cuda.cu).
//
// Everything runs on one stream, so ops are ordered without events; the
// host waits only where it reads results back.  Device memory comes from
// cudaMalloc through a caching allocator: freed blocks are kept by size
// class and handed out again, because FSDP frees and re-allocates the same
// gathered sizes every unit of every step and cudaFree synchronises the
// whole device.  Reuse is safe on one stream: work that used the old block
// is queued before work that uses the new one.
#include "cuda_internal.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "log.h"
}

void cuda_check(cudaError_t err, const char *what, const char *file, int line)
{
    if (err != cudaSuccess)
        die(EXIT_FAILURE_RUN, "cuda backend: %s failed at %s:%d: %s", what, file, line, cudaGetErrorString(err));
}

void cublas_check(cublasStatus_t st, const char *what, const char *file, int line)
{
    if (st != CUBLAS_STATUS_SUCCESS)
        die(EXIT_FAILURE_RUN, "cuda backend: %s failed at %s:%d: cuBLAS status %d", what, file, line, (int)st);
}

extern "C" int cuda_device_count(void)
{
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        cudaGetLastError(); // clear the sticky "no driver" error
        return 0;
    }
    return n;
}

extern "C" int cuda_is_device_pointer(const void *p)
{
    cudaPointerAttributes attr;
    if (cudaPointerGetAttributes(&attr, p) != cudaSuccess) {
        cudaGetLastError();
        return 0;
    }
    return attr.type == cudaMemoryTypeDevice || attr.type == cudaMemoryTypeManaged;
}

extern "C" void *backend_cuda_stream(backend *be) { return impl_of(be)->stream; }

// ---- memory ----

// Size classes: 512-byte steps up to 1 MiB, 2 MiB steps above, so that a
// freed block serves any later request of the same class.
static size_t size_class(size_t n)
{
    const size_t small = 512, large = 2u << 20;
    if (n == 0)
        n = 1;
    return n <= (1u << 20) ? (n + small - 1) / small * small : (n + large - 1) / large * large;
}

static void release_cache(cuda_impl *im)
{
    CUDA_CHECK(cudaStreamSynchronize(im->stream));
    for (auto &kv : im->cache)
        CUDA_CHECK(cudaFree(kv.second));
    im->reserved_bytes -= im->cached_bytes;
    im->cache.clear();
    im->cached_bytes = 0;
}

static void *device_block(backend *be, size_t cls, mem_category cat, size_t n_bytes)
{
    cuda_impl *im = impl_of(be);
    auto it = im->cache.find(cls);
    if (it != im->cache.end()) {
        void *p = it->second;
        im->cache.erase(it);
        im->cached_bytes -= cls;
        return p;
    }
    void *p = nullptr;
    cudaError_t err = cudaMalloc(&p, cls);
    if (err == cudaErrorMemoryAllocation && im->cached_bytes) {
        cudaGetLastError();
        release_cache(im); // give the cached blocks back and try once more
        err = cudaMalloc(&p, cls);
    }
    if (err != cudaSuccess) {
        size_t free_b = 0, total_b = 0;
        cudaGetLastError();
        cudaMemGetInfo(&free_b, &total_b);
        die(EXIT_FAILURE_RUN,
            "cuda backend: out of device memory allocating %.1f MiB for %s (this rank holds %.1f MiB; "
            "the device has %.1f of %.1f MiB free): shard over more ranks, lower the micro-batch or "
            "sequence length, or turn on gradient_checkpointing",
            n_bytes / 1048576.0, mem_category_names[cat], be->peak_total_bytes / 1048576.0, free_b / 1048576.0,
            total_b / 1048576.0);
    }
    im->reserved_bytes += cls;
    if (im->reserved_bytes > be->allocator_peak_bytes)
        be->allocator_peak_bytes = im->reserved_bytes;
    return p;
}

static void *cuda_alloc(backend *be, size_t n_bytes, mem_category cat)
{
    cuda_impl *im = impl_of(be);
    size_t cls = size_class(n_bytes);
    void *p = device_block(be, cls, cat, n_bytes);
    CUDA_CHECK(cudaMemsetAsync(p, 0, n_bytes, im->stream));
    im->live[p] = cuda_block_info{n_bytes, cls, cat, 0};
    backend_account_alloc(be, n_bytes, cat, 0);
    return p;
}

// Pinned host memory: where offloaded shards live; kernels and copies
// reach it over the bus.
static void *cuda_alloc_host(backend *be, size_t n_bytes, mem_category cat)
{
    cuda_impl *im = impl_of(be);
    void *p = nullptr;
    if (cudaHostAlloc(&p, n_bytes ? n_bytes : 1, cudaHostAllocPortable | cudaHostAllocMapped) != cudaSuccess)
        die(EXIT_FAILURE_RUN, "cuda backend: cannot pin %.1f MiB of host memory for %s", n_bytes / 1048576.0,
            mem_category_names[cat]);
    memset(p, 0, n_bytes);
    im->live[p] = cuda_block_info{n_bytes, 0, cat, 1};
    backend_account_alloc(be, n_bytes, cat, 1);
    return p;
}

static void cuda_free(backend *be, void *p)
{
    if (!p)
        return;
    cuda_impl *im = impl_of(be);
    auto it = im->live.find(p);
    if (it == im->live.end())
        die(EXIT_FAILURE_RUN, "cuda backend: free of a pointer this backend did not allocate");
    cuda_block_info info = it->second;
    im->live.erase(it);
    backend_account_free(be, info.n_bytes, info.cat, info.on_host);
    if (info.on_host) {
        CUDA_CHECK(cudaStreamSynchronize(im->stream)); // queued work may still read it
        CUDA_CHECK(cudaFreeHost(p));
        return;
    }
    im->cache.emplace(info.cached_size, p);
    im->cached_bytes += info.cached_size;
}

void *cuda_scratch(backend *be, cuda_scratch_slot slot, size_t n_bytes)
{
    cuda_impl *im = impl_of(be);
    if (im->scratch_bytes[slot] < n_bytes) {
        cuda_free(be, im->scratch[slot]);
        im->scratch[slot] = cuda_alloc(be, n_bytes, MEM_ACTIVATIONS);
        im->scratch_bytes[slot] = n_bytes;
    }
    return im->scratch[slot];
}

size_t cuda_scratch_budget(void)
{
    const char *env = getenv("SHARDTUNE_CUDA_SCRATCH_KIB");
    return env && atol(env) > 0 ? (size_t)atol(env) << 10 : (size_t)256 << 20;
}

// Pinned host memory (offloaded shards) is zeroed by the host, once the
// queued work that may still use it is done: cudaMemset is for device memory.
static void cuda_zero(backend *be, void *p, size_t n_bytes)
{
    cuda_impl *im = impl_of(be);
    if (!n_bytes)
        return;
    if (cuda_is_device_pointer(p)) {
        CUDA_CHECK(cudaMemsetAsync(p, 0, n_bytes, im->stream));
        return;
    }
    CUDA_CHECK(cudaStreamSynchronize(im->stream));
    memset(p, 0, n_bytes);
}

// Copies to and from the host wait for their end: the host buffer may be
// reused (or read) as soon as the call returns.
static void cuda_copy_to_device(backend *be, void *dst, const void *host_src, size_t n_bytes)
{
    cuda_impl *im = impl_of(be);
    CUDA_CHECK(cudaMemcpyAsync(dst, host_src, n_bytes, cudaMemcpyDefault, im->stream));
    CUDA_CHECK(cudaStreamSynchronize(im->stream));
}

static void cuda_copy_to_host(backend *be, void *host_dst, const void *src, size_t n_bytes)
{
    cuda_impl *im = impl_of(be);
    CUDA_CHECK(cudaMemcpyAsync(host_dst, src, n_bytes, cudaMemcpyDefault, im->stream));
    CUDA_CHECK(cudaStreamSynchronize(im->stream));
}

static void cuda_copy(backend *be, void *dst, const void *src, size_t n_bytes)
{
    CUDA_CHECK(cudaMemcpyAsync(dst, src, n_bytes, cudaMemcpyDefault, impl_of(be)->stream));
}

static void cuda_synchronize(backend *be) { CUDA_CHECK(cudaStreamSynchronize(impl_of(be)->stream)); }

// ---- matrix products ----

// cuBLAS is column-major: a row-major X (leading dimension ld) is X^T to
// it.  So row-major C = op(A) op(B) is computed as C^T = op(B)^T op(A)^T,
// i.e. cuBLAS's product of B and A with the same transposition flags and
// m and n swapped.
void cuda_gemm(backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
               long long stride_a, const float *b, int ldb, long long stride_b, float beta, float *c, int ldc,
               long long stride_c, int batch)
{
    cuda_impl *im = impl_of(be);
    if (m <= 0 || n <= 0 || batch <= 0)
        return;
    const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N, op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
    if (batch == 1)
        CUBLAS_CHECK(cublasGemmEx(im->blas, op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb, a, CUDA_R_32F, lda, &beta,
                                  c, CUDA_R_32F, ldc, im->compute, CUBLAS_GEMM_DEFAULT));
    else
        CUBLAS_CHECK(cublasGemmStridedBatchedEx(im->blas, op_b, op_a, n, m, k, &alpha, b, CUDA_R_32F, ldb, stride_b, a,
                                                CUDA_R_32F, lda, stride_a, &beta, c, CUDA_R_32F, ldc, stride_c, batch,
                                                im->compute, CUBLAS_GEMM_DEFAULT));
}

static void cuda_matmul(backend *be, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
                        int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    cuda_gemm(be, trans_a, trans_b, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

static void cuda_destroy(backend *be)
{
    cuda_impl *im = impl_of(be);
    for (int s = 0; s < SCRATCH_N; s++)
        cuda_free(be, im->scratch[s]);
    cuda_free(be, im->quant4_tables);
    release_cache(im);
    cublasDestroy(im->blas);
    cudaStreamDestroy(im->stream);
    delete im;
    free(be);
}

extern "C" backend *backend_cuda_create(int device, int bf16, errbuf *e)
{
    int n = cuda_device_count();
    if (n == 0) {
        err_set(e, "--device cuda: no GPU answers (no CUDA driver or no device)");
        return nullptr;
    }
    if (device < 0 || device >= n) {
        err_set(e, "--device cuda: device %d asked for but %d GPU(s) answer", device, n);
        return nullptr;
    }
    cudaError_t err = cudaSetDevice(device);
    if (err != cudaSuccess) {
        err_set(e, "--device cuda: cannot use GPU %d: %s", device, cudaGetErrorString(err));
        return nullptr;
    }
    cuda_impl *im = new cuda_impl();
    im->device = device;
    CUDA_CHECK(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
    CUBLAS_CHECK(cublasCreate(&im->blas));
    CUBLAS_CHECK(cublasSetStream(im->blas, im->stream));
    // CUBLAS_COMPUTE_32F under the default math mode is plain fp32 (no
    // TF32): the fp32 precision reproduces the CPU backend
    im->compute = bf16 ? CUBLAS_COMPUTE_32F_FAST_16BF : CUBLAS_COMPUTE_32F;
    im->bf16 = bf16;

    backend *be = static_cast<backend *>(xcalloc(1, sizeof *be));
    be->name = bf16 ? "cuda (bf16)" : "cuda (fp32)";
    be->activation_dtype = bf16 ? DT_BF16 : DT_F32;
    be->impl = im;
    be->alloc = cuda_alloc;
    be->alloc_host = cuda_alloc_host;
    be->free = cuda_free;
    be->zero = cuda_zero;
    be->copy_to_device = cuda_copy_to_device;
    be->copy_to_host = cuda_copy_to_host;
    be->copy = cuda_copy;
    be->synchronize = cuda_synchronize;
    be->matmul = cuda_matmul;
    be->destroy = cuda_destroy;
    cuda_install_elementwise(be);
    cuda_install_attention(be);
    cuda_install_xent(be);
    return be;
}
