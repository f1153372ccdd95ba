/* test_cpu_vec.c: the CPU backend's vectorised exponentials (src/cpu_vec.c)
 * against libm: exp(x - shift) within 2 ulp of exp computed in double over
 * the range a softmax sees (and 0 for -inf and below e^-87, NaN for NaN),
 * their sums within float summation error, and SwiGLU forward and backward
 * within a few float roundings of the formulas in double: 8 roundings
 * forward, 2e-6 of the size of its terms for the gate's gradient, where
 * 1 - s loses digits as s nears 1 (the same loop on libm's expf: 1.0e-6 at
 * g = 16.6, as here).  Attention's masked softmax rows and their backward,
 * RMSNorm's rows and RoPE's rotation against the same formulas in double:
 * masked keys exactly 0, the rest within a few float roundings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>

#include "cpu_vec.h"

enum { N = 200000 };

/* |got - want| in units of the float spacing at want */
static double ulps(float got, double want)
{
    float w = (float)want;
    double spacing = (double)nextafterf(fabsf(w), INFINITY) - fabsf(w);
    return fabs((double)got - want) / spacing;
}

static void exp_matches_libm(void **state)
{
    (void)state;
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++)
        x[i] = -90.0f + 100.0f * (float)i / N; /* a shifted score: mostly negative */
    const float shift = 0.375f;                /* exact in float: x - shift is the one rounding */
    float sum = vec_exp_shifted(y, x, shift, N);
    double worst = 0.0, want_sum = 0.0;
    for (int i = 0; i < N; i++) {
        double want = exp((double)(x[i] - shift));
        want_sum += want;
        if (want < 1.7e-38) { /* below e^-87: flushed to 0 */
            assert_true(y[i] == 0.0f || fabs(y[i] - want) <= 1e-6 * want);
            continue;
        }
        double u = ulps(y[i], want);
        worst = u > worst ? u : worst;
    }
    print_message("exp: worst %.2f ulp; sum relative error %.2e\n", worst, fabs(sum - want_sum) / want_sum);
    assert_true(worst <= 2.0);
    assert_true(fabs(sum - want_sum) <= 1e-5 * want_sum);
    assert_true(fabs(vec_exp_shifted_sum(x, shift, N) - sum) <= 1e-6 * sum);
    float special[3] = {-INFINITY, NAN, -1000.0f}, out[3];
    vec_exp_shifted(out, special, 0.0f, 3);
    assert_true(out[0] == 0.0f);
    assert_true(isnan(out[1]));
    assert_true(out[2] == 0.0f);
    free(x);
    free(y);
}

static void swiglu_matches_formula(void **state)
{
    (void)state;
    float *g = malloc(N * sizeof *g), *u = malloc(N * sizeof *u), *d = malloc(N * sizeof *d);
    float *out = malloc(N * sizeof *out), *dg = malloc(N * sizeof *dg), *du = malloc(N * sizeof *du);
    for (int i = 0; i < N; i++) {
        g[i] = -30.0f + 60.0f * (float)i / N;
        u[i] = 0.5f + (float)(i % 7) * 0.25f;
        d[i] = 1.0f - (float)(i % 5) * 0.375f;
    }
    vec_swiglu_fwd(out, g, u, N);
    vec_swiglu_bwd(dg, du, d, g, u, N);
    double worst_fwd = 0.0, worst_bwd = 0.0;
    for (int i = 0; i < N; i++) {
        double s = 1.0 / (1.0 + exp(-(double)g[i]));
        double f = g[i] * s * u[i], dup = d[i] * g[i] * s, dgate = d[i] * u[i] * s * (1.0 + g[i] * (1.0 - s));
        double terms = fabs(d[i] * u[i] * s) * (1.0 + fabs(g[i]) * (1.0 - s));
        double e1 = fabs(out[i] - f) / (fabs(f) + 1e-30), e2 = fabs(du[i] - dup) / (fabs(dup) + 1e-30),
               e3 = fabs(dg[i] - dgate) / (terms + 1e-30);
        if (fabs(f) > 1e-30)
            worst_fwd = e1 > worst_fwd ? e1 : worst_fwd;
        if (fabs(dup) > 1e-30)
            worst_bwd = e2 > worst_bwd ? e2 : worst_bwd;
        if (terms > 1e-30)
            worst_bwd = e3 > worst_bwd ? e3 : worst_bwd;
    }
    print_message("swiglu: forward %.2e, backward %.2e relative\n", worst_fwd, worst_bwd);
    assert_true(worst_fwd <= 8 * 0x1p-24);
    assert_true(worst_bwd <= 2e-6);
    free(g), free(u), free(d), free(out), free(dg), free(du);
}

/* A row of 67 keys (odd, so the vector loops have tails) of which
 * [lo, hi) are visible; the scores already hold junk where masked. */
enum { KEYS = 67 };

