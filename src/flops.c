/* flops.c: see flops.h. */
#include "flops.h"

#include <stdlib.h>

#include "gemm.h"
#include "log.h"

double model_flops_per_token(const llama_config *cfg, double seq, double n_trainable)
{
    const double h = cfg->hidden_size, inter = cfg->intermediate_size, L = cfg->n_layers;
    const double q = (double)cfg->n_heads * cfg->head_dim, kv = (double)cfg->n_kv_heads * cfg->head_dim;
    const double p_linear = L * (h * q + 2.0 * h * kv + q * h + 3.0 * h * inter) + h * cfg->vocab_size;
    return 4.0 * p_linear + 6.0 * n_trainable + 6.0 * L * seq * q;
}

double cpu_gemm_peak(int bf16)
{
    enum { N = 1024 };
    float *a = xmalloc((size_t)N * N * sizeof *a), *b = xmalloc((size_t)N * N * sizeof *b),
          *c = xmalloc((size_t)N * N * sizeof *c);
    for (size_t i = 0; i < (size_t)N * N; i++) {
        a[i] = (float)(i % 7) * 0.125f;
        b[i] = (float)(i % 5) * 0.25f;
    }
    double best = 0.0;
    for (int r = 0; r < 4; r++) { /* the first run warms caches and threads */
        double t = monotonic_seconds();
        gemm(bf16 ? GEMM_BF16 : GEMM_F32, 0, 0, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
        t = monotonic_seconds() - t;
        if (r > 0 && t > 0 && 2.0 * N * N * N / t > best)
            best = 2.0 * N * N * N / t;
    }
    free(a);
    free(b);
    free(c);
    return best;
}
