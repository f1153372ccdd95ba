// cuda_emu.cc: a CPU emulation of the CUDA runtime, cuBLAS and NCCL, as far
// as shardtune's CUDA backend uses them (see include/).  The backend's own
// sources, compiled with g++ against these headers, become a plugin
// (shardtune-cuda-emu.so) that runs on any machine: the op check and the
// training comparison then exercise the backend's indexing, launches,
// reductions, GEMM calls and collectives in CI, where there is no GPU.
//
// What it checks beyond arithmetic:
//  - threads of a block run as fibers (ucontext) with real barrier
//    semantics: __syncthreads waits for every live thread of the block, a
//    warp shuffle for every live lane of the warp; a barrier that can never
//    be released (divergent __syncthreads) aborts with a message;
//  - launch shapes are checked against CUDA's limits;
//  - "device" memory lives in an arena that is PROT_NONE except while an
//    emulated device operation runs, so host code that reads or writes device
//    memory directly crashes here as it would on a GPU;
//  - fresh device memory is filled with NaN bytes, as uninitialised memory;
//  - cuBLAS's leading-dimension rules are enforced, and C is not read when
//    beta is 0.
// What it cannot check: speed, the hardware memory model, real cuBLAS and
// NCCL.  Everything is synchronous: streams and events order trivially.
#include <mpi.h>
#include <sys/mman.h>
#include <setjmp.h>
#include <ucontext.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "cublas_v2.h"
#include "cuda_runtime.h"
#include "nccl.h"

static void emu_fatal(const char *what)
{
    fprintf(stderr, "cuda emulator: %s\n", what);
    abort();
}

// ---------------------------------------------------------------------
// device memory

static const size_t ARENA_BYTES = (size_t)64 << 30; // address space only (MAP_NORESERVE)
static char *arena;
static size_t arena_used;                            // bump allocation: freed blocks are not reused
static std::map<uintptr_t, size_t> device_blocks, host_blocks;
static int device_depth;
static cudaError_t last_error = cudaSuccess;

static size_t page_round(size_t n)
{
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return (n + page - 1) / page * page;
}

// RAII: device memory is readable and writable while one of these lives.
struct device_scope {
    device_scope()
    {
        if (device_depth++ == 0 && arena_used)
            mprotect(arena, page_round(arena_used), PROT_READ | PROT_WRITE);
    }
    ~device_scope()
    {
        if (--device_depth == 0 && arena_used)
            mprotect(arena, page_round(arena_used), PROT_NONE);
    }
};

static const std::map<uintptr_t, size_t>::const_iterator find_block(const std::map<uintptr_t, size_t> &m,
                                                                     const void *p)
{
    uintptr_t a = (uintptr_t)p;
    auto it = m.upper_bound(a);
    if (it == m.begin())
        return m.end();
    --it;
    return a < it->first + (it->second ? it->second : 1) ? it : m.end();
}

extern "C" cudaError_t cudaMalloc(void **p, size_t n)
{
    if (!arena) {
        void *a = mmap(nullptr, ARENA_BYTES, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (a == MAP_FAILED)
            emu_fatal("cannot reserve the device arena");
        arena = (char *)a;
    }
    const size_t start = (arena_used + 255) / 256 * 256;
    if (start + n > ARENA_BYTES)
        return last_error = cudaErrorMemoryAllocation;
    arena_used = start + n;
    *p = arena + start;
    device_blocks[(uintptr_t)*p] = n;
    device_scope scope;
    memset(*p, 0xff, n); // uninitialised: NaN bytes
    return cudaSuccess;
}

extern "C" cudaError_t cudaFree(void *p)
{
    auto it = device_blocks.find((uintptr_t)p);
    if (it == device_blocks.end())
        emu_fatal("cudaFree of a pointer cudaMalloc did not return");
    device_blocks.erase(it);
    return cudaSuccess;
}

extern "C" cudaError_t cudaHostAlloc(void **p, size_t n, unsigned flags)
{
    (void)flags;
    *p = malloc(n ? n : 1);
    if (!*p)
        return last_error = cudaErrorMemoryAllocation;
    host_blocks[(uintptr_t)*p] = n;
    return cudaSuccess;
}

extern "C" cudaError_t cudaFreeHost(void *p)
{
    if (!host_blocks.erase((uintptr_t)p))
        emu_fatal("cudaFreeHost of a pointer cudaHostAlloc did not return");
    free(p);
    return cudaSuccess;
}

extern "C" cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes)
{
    *total_bytes = ARENA_BYTES;
    *free_bytes = ARENA_BYTES - arena_used;
    return cudaSuccess;
}

