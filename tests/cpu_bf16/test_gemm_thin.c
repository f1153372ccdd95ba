/* test_gemm_thin.c: gemm()'s own kernels for products with a short m or n
 * (src/gemm_thin.c, the LoRA adapter's products) against oneDNN's
 * dnnl_sgemm, on every transpose combination, short sides 1..16 and long
 * ones with ragged ends, padded strides, alpha and beta (beta 0 must ignore
 * a C full of NaN), in fp32 and bf16 (against dnnl_sgemm on inputs rounded
 * to bf16 first: the same products, fp32 sums), with the AVX512-BF16
 * kernels (bf16 on a CPU that has them), the AVX-512F ones and the portable
 * loops.  Bound: 1e-5 of sum |a||b| per element (fp32
 * sums of up to 1024 terms in another order; observed ~1e-7).  Results
 * must not depend on the number of threads (bitwise). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

#include "gemm.h"
#include "gemm_thin.h"

typedef struct product {
    int ta, tb, m, n, k, lda, ldb, ldc;
    float alpha, beta;
} product;

static float *random_floats(size_t n, unsigned *seed)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)rand_r(seed) / RAND_MAX * 2.0f - 1.0f;
    return x;
}

static float *bf16_rounded(const float *x, size_t n)
{
    uint16_t *h = malloc(n * sizeof *h);
    float *y = malloc(n * sizeof *y);
    gemm_round_bf16(h, x, n);
    for (size_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)h[i] << 16;
        memcpy(&y[i], &u, sizeof u);
    }
    free(h);
    return y;
}

/* One product through gemm() (which hands it to gemm_thin) against
 * dnnl_sgemm; returns the worst error as a share of the bound. */
static double check_product(const product *p, gemm_precision prec, unsigned seed)
{
    const size_t a_n = (size_t)(p->ta ? p->k : p->m) * p->lda, b_n = (size_t)(p->tb ? p->n : p->k) * p->ldb;
    const size_t c_n = (size_t)p->m * p->ldc;
    float *a = random_floats(a_n, &seed), *b = random_floats(b_n, &seed), *c0 = random_floats(c_n, &seed);
    float *got = malloc(c_n * sizeof *got), *want = malloc(c_n * sizeof *want);
    memcpy(want, c0, c_n * sizeof *want);
    if (p->beta == 0.0f) /* must be ignored */
        for (size_t i = 0; i < c_n; i++)
            c0[i] = NAN;
    memcpy(got, c0, c_n * sizeof *got);
    gemm(prec, p->ta, p->tb, p->m, p->n, p->k, p->alpha, a, p->lda, b, p->ldb, p->beta, got, p->ldc);
    const float *ra = a, *rb = b;
    float *a16 = NULL, *b16 = NULL;
    if (prec == GEMM_BF16) {
        ra = a16 = bf16_rounded(a, a_n);
        rb = b16 = bf16_rounded(b, b_n);
    }
    assert_int_equal(dnnl_sgemm(p->ta ? 'T' : 'N', p->tb ? 'T' : 'N', p->m, p->n, p->k, p->alpha, ra, p->lda, rb,
                                p->ldb, p->beta, want, p->ldc),
                     dnnl_success);
    double worst = 0.0;
    for (int i = 0; i < p->m; i++)
        for (int j = 0; j < p->n; j++) {
            double mag = 0.0;
            for (int t = 0; t < p->k; t++) {
                double x = ra[p->ta ? (size_t)t * p->lda + i : (size_t)i * p->lda + t];
                double y = rb[p->tb ? (size_t)j * p->ldb + t : (size_t)t * p->ldb + j];
                mag += fabs(x * y);
            }
            const size_t at = (size_t)i * p->ldc + j;
            const double bound = 1e-5 * (fabs(p->alpha) * mag + fabs(p->beta) + 1e-3);
            assert_false(isnan(got[at]));
            const double err = fabs((double)got[at] - want[at]) / bound;
            worst = err > worst ? err : worst;
        }
    for (int i = 0; i < p->m; i++) /* the padding of C's rows is not written */
        for (int j = p->n; j < p->ldc; j++)
            assert_memory_equal(&got[(size_t)i * p->ldc + j], &c0[(size_t)i * p->ldc + j], sizeof(float));
    free(a), free(b), free(c0), free(got), free(want), free(a16), free(b16);
    return worst;
}

static product make(int ta, int tb, int m, int n, int k, int pad, float alpha, float beta)
{
    product p = {ta, tb, m, n, k, 0, 0, n + pad, alpha, beta};
    p.lda = (ta ? m : k) + pad;
    p.ldb = (tb ? k : n) + pad;
    return p;
}

