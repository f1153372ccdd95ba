/* test_cpu_vec.c: the CPU backend's vectorised exponentials (src/cpu_vec.c)
 * against libm: exp(x - shift) within 2 ulp of exp computed in double over
 * the range a softmax sees (and 0 for -inf and below e^-87, NaN for NaN),
 * their sums within float summation error, and SwiGLU forward and backward
 * within a few float roundings of the formulas in double: 8 roundings
 * forward, 2e-6 of the size of its terms for the gate's gradient, where
 * 1 - s loses digits as s nears 1 (the same loop on libm's expf: 1.0e-6 at
 * g = 16.6, as here). */
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(exp_matches_libm),
        cmocka_unit_test(swiglu_matches_formula),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
