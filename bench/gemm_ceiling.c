/* gemm_ceiling.c: what the CPU's GEMM path (src/gemm.c, oneDNN) reaches on
 * the matrix products of one LoRA training step, fp32 and bf16, so that
 * bench/cpu_lora_step.sh can set the step's speed against it.
 *
 *   bench/gemm_ceiling [tokens hidden kv_dim intermediate vocab xent_rows]
 *
 * (default: bench/make_bench_model.py's 20M model, 4 x 256 tokens).  The
 * shapes are the frozen linears' forward (x W^T) and backward (dy W) and the
 * lm_head's; each runs until it has taken 0.2 s, in two ways: one product
 * threaded by the library ("lib"), and the rows split over the OpenMP
 * threads, one single-threaded product each ("split").  Prints one line per
 * shape and a flop-weighted total per precision and way: the last lines,
 * "ceiling fp32 GFLOPS" and "ceiling bf16 GFLOPS", are the better way's. */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>

#include "gemm.h"
#include "log.h"

typedef struct shape {
    const char *what;
    int trans_b, m, n, k;
} shape;

static void product(gemm_precision prec, int split, const shape *s, const float *a, const float *b, float *c)
{
    if (!split) {
        gemm(prec, 0, s->trans_b, s->m, s->n, s->k, 1.0f, a, s->k, b, s->trans_b ? s->k : s->n, 0.0f, c, s->n);
        return;
    }
    const int nt = omp_get_max_threads(), per = (s->m + nt - 1) / nt;
#pragma omp parallel for schedule(static, 1)
    for (int t = 0; t < nt; t++) {
        int lo = t * per, hi = lo + per < s->m ? lo + per : s->m;
        if (lo < hi)
            gemm(prec, 0, s->trans_b, hi - lo, s->n, s->k, 1.0f, a + (size_t)lo * s->k, s->k, b,
                 s->trans_b ? s->k : s->n, 0.0f, c + (size_t)lo * s->n, s->n);
    }
}

/* Seconds per product, after one untimed call (primitive creation). */
static double time_product(gemm_precision prec, int split, const shape *s, const float *a, const float *b, float *c)
{
    product(prec, split, s, a, b, c);
    int reps = 0;
    double t0 = monotonic_seconds(), t = 0.0;
    do {
        product(prec, split, s, a, b, c);
        reps++;
        t = monotonic_seconds() - t0;
    } while (t < 0.2);
    return t / reps;
}

int main(int argc, char **argv)
{
    int v[6] = {1024, 384, 128, 1024, 10000, 64};
    for (int i = 1; i < argc && i <= 6; i++)
        v[i - 1] = atoi(argv[i]);
    const int N = v[0], D = v[1], KV = v[2], I = v[3], V = v[4], XR = v[5];
    const shape shapes[] = {
        {"q,o fwd  x W^T", 1, N, D, D},   {"k,v fwd  x W^T", 1, N, KV, D},  {"gate,up fwd", 1, N, I, D},
        {"down fwd", 1, N, D, I},         {"q,o bwd  dy W", 0, N, D, D},    {"k,v bwd  dy W", 0, N, D, KV},
        {"gate,up bwd", 0, N, D, I},      {"down bwd", 0, N, I, D},         {"lm_head fwd", 1, XR, V, D},
        {"lm_head bwd dh", 0, XR, D, V},
    };
    /* how often each shape runs in a step (q and o, k and v, gate and up: 2) */
    const double count[] = {2, 2, 2, 1, 2, 2, 2, 1, (double)N / XR, (double)N / XR};
    const int n_shapes = sizeof shapes / sizeof shapes[0];
    size_t most = (size_t)(N > XR ? N : XR) * (size_t)(V > I ? V : I);
    float *a = xmalloc(most * sizeof *a), *b = xmalloc(most * sizeof *b), *c = xmalloc(most * sizeof *c);
    for (size_t i = 0; i < most; i++) {
        a[i] = (float)((i * 7) % 13) * 0.0625f - 0.375f;
        b[i] = (float)((i * 5) % 11) * 0.0625f - 0.3125f;
    }
    char lib[128];
    gemm_library_version(lib, sizeof lib);
    printf("%s, %d OpenMP threads, CPU bf16 instructions: %s\n", lib, omp_get_max_threads(),
           gemm_cpu_has_bf16() ? "yes" : "no");
    printf("%-16s %6s %6s %6s  %9s %9s %9s %9s\n", "GFLOP/s", "m", "n", "k", "fp32 lib", "fp32 split", "bf16 lib",
           "bf16 split");
    double flops = 0.0, secs[2][2] = {{0}};
    for (int i = 0; i < n_shapes; i++) {
        const shape *s = &shapes[i];
        const double f = 2.0 * s->m * s->n * s->k;
        printf("%-16s %6d %6d %6d ", s->what, s->m, s->n, s->k);
        for (int p = 0; p < 2; p++)
            for (int split = 0; split < 2; split++) {
                if (p == GEMM_BF16 && !gemm_cpu_has_bf16()) {
                    printf(" %9s", "-");
                    continue;
                }
                double t = time_product((gemm_precision)p, split, s, a, b, c);
                secs[p][split] += count[i] * t;
                printf(" %9.0f", f / t / 1e9);
            }
        printf("\n");
        flops += count[i] * f;
    }
    for (int p = 0; p < 2; p++) {
        if (p == GEMM_BF16 && !gemm_cpu_has_bf16())
            continue;
        const char *name = p == GEMM_F32 ? "fp32" : "bf16";
        printf("step's shapes, %s: lib %.0f GFLOP/s, split %.0f GFLOP/s\n", name, flops / secs[p][0] / 1e9,
               flops / secs[p][1] / 1e9);
        double best = secs[p][0] < secs[p][1] ? secs[p][0] : secs[p][1];
        printf("ceiling %s GFLOPS %.1f\n", name, flops / best / 1e9);
    }
    gemm_release();
    free(a);
    free(b);
    free(c);
    return 0;
}