static void run_all(gemm_precision prec, gemm_thin_path path)
{
    static const int shorts[] = {1, 3, 8, 16};
    static const int longs[] = {17, 100, 385};
    static const float alphas[] = {1.0f, 0.5f}, betas[] = {0.0f, 1.0f, -0.5f};
    gemm_thin_force(path);
    unsigned seed = 1;
    double worst = 0.0;
    int n_checked = 0;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++)
            for (size_t s = 0; s < sizeof shorts / sizeof *shorts; s++)
                for (size_t l = 0; l < sizeof longs / sizeof *longs; l++)
                    for (int which = 0; which < 2; which++) { /* n short, then m short */
                        const int sh = shorts[s], lo = longs[l], pad = (int)(s + l) % 3 * 5;
                        const float alpha = alphas[(s + l) % 2], beta = betas[(s + l + which) % 3];
                        product p = which ? make(ta, tb, sh, lo, 1024, pad, alpha, beta)
                                          : make(ta, tb, lo, sh, lo + 3, pad, alpha, beta);
                        assert_true(gemm_thin_applies(p.m, p.n, p.k));
                        double e = check_product(&p, prec, seed++);
                        worst = e > worst ? e : worst;
                        n_checked++;
                    }
    gemm_thin_force(GEMM_THIN_BEST);
    print_message("%s, %s: %d products, worst error %.3g of the bound\n", prec == GEMM_BF16 ? "bf16" : "fp32",
                  path == GEMM_THIN_PORTABLE  ? "portable loops"
                  : path == GEMM_THIN_AVX512F ? "AVX-512F kernels (where the CPU has them)"
                                              : "the CPU's best kernels",
                  n_checked, worst);
    assert_true(worst <= 1.0);
}

static void fp32_kernels(void **state) { (void)state, run_all(GEMM_F32, GEMM_THIN_BEST); }
static void fp32_portable(void **state) { (void)state, run_all(GEMM_F32, GEMM_THIN_PORTABLE); }
static void bf16_kernels(void **state) { (void)state, run_all(GEMM_BF16, GEMM_THIN_BEST); }
static void bf16_avx512f(void **state) { (void)state, run_all(GEMM_BF16, GEMM_THIN_AVX512F); }
static void bf16_portable(void **state) { (void)state, run_all(GEMM_BF16, GEMM_THIN_PORTABLE); }

/* The LoRA step's shapes at 1 and 2 threads, and from inside a parallel
 * region (one thread): the same bits. */
static void same_bits_at_any_thread_count(void **state)
{
    (void)state;
    const product shapes[] = {make(0, 1, 1000, 8, 1024, 0, 1.0f, 0.0f), make(1, 0, 1000, 8, 1024, 0, 2.0f, 1.0f),
                              make(1, 0, 8, 384, 1000, 0, 1.0f, 1.0f)};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        const product *p = &shapes[s];
        unsigned seed = 7;
        const size_t c_n = (size_t)p->m * p->ldc;
        float *a = random_floats((size_t)(p->ta ? p->k : p->m) * p->lda, &seed);
        float *b = random_floats((size_t)(p->tb ? p->n : p->k) * p->ldb, &seed);
        float *c[3];
        for (int v = 0; v < 3; v++) {
            unsigned cs = 3;
            c[v] = random_floats(c_n, &cs);
        }
        omp_set_num_threads(1);
        gemm(GEMM_F32, p->ta, p->tb, p->m, p->n, p->k, p->alpha, a, p->lda, b, p->ldb, p->beta, c[0], p->ldc);
        omp_set_num_threads(2);
        gemm(GEMM_F32, p->ta, p->tb, p->m, p->n, p->k, p->alpha, a, p->lda, b, p->ldb, p->beta, c[1], p->ldc);
#pragma omp parallel num_threads(2)
#pragma omp single
        gemm(GEMM_F32, p->ta, p->tb, p->m, p->n, p->k, p->alpha, a, p->lda, b, p->ldb, p->beta, c[2], p->ldc);
        assert_memory_equal(c[0], c[1], c_n * sizeof(float));
        assert_memory_equal(c[0], c[2], c_n * sizeof(float));
        free(a), free(b), free(c[0]), free(c[1]), free(c[2]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fp32_kernels),  cmocka_unit_test(fp32_portable),
        cmocka_unit_test(bf16_kernels),  cmocka_unit_test(bf16_avx512f),  cmocka_unit_test(bf16_portable),
        cmocka_unit_test(same_bits_at_any_thread_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