static void softmax_range_matches_formula(void **state)
{
    (void)state;
    const size_t lo = 5, hi = 50;
    float x[KEYS], s[KEYS], dp[KEYS];
    for (int i = 0; i < KEYS; i++)
        x[i] = s[i] = 4.0f * sinf(0.7f * i), dp[i] = cosf(0.3f * i);
    double mx = -INFINITY, sum = 0.0;
    for (size_t i = lo; i < hi; i++)
        mx = x[i] > mx ? x[i] : mx;
    for (size_t i = lo; i < hi; i++)
        sum += exp((double)x[i] - mx);
    const double lse = mx + log(sum);
    const float got_lse = vec_softmax_range(x, lo, hi, KEYS);
    assert_true(fabs(got_lse - lse) <= 4 * 0x1p-24 * fabs(lse) + 1e-7);
    /* backward from the same scores and the forward's lse, with d = 0.25 */
    const float d = 0.25f;
    float dpc[KEYS];
    for (int i = 0; i < KEYS; i++)
        dpc[i] = dp[i];
    vec_softmax_grad_range(s, dp, got_lse, d, lo, hi, KEYS);
    double worst_p = 0.0, worst_ds = 0.0;
    for (size_t i = 0; i < KEYS; i++) {
        if (i < lo || i >= hi) {
            assert_true(x[i] == 0.0f && s[i] == 0.0f && dp[i] == 0.0f);
            continue;
        }
        double score = 4.0 * sinf(0.7f * (float)i), p = exp(score - lse), ds = p * (dpc[i] - d);
        double e = fabs(x[i] - p) / p, eb = fabs(s[i] - p) / p, eds = fabs(dp[i] - ds) / (p * (fabs(dpc[i]) + d));
        worst_p = fmax(worst_p, fmax(e, eb));
        worst_ds = fmax(worst_ds, eds);
    }
    print_message("masked softmax: p %.2e, dS %.2e relative\n", worst_p, worst_ds);
    /* exp's argument s - lse carries the rounding of lse (|lse| ~ 5 here:
     * 2.4e-7 absolute), exp adds 1 ulp */
    assert_true(worst_p <= 2e-6);
    assert_true(worst_ds <= 2e-6);
}

static void rmsnorm_rope_match_formula(void **state)
{
    (void)state;
    enum { DIM = 67, HALF = 33 };
    float x[DIM], w[DIM], g[DIM], out[DIM], dx[DIM], cs[HALF], sn[HALF], v[2 * HALF];
    for (int i = 0; i < DIM; i++)
        x[i] = 3.0f * sinf(1.3f * i) + 0.5f, w[i] = 1.0f + 0.1f * cosf(0.5f * i), g[i] = cosf(0.9f * i),
        dx[i] = 0.125f;
    const float eps = 1e-5f;
    const float r = vec_rmsnorm_row(out, x, w, eps, DIM);
    vec_rmsnorm_bwd_row(dx, g, x, w, r, DIM);
    double ss = 0.0, dot = 0.0;
    for (int i = 0; i < DIM; i++)
        ss += (double)x[i] * x[i], dot += (double)w[i] * g[i] * x[i];
    const double rr = 1.0 / sqrt(ss / DIM + eps);
    assert_true(fabs(r - rr) <= 0x1p-24 * rr);
    double worst = 0.0;
    for (int i = 0; i < DIM; i++) {
        double y = w[i] * x[i] * rr, d = 0.125 + rr * w[i] * g[i] - x[i] * rr * rr * rr * dot / DIM;
        double scale = 0.125 + fabs(rr * w[i] * g[i]) + fabs(x[i] * rr * rr * rr * dot / DIM);
        worst = fmax(worst, fmax(fabs(out[i] - y) / fabs(y), fabs(dx[i] - d) / scale));
    }
    for (int j = 0; j < HALF; j++)
        cs[j] = cosf(0.2f * j), sn[j] = sinf(0.2f * j), v[j] = sinf(1.1f * j), v[j + HALF] = cosf(0.7f * j);
    float v0[2 * HALF];
    for (int j = 0; j < 2 * HALF; j++)
        v0[j] = v[j];
    vec_rope_rotate(v, cs, sn, HALF);
    for (int j = 0; j < HALF; j++) {
        double a = v0[j], b = v0[j + HALF];
        worst = fmax(worst, fabs(v[j] - (a * cs[j] - b * sn[j])) / (fabs(a) + fabs(b)));
        worst = fmax(worst, fabs(v[j + HALF] - (b * cs[j] + a * sn[j])) / (fabs(a) + fabs(b)));
    }
    print_message("rmsnorm and rope rows: %.2e relative\n", worst);
    assert_true(worst <= 4 * 0x1p-24);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exp_matches_libm),
        cmocka_unit_test(swiglu_matches_formula),
        cmocka_unit_test(softmax_range_matches_formula),
        cmocka_unit_test(rmsnorm_rope_match_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
