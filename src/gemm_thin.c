/* gemm_thin.c: products with a short m or n (gemm_thin.h).
 *
 * Each product is C(i,j) = alpha sum_t A(i,t) B(t,j) + beta C(i,j), the
 * operands read through a row and a column stride (op(X) is a swap of the
 * two), with n short, and is one of two kinds:
 *  - A's rows contiguous ("dots"): C(i,j) is the dot product of row i of A
 *    with column j of B, packed.  x A^T, dy B.
 *  - A's columns contiguous ("columns"): A is read row after row of t,
 *    each scaled into the accumulators of its columns of C.
 *    dB += dy^T (x A^T).
 * m short is n short for C^T = B^T A^T: dA += dxa^T x.
 * The short operand is packed (rounded once under bf16); the long one is
 * read once, in place, and rounded in registers.  AVX-512 kernels where
 * the CPU has it, portable loops elsewhere; both sum each element in a
 * fixed order on one thread. */
#include "gemm_thin_internal.h"

#include <immintrin.h>
#include <omp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static gemm_thin_path forced = GEMM_THIN_BEST;

void gemm_thin_force(gemm_thin_path path) { forced = path; }

static int use_avx512(void)
{
    if (forced == GEMM_THIN_PORTABLE)
        return 0;
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f");
}

/* k short (y += (x A^T) B^T, dx += dxa A) stays with oneDNN: it reads and
 * writes a full-size C, and a first kernel of ours for it was slower. */
int gemm_thin_applies(int m, int n, int k) { return (m <= GEMM_THIN_MAX || n <= GEMM_THIN_MAX) && k > GEMM_THIN_MAX; }

/* P(j, t) = X(t, j) for j < n, t < k (rounded under bf16), zero padded. */
static packed pack(const strided *x, int n, int k, int bf16)
{
    packed pk = {NULL, n, (n + PACK_ROWS - 1) / PACK_ROWS * PACK_ROWS, k,
                 (k + PACK_LANES - 1) / PACK_LANES * PACK_LANES};
    pk.p = xcalloc((size_t)pk.n_pad * pk.k_pad, sizeof(float));
    for (int j = 0; j < n; j++)
        for (int t = 0; t < k; t++) {
            float v = x->p[(size_t)t * x->s_row + (size_t)j * x->s_col];
            pk.p[pk_at(&pk, j, t)] = bf16 ? round_bf16(v) : v;
        }
    return pk;
}

/* ---- AVX-512 ---- */

static AVX512 inline __m512 round_bf16_x16(__m512 x)
{
    const __m512i u = _mm512_castps_si512(x), hi = _mm512_set1_epi32((int)0xffff0000u);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i rounded = _mm512_and_si512(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), hi);
    const __m512i quiet = _mm512_or_si512(_mm512_and_si512(u, hi), _mm512_set1_epi32(0x00400000));
    const __mmask16 nan = _mm512_cmp_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                _mm512_set1_epi32(0x7f800000), _MM_CMPINT_NLE);
    return _mm512_castsi512_ps(_mm512_mask_blend_epi32(nan, rounded, quiet));
}

static AVX512 inline __m512 load_x16(const float *p, __mmask16 mask, int bf16)
{
    __m512 v = load16(p, mask);
    return bf16 ? round_bf16_x16(v) : v;
}

/* Rows [i0, i1) of the dots kind, DOTS_ROWS rows of A against eight
 * packed columns at a time: 24 sums in registers, each load of P serving
 * three rows. */
enum { DOTS_ROWS = TILE };

static AVX512 void dots_avx512(const strided *a, const packed *pk, const out_matrix *c, int i0, int i1, int bf16)
{
    for (int i = i0; i < i1; i += DOTS_ROWS) {
        const int rows = i1 - i < DOTS_ROWS ? i1 - i : DOTS_ROWS;
        const float *x[DOTS_ROWS];
        tile_rows(a, i, rows, x);
        for (int j0 = 0; j0 < pk->n; j0 += PACK_ROWS) {
            tile acc;
            tile_zero(&acc);
            for (int t = 0; t < pk->k; t += PACK_LANES) {
                const __mmask16 mask = tail_mask(pk->k - t);
                __m512 v[DOTS_ROWS];
#pragma GCC unroll 3
                for (int r = 0; r < DOTS_ROWS; r++)
                    v[r] = load_x16(x[r] + t, mask, bf16);
                const float *p = pk->p + pk_at(pk, j0, t);
#pragma GCC unroll 8
                for (int jj = 0; jj < PACK_ROWS; jj++) {
                    __m512 w = _mm512_loadu_ps(p + jj * PACK_LANES);
                    /* in a register, loaded once for every row: folded into
                     * each FMA it would be loaded once a row */
                    __asm__("" : "+v"(w));
                    tile_fma(&acc, v, w, jj);
                }
            }
            tile_put_dots(&acc, c, i, rows, j0, pk->n);
        }
    }
}

/* Columns [i0, i1) of A (A(i, t) = a[t * s_col + i], at most COLUMNS_WIDE
 * of them) of the columns kind: 3 x 16 columns of A against eight packed
 * columns of B at a time, 24 sums in registers. */
enum { COLUMNS_VECS = TILE, COLUMNS_WIDE = 16 * COLUMNS_VECS };