extern "C" cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *p)
{
    memset(attr, 0, sizeof *attr);
    if (find_block(device_blocks, p) != device_blocks.end())
        attr->type = cudaMemoryTypeDevice, attr->devicePointer = (void *)p;
    else if (find_block(host_blocks, p) != host_blocks.end())
        attr->type = cudaMemoryTypeHost, attr->hostPointer = (void *)p, attr->devicePointer = (void *)p;
    else
        attr->type = cudaMemoryTypeUnregistered, attr->hostPointer = (void *)p;
    return cudaSuccess;
}

extern "C" cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind,
                                       cudaStream_t s)
{
    (void)kind, (void)s;
    device_scope scope;
    memmove(dst, src, n);
    return cudaSuccess;
}

extern "C" cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s)
{
    (void)s;
    if (n && find_block(device_blocks, p) == device_blocks.end())
        emu_fatal("cudaMemsetAsync on memory that is not device memory");
    device_scope scope;
    memset(p, value, n);
    return cudaSuccess;
}

// ---------------------------------------------------------------------
// device, errors, streams, events

extern "C" cudaError_t cudaGetDeviceCount(int *count)
{
    *count = 1;
    return cudaSuccess;
}

extern "C" cudaError_t cudaSetDevice(int device) { return device == 0 ? cudaSuccess : (last_error = cudaErrorInvalidValue); }

extern "C" const char *cudaGetErrorString(cudaError_t err)
{
    switch (err) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument (launch shape)";
    default: return "emulated CUDA error";
    }
}

extern "C" cudaError_t cudaGetLastError(void)
{
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}

struct emu_stream {
    int unused;
};
struct emu_event {
    int unused;
};

extern "C" cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags)
{
    (void)flags;
    *s = new emu_stream();
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamDestroy(cudaStream_t s)
{
    delete s;
    return cudaSuccess;
}
extern "C" cudaError_t cudaStreamSynchronize(cudaStream_t s) { return s ? cudaSuccess : cudaErrorInvalidValue; }
extern "C" cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags)
{
    (void)flags;
    return s && e ? cudaSuccess : cudaErrorInvalidValue;
}
extern "C" cudaError_t cudaEventCreate(cudaEvent_t *e)
{
    *e = new emu_event();
    return cudaSuccess;
}
extern "C" cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags)
{
    (void)flags;
    return cudaEventCreate(e);
}
extern "C" cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) { return e && s ? cudaSuccess : cudaErrorInvalidValue; }
extern "C" cudaError_t cudaEventSynchronize(cudaEvent_t e) { return e ? cudaSuccess : cudaErrorInvalidValue; }
extern "C" cudaError_t cudaEventQuery(cudaEvent_t e) { return e ? cudaSuccess : cudaErrorInvalidValue; }
extern "C" cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b)
{
    *ms = 0.0f;
    return a && b ? cudaSuccess : cudaErrorInvalidValue;
}
extern "C" cudaError_t cudaEventDestroy(cudaEvent_t e)
{
    delete e;
    return cudaSuccess;
}

// ---------------------------------------------------------------------
// kernels: the threads of one block as fibers
//
// A pool of fibers, each on its own stack, started once (makecontext) and
// then switched with _setjmp/_longjmp, which save no signal mask (no system
// call per switch).  A fiber parks at the top of its loop; the scheduler
// runs each runnable fiber until it reaches a barrier or ends its body.

enum fiber_state { RUNNABLE, AT_BLOCK_BARRIER, AT_WARP_BARRIER, DONE };

struct fiber {
    jmp_buf buf;
    fiber_state state;
    unsigned warp_epoch;
    dim3 tid;
};

static const size_t FIBER_STACK = 128 << 10;
static const int MAX_THREADS = 1024;
static fiber pool[MAX_THREADS];
static int n_started, n_threads;
static jmp_buf scheduler;
static volatile int current = -1;
static emu_ids_t ids;
static const std::function<void()> *body;
static double shuffle_slots[2][MAX_THREADS / 32][32]; // [epoch parity][warp][lane]

const emu_ids_t &cuda_emu_ids(void) { return ids; }

static void fiber_loop(void)
{
    for (;;) {
        if (!_setjmp(pool[current].buf)) // parked: the next body starts here
            _longjmp(scheduler, 1);
        (*body)();
        pool[current].state = DONE;
    }
}

