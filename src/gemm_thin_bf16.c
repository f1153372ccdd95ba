/* gemm_thin_bf16.c: the adapter kernels of gemm_thin.c under bf16 on CPUs
 * with AVX512-BF16.  Rounding the long operand in registers costs as much
 * as the FMAs it feeds (ten integer operations per 16 values, eight FMAs);
 * here VCVTNE2PS2BF16 rounds 32 values in one instruction (nearest even,
 * NaN kept; denormals flushed to zero, the one difference from the rounding
 * pass of gemm.c) and VDPBF16PS multiplies pairs of them and adds both
 * products to fp32 sums, so each instruction does 32 multiply-adds.
 *
 * dots: 32 consecutive t of a row of A against 32 of a packed column.
 * columns: rows t and t + 1 of A interleaved lane by lane, against the
 * pair (P(j, t), P(j, t + 1)) broadcast as one 32-bit word. */
#include "gemm_thin_internal.h"

#include <stdlib.h>

#include "log.h"

#define AVX512_BF16 __attribute__((target("avx512f,avx512bw,avx512bf16")))

int thin_bf16_native(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512bw");
}

packed16 thin_pack16(const strided *x, int n, int k)
{
    packed16 pk = {NULL, n, (n + PACK_ROWS - 1) / PACK_ROWS * PACK_ROWS, k,
                   (k + PACK16_LANES - 1) / PACK16_LANES * PACK16_LANES};
    pk.p = xcalloc((size_t)pk.n_pad * pk.k_pad, sizeof *pk.p);
    for (int j = 0; j < n; j++)
        for (int t = 0; t < k; t++) {
            uint32_t u;
            memcpy(&u, &x->p[(size_t)t * x->s_row + (size_t)j * x->s_col], sizeof u);
            pk.p[pk16_at(&pk, j, t)] = bf16_from_f32_bits(u);
        }
    return pk;
}

/* 32 values from p (those of the `left` still in the row; zeros after), as
 * bf16 in memory order. */
static AVX512_BF16 inline __m512bh load_bf16_x32(const float *p, int left)
{
    const __mmask16 lo = tail_mask(left), hi = tail_mask(left > 16 ? left - 16 : 0);
    const __m512 b = load16(p, lo), a = hi ? load16(p + 16, hi) : _mm512_setzero_ps();
    return _mm512_cvtne2ps_pbh(a, b); /* b the low half */
}

static AVX512_BF16 inline void tile_dp(tile *t, const __m512bh *v, __m512bh w, int jj)
{
#pragma GCC unroll 3
    for (int x = 0; x < TILE; x++)
        t->s[x][jj] = _mm512_dpbf16_ps(t->s[x][jj], v[x], w);
}

AVX512_BF16 void thin_dots_bf16(const strided *a, const packed16 *pk, const out_matrix *c, int i0, int i1)
{
    for (int i = i0; i < i1; i += TILE) {
        const int rows = i1 - i < TILE ? i1 - i : TILE;
        const float *x[TILE];
        tile_rows(a, i, rows, x);
        for (int j0 = 0; j0 < pk->n; j0 += PACK_ROWS) {
            tile acc;
            tile_zero(&acc);
            for (int t = 0; t < pk->k; t += PACK16_LANES) {
                __m512bh v[TILE];
#pragma GCC unroll 3
                for (int r = 0; r < TILE; r++)
                    v[r] = load_bf16_x32(x[r] + t, pk->k - t);
                const uint16_t *p = pk->p + pk16_at(pk, j0, t);
#pragma GCC unroll 8
                for (int jj = 0; jj < PACK_ROWS; jj++) {
                    __m512i w = _mm512_loadu_si512(p + jj * PACK16_LANES);
                    __asm__("" : "+v"(w)); /* loaded once for the three rows */
                    tile_dp(&acc, v, (__m512bh)w, jj);
                }
            }
            tile_put_dots(&acc, c, i, rows, j0, pk->n);
        }
    }
}

AVX512_BF16 void thin_columns_bf16(const strided *a, const packed16 *pk, const out_matrix *c, int i0, int i1)
{
    /* [row t lanes 0-15 | row t + 1 lanes 0-15] -> (t, t + 1) pairs, lane by lane */
    static const short interleave[32] = {0, 16, 1, 17, 2,  18, 3,  19, 4,  20, 5,  21, 6,  22, 7,  23,
                                         8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i pairs = _mm512_loadu_si512(interleave);
    __mmask16 mask[TILE];
    tile_masks(i0, i1, mask);
    for (int j0 = 0; j0 < pk->n; j0 += PACK_ROWS) {
        tile acc;
        tile_zero(&acc);
        for (int t = 0; t < pk->k; t += 2) {
            const float *r0 = a->p + (size_t)t * a->s_col + i0, *r1 = r0 + a->s_col;
            const int second = t + 1 < pk->k;
            __m512bh v[TILE];
#pragma GCC unroll 3
            for (int u = 0; u < TILE; u++) {
                const __m512 lo = load16(r0 + 16 * u, mask[u]);
                const __m512 hi = second ? load16(r1 + 16 * u, mask[u]) : _mm512_setzero_ps();
                v[u] = (__m512bh)_mm512_permutexvar_epi16(pairs, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
            }
            const uint16_t *p = pk->p + pk16_at(pk, j0, t);
#pragma GCC unroll 8
            for (int jj = 0; jj < PACK_ROWS; jj++) {
                int32_t pair;
                memcpy(&pair, p + jj * PACK16_LANES, sizeof pair);
                tile_dp(&acc, v, (__m512bh)_mm512_set1_epi32(pair), jj);
            }
        }
        tile_put_columns(&acc, c, i0, i1, j0, pk->n);
    }
}
