/* gemm_thin_internal.h: what gemm_thin.c (the dispatch, the AVX-512 and
 * portable kernels) and gemm_thin_bf16.c (the AVX512-BF16 kernels) share:
 * the operands' description, the packed short operand, the output rule and
 * the register tile. */
#ifndef SHARDTUNE_GEMM_THIN_INTERNAL_H
#define SHARDTUNE_GEMM_THIN_INTERNAL_H

#include <immintrin.h>
#include <stdint.h>
#include <string.h>

#include "dtype.h"
#include "gemm_thin.h"

/* X(r, c) = p[r * s_row + c * s_col] */
typedef struct strided {
    const float *p;
    size_t s_row, s_col;
} strided;

typedef struct out_matrix {
    float *p;
    size_t s_row, s_col;
    float alpha, beta;
} out_matrix;

/* The short operand, packed: P(j, t) for j < n_pad (a multiple of 8,
 * zero past n) and t < k_pad (a multiple of 16, zero past k), in blocks of
 * 16 t: a block holds its 16 values of every j one after the other, so
 * that one step of a kernel reads 8 x 16 consecutive floats. */
typedef struct packed {
    float *p;
    int n, n_pad, k, k_pad;
} packed;

enum { PACK_ROWS = 8, PACK_LANES = 16 };

#define AVX512 __attribute__((target("avx512f")))

/* x rounded to bf16 (bf16_from_f32_bits), as an fp32. */
static inline float round_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    u = (uint32_t)bf16_from_f32_bits(u) << 16;
    memcpy(&x, &u, sizeof x);
    return x;
}

static inline size_t pk_at(const packed *pk, int j, int t)
{
    return ((size_t)(t / PACK_LANES) * pk->n_pad + j) * PACK_LANES + t % PACK_LANES;
}

static inline void put(const out_matrix *c, size_t i, size_t j, float sum)
{
    float *dst = c->p + i * c->s_row + j * c->s_col;
    *dst = c->beta == 0.0f ? c->alpha * sum : c->alpha * sum + c->beta * *dst;
}

/* Masked loads only where a row ends. */
static AVX512 inline __m512 load16(const float *p, __mmask16 mask)
{
    return mask == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(mask, p);
}

static inline __mmask16 tail_mask(int left) { return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1); }

/* The register tile of both kernels: 3 x 8 sums of 16 lanes (24 of the
 * 32 registers), indexed by constants only so that it stays in registers. */
enum { TILE = 3 };

typedef struct tile {
    __m512 s[TILE][PACK_ROWS];
} tile;

static AVX512 inline void tile_zero(tile *t)
{
#pragma GCC unroll 8
    for (int jj = 0; jj < PACK_ROWS; jj++)
#pragma GCC unroll 3
        for (int x = 0; x < TILE; x++)
            t->s[x][jj] = _mm512_setzero_ps();
}

/* t->s[x][jj] += v[x] * w for the three x */
static AVX512 inline void tile_fma(tile *t, const __m512 *v, __m512 w, int jj)
{
#pragma GCC unroll 3
    for (int x = 0; x < TILE; x++)
        t->s[x][jj] = _mm512_fmadd_ps(v[x], w, t->s[x][jj]);
}


/* The dots kind's TILE rows of A from row i (rows of them left): past the
 * end, the last row again (computed, never stored). */
static inline void tile_rows(const strided *a, int i, int rows, const float *x[TILE])
{
    for (int r = 0; r < TILE; r++)
        x[r] = a->p + (size_t)(i + (r < rows ? r : rows - 1)) * a->s_row;
}

/* The columns kind's load masks for A's columns [i0, i1), 16 a vector. */
static inline void tile_masks(int i0, int i1, __mmask16 mask[TILE])
{
    for (int u = 0; u < TILE; u++)
        mask[u] = tail_mask(i1 - i0 - 16 * u > 0 ? i1 - i0 - 16 * u : 0);
}

/* The dots kind's sums for rows i .. i + rows - 1 of C and columns j0 ..
 * j0 + 7 (those below n): each the lanes of one tile entry added up. */
static AVX512 inline void tile_put_dots(const tile *acc, const out_matrix *c, int i, int rows, int j0, int n)
{
    float sums[TILE][PACK_ROWS];
#pragma GCC unroll 8
    for (int jj = 0; jj < PACK_ROWS; jj++)
#pragma GCC unroll 3
        for (int r = 0; r < TILE; r++)
            sums[r][jj] = _mm512_reduce_add_ps(acc->s[r][jj]);
    for (int r = 0; r < rows; r++)
        for (int jj = 0; jj < PACK_ROWS && j0 + jj < n; jj++)
            put(c, (size_t)(i + r), (size_t)(j0 + jj), sums[r][jj]);
}

/* The columns kind's sums: lane l of tile entry [u][jj] is C(i0 + 16 u + l,
 * j0 + jj), for rows below i1 and columns below n. */
static AVX512 inline void tile_put_columns(const tile *acc, const out_matrix *c, int i0, int i1, int j0, int n)
{
    float sums[PACK_ROWS][16 * TILE];
#pragma GCC unroll 8
    for (int jj = 0; jj < PACK_ROWS; jj++)
#pragma GCC unroll 3
        for (int u = 0; u < TILE; u++)
            _mm512_storeu_ps(sums[jj] + 16 * u, acc->s[u][jj]);
    for (int jj = 0; jj < PACK_ROWS && j0 + jj < n; jj++)
        for (int l = 0; l < i1 - i0; l++)
            put(c, (size_t)(i0 + l), (size_t)(j0 + jj), sums[jj][l]);
}

/* ---- AVX512-BF16 kernels (gemm_thin_bf16.c) ---- */

/* The short operand as bf16 (nearest even, NaN kept), in blocks of 32 t
 * per j: one kernel step reads 32 consecutive values of a column (dots), or
 * a pair t, t + 1 as one 32-bit word (columns). k_pad: a multiple of 32. */
typedef struct packed16 {
    uint16_t *p;
    int n, n_pad, k, k_pad;
} packed16;

enum { PACK16_LANES = 32 };

static inline size_t pk16_at(const packed16 *pk, int j, int t)
{
    return ((size_t)(t / PACK16_LANES) * pk->n_pad + j) * PACK16_LANES + t % PACK16_LANES;
}

/* 1 when this CPU runs the kernels below (AVX512-BF16 and AVX512-BW). */
int thin_bf16_native(void);
packed16 thin_pack16(const strided *x, int n, int k);
void thin_dots_bf16(const strided *a, const packed16 *pk, const out_matrix *c, int i0, int i1);
void thin_columns_bf16(const strided *a, const packed16 *pk, const out_matrix *c, int i0, int i1);

#endif