static void start_fibers(int n)
{
    for (; n_started < n; n_started++) {
        static ucontext_t ctx, here;
        getcontext(&ctx);
        ctx.uc_stack.ss_sp = malloc(FIBER_STACK);
        ctx.uc_stack.ss_size = FIBER_STACK;
        ctx.uc_link = nullptr;
        if (!ctx.uc_stack.ss_sp)
            emu_fatal("out of memory for fiber stacks");
        makecontext(&ctx, fiber_loop, 0);
        current = n_started;
        if (!_setjmp(scheduler))
            swapcontext(&here, &ctx); // runs up to the fiber's first park
    }
}

static void yield_as(fiber_state s)
{
    pool[current].state = s;
    if (!_setjmp(pool[current].buf))
        _longjmp(scheduler, 1);
}

void __syncthreads(void) { yield_as(AT_BLOCK_BARRIER); }

void __syncwarp(unsigned mask)
{
    (void)mask;
    pool[current].warp_epoch++;
    yield_as(AT_WARP_BARRIER);
}

double cuda_emu_shfl_down(double v, unsigned offset)
{
    const int me = current, lane = me % 32, warp = me / 32, parity = pool[me].warp_epoch & 1;
    shuffle_slots[parity][warp][lane] = v;
    pool[me].warp_epoch++;
    yield_as(AT_WARP_BARRIER);
    const unsigned src = lane + offset;
    return src < 32 && warp * 32 + (int)src < n_threads ? shuffle_slots[parity][warp][src] : v;
}

// Releases the barriers every live thread (of the block, or of a warp)
// has reached; returns whether any thread became runnable.
static bool release_barriers(void)
{
    bool released = false, all_at_block = true;
    int live = 0;
    for (int i = 0; i < n_threads; i++)
        if (pool[i].state != DONE) {
            live++;
            all_at_block = all_at_block && pool[i].state == AT_BLOCK_BARRIER;
        }
    if (live && all_at_block) {
        for (int i = 0; i < n_threads; i++)
            if (pool[i].state == AT_BLOCK_BARRIER)
                pool[i].state = RUNNABLE;
        return true;
    }
    for (int w = 0; w * 32 < n_threads; w++) {
        bool all_at_warp = true, any = false;
        for (int i = w * 32; i < n_threads && i < (w + 1) * 32; i++)
            if (pool[i].state != DONE) {
                any = true;
                all_at_warp = all_at_warp && pool[i].state == AT_WARP_BARRIER;
            }
        if (any && all_at_warp) {
            for (int i = w * 32; i < n_threads && i < (w + 1) * 32; i++)
                if (pool[i].state == AT_WARP_BARRIER)
                    pool[i].state = RUNNABLE;
            released = true;
        }
    }
    return released;
}

static void run_block(void)
{
    for (int i = 0; i < n_threads; i++)
        pool[i].state = RUNNABLE, pool[i].warp_epoch = 0;
    for (;;) {
        bool ran = false;
        for (int i = 0; i < n_threads; i++)
            if (pool[i].state == RUNNABLE) {
                current = i;
                ids.thread = pool[i].tid;
                if (!_setjmp(scheduler))
                    _longjmp(pool[i].buf, 1);
                ran = true;
            }
        bool live = false;
        for (int i = 0; i < n_threads && !live; i++)
            live = pool[i].state != DONE;
        if (!live)
            return;
        if (!release_barriers() && !ran)
            emu_fatal("deadlock: threads wait at barriers that can never be released (divergent __syncthreads "
                      "or shuffle)");
    }
}

// Dynamic shared memory: up to 48 KiB without asking, more only up to what
// cudaFuncSetAttribute allowed for that kernel, never over the 163 KiB an
// sm_80 block can have.
static std::map<const void *, int> max_dynamic_shared;
static std::vector<unsigned char> dynamic_shared;
static void *dynamic_base;
static const size_t SMEM_DEFAULT = 48 << 10, SMEM_SM80 = 163 << 10;

cudaError_t cuda_emu_set_max_dynamic_shared(const void *kernel, int bytes)
{
    if (bytes < 0 || (size_t)bytes > SMEM_SM80)
        return last_error = cudaErrorInvalidValue;
    max_dynamic_shared[kernel] = bytes;
    return cudaSuccess;
}

void *cuda_emu_dynamic_shared(void) { return dynamic_base; }

