/* gemm.h: the CPU's matrix products, through oneDNN's matmul primitive
 * (gemm.c).  One GEMM path for the CPU backend, LoRA merging and the peak
 * measurement.
 *
 * Matrices are row-major fp32 in memory.  GEMM_BF16 rounds both inputs to
 * bf16 (nearest even) and accumulates and writes fp32: the semantics of
 * cuBLAS's CUBLAS_COMPUTE_32F_FAST_16BF, which the CUDA backend's bf16
 * mode uses.  Results depend only on the shape, the strides and the number
 * of threads, so runs repeat bitwise. */
#ifndef SHARDTUNE_GEMM_H
#define SHARDTUNE_GEMM_H

#include <stddef.h>
#include <stdint.h>

typedef enum gemm_precision { GEMM_F32, GEMM_BF16 } gemm_precision;

/* C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C; op(X) = X or X^T as
 * trans_x says; lda/ldb/ldc are row strides.  beta = 0 ignores what C held.
 * Called outside an OpenMP parallel region it uses the OpenMP threads;
 * inside one, the calling thread alone. */
void gemm(gemm_precision prec, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
          const float *b, int ldb, float beta, float *c, int ldc);

/* C = alpha * A[m,k] * B[k,n] + beta * C with B already bf16 (row stride
 * ldb, or B^T with trans_b): the frozen weights of a bf16 run. */
void gemm_bf16_b(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const uint16_t *b, int ldb, float beta, float *c, int ldc);

/* C = [A | A2] op(B) + beta C: A [m, k] and A2 [m, k2] side by side (rounded
 * into one bf16 matrix [m, k + k2]), B bf16 with op(B) [k + k2, n] (B^T
 * with trans_b): one product for a linear layer and its adapter, whose
 * s B or A the frozen weight carries beside W (model.c). */
void gemm_bf16_b_cat(int trans_b, int m, int n, int k, const float *a, int lda, int k2, const float *a2, int lda2,
                     const uint16_t *b, int ldb, float beta, float *c, int ldc);

/* dst = src rounded to bf16, nearest even (NaN stays NaN): what GEMM_BF16
 * does to its inputs, for a B that several products share. */
void gemm_round_bf16(uint16_t *dst, const float *src, size_t n_elems);
/* The same for rows x cols of src with row stride ld, into dst packed
 * (row stride cols). */
void gemm_round_rows_bf16(uint16_t *dst, const float *src, size_t rows, size_t cols, size_t ld);
/* The same into dst with row stride ld_dst. */
void gemm_round_rows_bf16_strided(uint16_t *dst, size_t ld_dst, const float *src, size_t ld, size_t rows,
                                  size_t cols);

/* 1 when the CPU multiplies bf16 natively (AVX512-BF16 or AMX-BF16),
 * checked at run time. */
int gemm_cpu_has_bf16(void);

/* "oneDNN 2.6.3 (OpenMP; ISA ...)" into buf. */
void gemm_library_version(char *buf, size_t n_bytes);

/* Frees every cached primitive (no product may be running). */
void gemm_release(void);

#endif
