/* cpu_vec.c: see cpu_vec.h.  Each loop is built for AVX-512F, AVX2 and any
 * x86-64 CPU (target_clones: the loader picks by CPU features) and written
 * branch-free (selects, no calls) under `omp simd`, so that the compiler
 * vectorises it.  Sums run lane by lane: the same bits for the same CPU
 * features, run after run. */
#include "cpu_vec.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#define VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

/* exp(x) = 2^n exp(r), n = round(x / ln 2), r = x - n ln 2 split in two
 * parts (Cody-Waite) so that r is exact, exp(r) by Cephes' expf polynomial
 * on |r| <= ln2 / 2.  Inputs below -87 give 0 (exp(-inf) included), above
 * 88 the value at 88 (finite); NaN stays NaN. */
static inline __attribute__((always_inline)) float exp_poly(float x)
{
    const float log2e = 1.44269504088896341f, ln2_hi = 0.693359375f, ln2_lo = -2.12194440e-4f;
    const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding and subtracting it rounds to an integer */
    float xc = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    float n = (xc * log2e + round_magic) - round_magic;
    float r = xc - n * ln2_hi;
    r = r - n * ln2_lo;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    union {
        int32_t i;
        float f;
    } scale = {.i = ((int32_t)n + 127) << 23};
    float y = p * scale.f;
    y = x < -87.0f ? 0.0f : y;
    return x != x ? x : y;
}

VEC_CLONES float vec_exp_shifted(float *y, const float *x, float shift, size_t n_elems)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n_elems; i++) {
        y[i] = exp_poly(x[i] - shift);
        sum += y[i];
    }
    return sum;
}

VEC_CLONES float vec_exp_shifted_sum(const float *x, float shift, size_t n_elems)
{
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (size_t i = 0; i < n_elems; i++)
        sum += exp_poly(x[i] - shift);
    return sum;
}

VEC_CLONES void vec_swiglu_fwd(float *out, const float *gate, const float *up, size_t n_elems)
{
#pragma omp simd
    for (size_t i = 0; i < n_elems; i++) {
        float g = gate[i], s = 1.0f / (1.0f + exp_poly(-g));
        out[i] = g * s * up[i];
    }
}

VEC_CLONES void vec_swiglu_bwd(float *dgate, float *dup, const float *dout, const float *gate, const float *up,
                               size_t n_elems)
{
#pragma omp simd
    for (size_t i = 0; i < n_elems; i++) {
        float g = gate[i], s = 1.0f / (1.0f + exp_poly(-g));
        dup[i] = dout[i] * g * s;
        dgate[i] = dout[i] * up[i] * s * (1.0f + g * (1.0f - s));
    }
}

VEC_CLONES float vec_softmax_range(float *x, size_t lo, size_t hi, size_t n_elems)
{
    float mx = -INFINITY, sum = 0.0f;
#pragma omp simd reduction(max : mx)
    for (size_t i = lo; i < hi; i++)
        mx = x[i] > mx ? x[i] : mx;
#pragma omp simd reduction(+ : sum)
    for (size_t i = lo; i < hi; i++) {
        x[i] = exp_poly(x[i] - mx);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
#pragma omp simd
    for (size_t i = lo; i < hi; i++)
        x[i] *= inv;
    memset(x, 0, lo * sizeof *x);
    memset(x + hi, 0, (n_elems - hi) * sizeof *x);
    return mx + logf(sum);
}

VEC_CLONES void vec_softmax_grad_range(float *s, float *dp, float lse, float d, size_t lo, size_t hi, size_t n_elems)
{
#pragma omp simd
    for (size_t i = lo; i < hi; i++) {
        float p = exp_poly(s[i] - lse);
        s[i] = p;
        dp[i] = p * (dp[i] - d);
    }
    memset(s, 0, lo * sizeof *s);
    memset(s + hi, 0, (n_elems - hi) * sizeof *s);
    memset(dp, 0, lo * sizeof *dp);
    memset(dp + hi, 0, (n_elems - hi) * sizeof *dp);
}

VEC_CLONES float vec_rmsnorm_row(float *out, const float *x, const float *w, float eps, size_t n_elems)
{
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (size_t i = 0; i < n_elems; i++)
        ss += (double)x[i] * x[i];
    const float r = (float)(1.0 / sqrt(ss / n_elems + eps));
#pragma omp simd
    for (size_t i = 0; i < n_elems; i++)
        out[i] = w[i] * (x[i] * r);
    return r;
}

VEC_CLONES void vec_rmsnorm_bwd_row(float *dx, const float *g, const float *x, const float *w, float r,
                                    size_t n_elems)
{
    double dot = 0.0;
#pragma omp simd reduction(+ : dot)
    for (size_t i = 0; i < n_elems; i++)
        dot += (double)w[i] * g[i] * x[i];
    const float c = (float)(dot * r * r * r / n_elems);
#pragma omp simd
    for (size_t i = 0; i < n_elems; i++)
        dx[i] += r * w[i] * g[i] - x[i] * c;
}

VEC_CLONES void vec_rope_rotate(float *x, const float *cs, const float *sn, size_t half)
{
#pragma omp simd
    for (size_t j = 0; j < half; j++) {
        float a = x[j], b = x[j + half];
        x[j] = a * cs[j] - b * sn[j];
        x[j + half] = b * cs[j] + a * sn[j];
    }
}