void cuda_emu_launch(dim3 grid, dim3 block, size_t smem, const void *kernel_id, const std::function<void()> &kernel)
{
    const unsigned long threads = (unsigned long)block.x * block.y * block.z;
    auto allowed = max_dynamic_shared.find(kernel_id);
    const size_t smem_limit = allowed != max_dynamic_shared.end() && (size_t)allowed->second > SMEM_DEFAULT
                                  ? (size_t)allowed->second
                                  : SMEM_DEFAULT;
    if (threads == 0 || threads > (unsigned long)MAX_THREADS || block.z > 64 || grid.x == 0 || grid.y == 0 ||
        grid.z == 0 || grid.x > 2147483647u || grid.y > 65535 || grid.z > 65535 || smem > smem_limit) {
        last_error = cudaErrorInvalidConfiguration;
        return;
    }
    dynamic_shared.assign(smem + 128, 0xff); // uninitialised: NaN bytes
    const uintptr_t base = (uintptr_t)dynamic_shared.data();
    dynamic_base = (void *)((base + 127) / 128 * 128); // CUDA aligns it to 128 bytes at least
    start_fibers((int)threads);
    n_threads = (int)threads;
    int t = 0;
    for (unsigned z = 0; z < block.z; z++)
        for (unsigned y = 0; y < block.y; y++)
            for (unsigned x = 0; x < block.x; x++)
                pool[t++].tid = dim3(x, y, z);
    device_scope scope;
    body = &kernel;
    ids.block_dim = block;
    ids.grid_dim = grid;
    for (unsigned z = 0; z < grid.z; z++)
        for (unsigned y = 0; y < grid.y; y++)
            for (unsigned x = 0; x < grid.x; x++) {
                ids.block = dim3(x, y, z);
                run_block();
            }
    body = nullptr;
}

// ---------------------------------------------------------------------
// cuBLAS

struct emu_cublas {
    cudaStream_t stream;
};

extern "C" cublasStatus_t cublasCreate(cublasHandle_t *h)
{
    *h = new emu_cublas();
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasDestroy(cublasHandle_t h)
{
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
extern "C" cublasStatus_t cublasSetStream(cublasHandle_t h, cudaStream_t s)
{
    h->stream = s;
    return CUBLAS_STATUS_SUCCESS;
}

// An fp32 value rounded to bf16 (nearest even), as FAST_16BF rounds inputs.
static float to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, 4);
    if ((u & 0x7f800000u) != 0x7f800000u)
        u += 0x7fffu + ((u >> 16) & 1u);
    u &= 0xffff0000u;
    memcpy(&x, &u, 4);
    return x;
}

extern "C" cublasStatus_t cublasGemmStridedBatchedEx(cublasHandle_t h, cublasOperation_t op_a,
                                                     cublasOperation_t op_b, int m, int n, int k, const void *alpha,
                                                     const void *a, cudaDataType a_type, int lda, long long stride_a,
                                                     const void *b, cudaDataType b_type, int ldb, long long stride_b,
                                                     const void *beta, void *c, cudaDataType c_type, int ldc,
                                                     long long stride_c, int batch, cublasComputeType_t compute,
                                                     cublasGemmAlgo_t algo)
{
    (void)algo;
    // cuBLAS: A is m x k (op N) or k x m (op T) in column-major storage, lda >= its rows
    const int rows_a = op_a == CUBLAS_OP_N ? m : k, rows_b = op_b == CUBLAS_OP_N ? k : n;
    if (!h || m < 0 || n < 0 || k < 0 || batch < 0 || lda < (rows_a > 1 ? rows_a : 1) ||
        ldb < (rows_b > 1 ? rows_b : 1) || ldc < (m > 1 ? m : 1) || a_type != CUDA_R_32F || b_type != CUDA_R_32F ||
        c_type != CUDA_R_32F)
        return CUBLAS_STATUS_INVALID_VALUE;
    const float al = *(const float *)alpha, be = *(const float *)beta;
    const bool bf16 = compute == CUBLAS_COMPUTE_32F_FAST_16BF;
    device_scope scope;
    for (int q = 0; q < batch; q++) {
        const float *A = (const float *)a + q * stride_a, *B = (const float *)b + q * stride_b;
        float *C = (float *)c + q * stride_c;
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                float acc = 0.0f;
                for (int p = 0; p < k; p++) {
                    float x = op_a == CUBLAS_OP_N ? A[i + (size_t)p * lda] : A[p + (size_t)i * lda];
                    float y = op_b == CUBLAS_OP_N ? B[p + (size_t)j * ldb] : B[j + (size_t)p * ldb];
                    acc += bf16 ? to_bf16(x) * to_bf16(y) : x * y;
                }
                float &out = C[i + (size_t)j * ldc];
                out = be == 0.0f ? al * acc : al * acc + be * out;
            }
    }
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" cublasStatus_t cublasGemmEx(cublasHandle_t h, cublasOperation_t op_a, cublasOperation_t op_b, int m, int n,
                                       int k, const void *alpha, const void *a, cudaDataType a_type, int lda,
                                       const void *b, cudaDataType b_type, int ldb, const void *beta, void *c,
                                       cudaDataType c_type, int ldc, cublasComputeType_t compute,
                                       cublasGemmAlgo_t algo)
{
    return cublasGemmStridedBatchedEx(h, op_a, op_b, m, n, k, alpha, a, a_type, lda, 0, b, b_type, ldb, 0, beta, c,
                                      c_type, ldc, 0, 1, compute, algo);
}

