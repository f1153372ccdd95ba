/* cpu_fma_peak.c: one core's arithmetic peak, measured: independent chains
 * of AVX-512 fp32 FMAs, of AVX2 (256-bit) fp32 FMAs and of AVX512-BF16 dot
 * products (vdpbf16ps), enough of them to hide the latency.  What a GEMM on
 * this CPU can reach at most, per core, and whether AVX-512 raises it over
 * the AVX2 kernels a peer library may run (doc/PERFORMANCE.md).  Not part
 * of the build:
 *
 *   gcc -O2 -mfma -mavx512f -mavx512bf16 bench/cpu_fma_peak.c -o /tmp/cpu_fma_peak && /tmp/cpu_fma_peak */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

enum { CHAINS = 12 };
static const long ROUNDS = 200000000;

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(void)
{
    __m512 acc[CHAINS];
    const __m512 b = _mm512_set1_ps(1.0000001f), c = _mm512_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_set1_ps((float)i);
    double t0 = seconds();
    for (long r = 0; r < ROUNDS; r++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_fmadd_ps(acc[i], b, c);
    double t = seconds() - t0;
    float sink = 0.0f; /* the results are used, so the loop stays */
    for (int i = 0; i < CHAINS; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    printf("fp32 FMA (16 lanes x 2 flops): %.0f GFLOP/s on one core\n", ROUNDS * CHAINS * 32.0 / t * 1e-9);

    __m256 acc8[CHAINS];
    const __m256 b8 = _mm256_set1_ps(1.0000001f), c8 = _mm256_set1_ps(1e-7f);
    for (int i = 0; i < CHAINS; i++)
        acc8[i] = _mm256_set1_ps((float)i);
    t0 = seconds();
    for (long r = 0; r < ROUNDS; r++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc8[i] = _mm256_fmadd_ps(acc8[i], b8, c8);
    t = seconds() - t0;
    for (int i = 0; i < CHAINS; i++) {
        float lanes[8];
        _mm256_storeu_ps(lanes, acc8[i]);
        for (int l = 0; l < 8; l++)
            sink += lanes[l];
    }
    printf("fp32 FMA, AVX2 (8 lanes x 2 flops): %.0f GFLOP/s on one core\n", ROUNDS * CHAINS * 16.0 / t * 1e-9);

    const __m512bh one = (__m512bh)_mm512_set1_epi16(0x3f80); /* bf16 1.0 */
    for (int i = 0; i < CHAINS; i++)
        acc[i] = _mm512_setzero_ps();
    t0 = seconds();
    for (long r = 0; r < ROUNDS; r++)
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS; i++)
            acc[i] = _mm512_dpbf16_ps(acc[i], one, one);
    t = seconds() - t0;
    for (int i = 0; i < CHAINS; i++)
        sink += _mm512_reduce_add_ps(acc[i]);
    printf("bf16 dot products (32 pairs x 2 flops): %.0f GFLOP/s on one core\n", ROUNDS * CHAINS * 64.0 / t * 1e-9);
    return sink == 0.0f; /* never 0: keeps the compiler from dropping the loops */
}