static AVX512 void columns_avx512(const strided *a, const packed *pk, const out_matrix *c, int i0, int i1, int bf16)
{
    __mmask16 mask[COLUMNS_VECS];
    tile_masks(i0, i1, mask);
    for (int j0 = 0; j0 < pk->n; j0 += PACK_ROWS) {
        tile acc;
        tile_zero(&acc);
        for (int t = 0; t < pk->k; t++) {
            const float *row = a->p + (size_t)t * a->s_col + i0;
            __m512 v[COLUMNS_VECS];
#pragma GCC unroll 3
            for (int u = 0; u < COLUMNS_VECS; u++)
                v[u] = load_x16(row + 16 * u, mask[u], bf16);
            const float *p = pk->p + pk_at(pk, j0, t);
#pragma GCC unroll 8
            for (int jj = 0; jj < PACK_ROWS; jj++) {
                tile_fma(&acc, v, _mm512_set1_ps(p[jj * PACK_LANES]), jj);
            }
        }
        tile_put_columns(&acc, c, i0, i1, j0, pk->n);
    }
}

/* ---- portable loops (the same kinds, sums in plain order) ---- */

static void dots_portable(const strided *a, const packed *pk, const out_matrix *c, int i0, int i1, int bf16)
{
    for (int i = i0; i < i1; i++) {
        const float *x = a->p + (size_t)i * a->s_row;
        for (int j = 0; j < pk->n; j++) {
            float sum = 0.0f;
            for (int t = 0; t < pk->k; t++)
                sum += (bf16 ? round_bf16(x[t]) : x[t]) * pk->p[pk_at(pk, j, t)];
            put(c, (size_t)i, (size_t)j, sum);
        }
    }
}

static void columns_portable(const strided *a, const packed *pk, const out_matrix *c, int i0, int i1, int bf16)
{
    float acc[GEMM_THIN_MAX][COLUMNS_WIDE];
    memset(acc, 0, sizeof acc);
    for (int t = 0; t < pk->k; t++) {
        const float *row = a->p + (size_t)t * a->s_col;
        for (int j = 0; j < pk->n; j++) {
            const float w = pk->p[pk_at(pk, j, t)];
            for (int l = 0; l < i1 - i0; l++)
                acc[j][l] += (bf16 ? round_bf16(row[i0 + l]) : row[i0 + l]) * w;
        }
    }
    for (int j = 0; j < pk->n; j++)
        for (int l = 0; l < i1 - i0; l++)
            put(c, (size_t)(i0 + l), (size_t)j, acc[j][l]);
}

/* ---- the two kinds, threaded over blocks of C's rows ---- */

/* a columns block is one call of its kernel; a multiple of DOTS_ROWS */
enum { ROW_BLOCK = COLUMNS_WIDE };

/* Threads only outside a parallel region and when there is enough work to
 * pay for waking them. */
static int threaded(int m, int n, int k) { return !omp_in_parallel() && (size_t)m * n * k >= ((size_t)1 << 16); }

/* n short: B packed by columns; A read in place, by rows (dots) or by
 * columns, on gemm_thin_bf16.c's kernels under bf16 on AVX512-BF16. */
static void run_short_n(const strided *a, const strided *b, const out_matrix *c, int m, int n, int k, int bf16)
{
    const int native = bf16 && forced == GEMM_THIN_BEST && thin_bf16_native();
    const int vec = use_avx512(), dots = a->s_col == 1, n_blocks = (m + ROW_BLOCK - 1) / ROW_BLOCK;
    packed pk = {0};
    packed16 pk16 = {0};
    if (native)
        pk16 = thin_pack16(b, n, k);
    else
        pk = pack(b, n, k, bf16);
#pragma omp parallel for schedule(static) if (threaded(m, n, k))
    for (int blk = 0; blk < n_blocks; blk++) {
        const int i0 = blk * ROW_BLOCK, i1 = i0 + ROW_BLOCK < m ? i0 + ROW_BLOCK : m;
        if (native && dots)
            thin_dots_bf16(a, &pk16, c, i0, i1);
        else if (native)
            thin_columns_bf16(a, &pk16, c, i0, i1);
        else if (dots && vec)
            dots_avx512(a, &pk, c, i0, i1, bf16);
        else if (dots)
            dots_portable(a, &pk, c, i0, i1, bf16);
        else if (vec)
            columns_avx512(a, &pk, c, i0, i1, bf16);
        else
            columns_portable(a, &pk, c, i0, i1, bf16);
    }
    free(pk.p);
    free(pk16.p);
}

void gemm_thin(gemm_precision prec, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a,
               int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    const int bf16 = prec == GEMM_BF16;
    strided sa = {a, trans_a ? 1 : (size_t)lda, trans_a ? (size_t)lda : 1};
    strided sb = {b, trans_b ? 1 : (size_t)ldb, trans_b ? (size_t)ldb : 1};
    out_matrix sc = {c, (size_t)ldc, 1, alpha, beta};
    if (n <= GEMM_THIN_MAX) {
        run_short_n(&sa, &sb, &sc, m, n, k, bf16);
    } else { /* m short: C^T = B^T A^T, whose n is short */
        strided ta = {b, sb.s_col, sb.s_row}, tb = {a, sa.s_col, sa.s_row};
        out_matrix tc = {c, 1, (size_t)ldc, alpha, beta};
        run_short_n(&ta, &tb, &tc, n, m, k, bf16);
    }
}
