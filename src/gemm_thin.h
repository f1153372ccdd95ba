/* gemm_thin.h: the products gemm() hands to its own kernels instead of
 * oneDNN (gemm_thin.c, gemm_thin_bf16.c): those whose m or n is at most GEMM_THIN_MAX and
 * whose k is longer, four of the six products of a LoRA adapter (x A^T,
 * dy B, dA, dB; r a few units to a few tens).  oneDNN runs them far below
 * what the cores do (m 1024, n 8, k 1024: 10 GB/s and 43 GFLOP/s at 2
 * threads); these read the long operand once, in place.
 *
 * Same semantics as gemm() (gemm.h), GEMM_BF16 included: inputs rounded to
 * bf16 (nearest even, in registers as they are read), products and sums in
 * fp32.  Each output element is summed by one thread in a fixed order, so
 * results repeat bitwise and do not depend on the number of threads. */
#ifndef SHARDTUNE_GEMM_THIN_H
#define SHARDTUNE_GEMM_THIN_H

#include "gemm.h"

enum { GEMM_THIN_MAX = 16 };

/* 1 when gemm() sends a product of this shape here. */
int gemm_thin_applies(int m, int n, int k);

/* gemm()'s contract (m, n, k > 0). */
void gemm_thin(gemm_precision prec, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc);

/* Which kernels run: the best this CPU has (AVX512-BF16 for bf16
 * products, AVX-512F, else portable loops), or, for tests on a machine
 * that has them, the ones below. */
typedef enum gemm_thin_path { GEMM_THIN_BEST, GEMM_THIN_AVX512F, GEMM_THIN_PORTABLE } gemm_thin_path;
void gemm_thin_force(gemm_thin_path path);

#endif