// ---------------------------------------------------------------------
// NCCL over MPI

struct emu_nccl {
    MPI_Comm mpi;
};

extern "C" const char *ncclGetErrorString(ncclResult_t r)
{
    return r == ncclSuccess ? "no error" : r == ncclInvalidArgument ? "invalid argument" : "system error";
}

extern "C" ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    static unsigned counter;
    memset(id, 0, sizeof *id);
    int world_rank = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world_rank);
    // unique among the ids any rank makes: (maker's world rank, its count)
    unsigned color = (unsigned)world_rank * 4096u + counter++;
    memcpy(id->internal, &color, sizeof color);
    return ncclSuccess;
}

// Every world rank calls this for each group in the same order (as
// comm_nccl_create does), so one MPI_Comm_split of the world per call
// gathers the ranks holding the same id.
extern "C" ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId id, int rank)
{
    unsigned color;
    memcpy(&color, id.internal, sizeof color);
    emu_nccl *c = new emu_nccl();
    if (MPI_Comm_split(MPI_COMM_WORLD, (int)(color & 0x7fffffff), rank, &c->mpi) != MPI_SUCCESS)
        return ncclSystemError;
    int size = 0, me = -1;
    MPI_Comm_size(c->mpi, &size);
    MPI_Comm_rank(c->mpi, &me);
    if (size != nranks || me != rank)
        return ncclInvalidArgument;
    *comm = c;
    return ncclSuccess;
}

extern "C" ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (comm) {
        MPI_Comm_free(&comm->mpi);
        delete comm;
    }
    return ncclSuccess;
}

static MPI_Datatype mpi_type(ncclDataType_t dt)
{
    switch (dt) {
    case ncclFloat32: return MPI_FLOAT;
    case ncclFloat64: return MPI_DOUBLE;
    case ncclUint64: return MPI_UINT64_T;
    default: return MPI_UNSIGNED_CHAR;
    }
}

static bool on_device(const void *p) { return find_block(device_blocks, p) != device_blocks.end(); }

// NCCL reads and writes device memory only.
static ncclResult_t check_buffers(const void *send, const void *recv)
{
    if (!on_device(send) || !on_device(recv))
        emu_fatal("a NCCL collective was given a buffer that is not device memory");
    return ncclSuccess;
}

extern "C" ncclResult_t ncclAllGather(const void *send, void *recv, size_t count, ncclDataType_t dt, ncclComm_t comm,
                                      cudaStream_t s)
{
    (void)s;
    check_buffers(send, recv);
    device_scope scope;
    MPI_Allgather(send, (int)count, mpi_type(dt), recv, (int)count, mpi_type(dt), comm->mpi);
    return ncclSuccess;
}

extern "C" ncclResult_t ncclReduceScatter(const void *send, void *recv, size_t count, ncclDataType_t dt,
                                          ncclRedOp_t op, ncclComm_t comm, cudaStream_t s)
{
    (void)s, (void)op;
    check_buffers(send, recv);
    device_scope scope;
    MPI_Reduce_scatter_block(send, recv, (int)count, mpi_type(dt), MPI_SUM, comm->mpi);
    return ncclSuccess;
}

extern "C" ncclResult_t ncclAllReduce(const void *send, void *recv, size_t count, ncclDataType_t dt, ncclRedOp_t op,
                                      ncclComm_t comm, cudaStream_t s)
{
    (void)s, (void)op;
    check_buffers(send, recv);
    device_scope scope;
    MPI_Allreduce(send == recv ? MPI_IN_PLACE : send, recv, (int)count, mpi_type(dt), MPI_SUM, comm->mpi);
    return ncclSuccess;
}

extern "C" ncclResult_t ncclBroadcast(const void *send, void *recv, size_t count, ncclDataType_t dt, int root,
                                      ncclComm_t comm, cudaStream_t s)
{
    (void)s;
    check_buffers(send, recv);
    device_scope scope;
    int me = 0;
    MPI_Comm_rank(comm->mpi, &me);
    if (me == root && send != recv)
        memcpy(recv, send, count * (dt == ncclFloat32 ? 4 : dt == ncclUint8 ? 1 : 8));
    MPI_Bcast(recv, (int)count, mpi_type(dt), root, comm->mpi);
    return ncclSuccess;
}
