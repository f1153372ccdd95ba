/* cuda_runtime.h of the CPU emulation of CUDA (tests/cuda_emu): the part of
 * the CUDA runtime that shardtune's CUDA backend uses, so that the backend's
 * own sources compile with g++ and run on a machine without a GPU.  The
 * emulator (cuda_emu.cc) runs every thread of a block as a fiber, with real
 * __syncthreads and warp shuffles, keeps "device" memory unreadable by host
 * code outside device operations, and checks launch shapes. */
#ifndef SHARDTUNE_CUDA_EMU_RUNTIME_H
#define SHARDTUNE_CUDA_EMU_RUNTIME_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef enum cudaError {
    cudaSuccess = 0,
    cudaErrorInvalidValue = 1,
    cudaErrorMemoryAllocation = 2,
    cudaErrorInvalidConfiguration = 9,
    cudaErrorInsufficientDriver = 35,
    cudaErrorNotReady = 600,
} cudaError_t;

typedef struct emu_stream *cudaStream_t;
typedef struct emu_event *cudaEvent_t;

enum cudaMemcpyKind {
    cudaMemcpyHostToHost = 0,
    cudaMemcpyHostToDevice = 1,
    cudaMemcpyDeviceToHost = 2,
    cudaMemcpyDeviceToDevice = 3,
    cudaMemcpyDefault = 4
};
enum cudaMemoryType {
    cudaMemoryTypeUnregistered = 0,
    cudaMemoryTypeHost = 1,
    cudaMemoryTypeDevice = 2,
    cudaMemoryTypeManaged = 3
};
struct cudaPointerAttributes {
    enum cudaMemoryType type;
    int device;
    void *devicePointer;
    void *hostPointer;
};
enum cudaFuncAttribute { cudaFuncAttributeMaxDynamicSharedMemorySize = 8 };

#define cudaStreamNonBlocking 0x01
#define cudaEventDisableTiming 0x02
#define cudaHostAllocPortable 0x01
#define cudaHostAllocMapped 0x02

#ifdef __cplusplus
extern "C" {
#endif
cudaError_t cudaGetDeviceCount(int *count);
cudaError_t cudaSetDevice(int device);
const char *cudaGetErrorString(cudaError_t err);
cudaError_t cudaGetLastError(void);
cudaError_t cudaMalloc(void **p, size_t n);
cudaError_t cudaFree(void *p);
cudaError_t cudaHostAlloc(void **p, size_t n, unsigned flags);
cudaError_t cudaFreeHost(void *p);
cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes);
cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t n, enum cudaMemcpyKind kind, cudaStream_t s);
cudaError_t cudaMemsetAsync(void *p, int value, size_t n, cudaStream_t s);
cudaError_t cudaStreamCreateWithFlags(cudaStream_t *s, unsigned flags);
cudaError_t cudaStreamDestroy(cudaStream_t s);
cudaError_t cudaStreamSynchronize(cudaStream_t s);
cudaError_t cudaStreamWaitEvent(cudaStream_t s, cudaEvent_t e, unsigned flags);
cudaError_t cudaEventCreate(cudaEvent_t *e);
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned flags);
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s);
cudaError_t cudaEventSynchronize(cudaEvent_t e);
cudaError_t cudaEventQuery(cudaEvent_t e);
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end);
cudaError_t cudaEventDestroy(cudaEvent_t e);
cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *p);
#ifdef __cplusplus
}

/* ---- the kernel side (C++ only) ---- */
#include <functional>

#define __global__
#define __device__
#define __host__
/* One block runs at a time, on one OS thread: block-shared is static. */
#define __shared__ static

struct dim3 {
    unsigned x, y, z;
    dim3(unsigned x_ = 1, unsigned y_ = 1, unsigned z_ = 1) : x(x_), y(y_), z(z_) {}
};

struct emu_ids_t {
    dim3 thread, block, block_dim, grid_dim;
};
const emu_ids_t &cuda_emu_ids(void);
#define threadIdx (cuda_emu_ids().thread)
#define blockIdx (cuda_emu_ids().block)
#define blockDim (cuda_emu_ids().block_dim)
#define gridDim (cuda_emu_ids().grid_dim)

#define __align__(n) alignas(n)

/* Runs body once per thread of every block of the grid, with smem bytes of
 * dynamic shared memory (NaN-filled) for kernel. */
void cuda_emu_launch(dim3 grid, dim3 block, size_t smem, const void *kernel, const std::function<void()> &body);
/* The block's dynamic shared memory (extern __shared__ in CUDA). */
void *cuda_emu_dynamic_shared(void);
cudaError_t cuda_emu_set_max_dynamic_shared(const void *kernel, int bytes);
template <typename F> inline cudaError_t cudaFuncSetAttribute(F *kernel, enum cudaFuncAttribute attr, int value)
{
    (void)attr;
    return cuda_emu_set_max_dynamic_shared((const void *)kernel, value);
}
void __syncthreads(void);
/* A warp barrier: every live lane of the calling warp arrives. */
void __syncwarp(unsigned mask = 0xffffffffu);
double cuda_emu_shfl_down(double v, unsigned offset);
template <typename T> inline T __shfl_down_sync(unsigned mask, T v, unsigned offset)
{
    (void)mask;
    return (T)cuda_emu_shfl_down((double)v, offset);
}

inline float __uint_as_float(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* fp32 product and sum, each rounded to nearest even on its own: CUDA never
 * contracts these intrinsics into a fused multiply-add.  The volatile store
 * keeps a host compiler from contracting them either (GCC fuses a * b + c
 * by default wherever the target has FMA). */
inline float __fmul_rn(float a, float b)
{
    volatile float r = a * b;
    return r;
}
inline float __fadd_rn(float a, float b)
{
    volatile float r = a + b;
    return r;
}
#endif

#endif
