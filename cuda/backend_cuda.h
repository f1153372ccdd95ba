/* backend_cuda.h: the CUDA backend (backend_cuda.cu) and what the NCCL
 * communicator needs to know of it.  Plain C: included by C and CUDA files.
 * These functions are the plugin's entry points (src/cuda_plugin.h). */
#ifndef SHARDTUNE_BACKEND_CUDA_H
#define SHARDTUNE_BACKEND_CUDA_H

#ifdef __cplusplus
extern "C" {
#endif

#include "backend.h"
#include "log.h"

/* GPUs that answer (0 on any error: no driver, no device). */
int cuda_device_count(void);

/* A backend on device `device`, or NULL with a message in e.  Tensors are
 * fp32 in memory; with bf16 the matrix products round their inputs to bf16
 * on the tensor cores and accumulate in fp32 (cuBLAS's
 * CUBLAS_COMPUTE_32F_FAST_16BF), without it they are plain fp32. */
backend *backend_cuda_create(int device, int bf16, errbuf *e);

/* The stream every op of this backend runs on (a cudaStream_t), so that a
 * communicator can order its own stream against it. */
void *backend_cuda_stream(backend *be);

/* 1 when p is device memory (cudaMalloc), 0 for host memory of any kind. */
int cuda_is_device_pointer(const void *p);

#ifdef __cplusplus
}
#endif

#endif
