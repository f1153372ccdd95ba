/* op_check: every op of backend.h on the CUDA backend against the CPU
 * backend (the reference), forward and backward, on seeded random inputs.
 *
 * Each op runs on both backends with the same inputs; the GPU's outputs are
 * filled with NaN bytes before the op runs, so an output the op forgot to
 * write fails.  The error is normwise: max |gpu - cpu| / max |cpu| over the
 * output, and a non-finite GPU value where the CPU's is finite always
 * fails.  Bounds are per op, for fp32 compute and for bf16 GEMMs (inputs
 * rounded to 8 significant bits, fp32 accumulation: about 4e-3 per product;
 * ops without a GEMM keep their fp32 bound).  Both precisions run.
 *
 * SHARDTUNE_CUDA_SCRATCH_KIB is lowered for a second pass of attention and
 * lm_head_xent, so that the block and chunk loops run more than once.
 *
 * The backend is the CUDA plugin the program finds ($SHARDTUNE_CUDA_PLUGIN):
 * the real one on a GPU, or the CPU emulation of CUDA (tests/cuda_emu),
 * which runs the same backend code on a machine without one.
 *
 * Exit 0: all within bounds; 1: a failure; 77: no plugin or no GPU (skip). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "cuda_plugin.h"
#include "dtype.h"
#include "rng.h"
#include "weight4.h"

static backend *cpu, *gpu;
static int failures;
static int bf16_mode;
static rng gen;

/* ---- helpers ---- */

static float *rand_floats(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = (2.0f * rng_next_uniform(&gen) - 1.0f) * scale;
    return x;
}

static float *host_copy(const float *x, size_t n)
{
    float *y = malloc(n * sizeof *y);
    memcpy(y, x, n * sizeof *y);
    return y;
}

static void *up(const void *host, size_t n_bytes)
{
    void *d = gpu->alloc(gpu, n_bytes, MEM_ACTIVATIONS);
    gpu->copy_to_device(gpu, d, host, n_bytes);
    return d;
}

/* A device output filled with NaN bytes (0xff...). */
static float *poisoned(size_t n)
{
    unsigned char *nan_bytes = malloc(n * sizeof(float));
    memset(nan_bytes, 0xff, n * sizeof(float));
    float *d = up(nan_bytes, n * sizeof(float));
    free(nan_bytes);
    return d;
}

static float *down(const float *d, size_t n)
{
    float *h = malloc(n * sizeof *h);
    gpu->copy_to_host(gpu, h, d, n * sizeof *h);
    return h;
}

/* Compares and reports one output; bound is for fp32 and bf16 modes. */
static void compare(const char *op, const char *what, const float *ref, const float *got, size_t n, double bound_fp32,
                    double bound_bf16)
{
    const double bound = bf16_mode ? bound_bf16 : bound_fp32;
    double max_ref = 0.0, max_err = 0.0;
    size_t non_finite = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(ref[i]) && !isfinite(got[i])) {
            non_finite++;
            continue;
        }
        double r = fabs((double)ref[i]), d = fabs((double)got[i] - (double)ref[i]);
        max_ref = r > max_ref ? r : max_ref;
        max_err = d > max_err ? d : max_err;
    }
    double rel = max_ref > 0 ? max_err / max_ref : max_err;
    int ok = non_finite == 0 && rel <= bound;
    printf("%-5s %-18s %-8s %9.2e  (bound %.0e)%s%s\n", bf16_mode ? "bf16" : "fp32", op, what, rel, bound,
           non_finite ? "  NON-FINITE" : "", ok ? "" : "  FAIL");
    failures += !ok;
}

static void compare_device(const char *op, const char *what, const float *ref, const float *dev, size_t n, double b32,
                           double b16)
{
    float *got = down(dev, n);
    compare(op, what, ref, got, n, b32, b16);
    free(got);
}

/* ---- the ops ---- */

static void check_matmul(void)
{
    /* every transposition, beta != 0, leading dimensions wider than the rows */
    const int m = 37, n = 53, k = 29, pad = 3;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            const int lda = (ta ? m : k) + pad, ldb = (tb ? k : n) + pad, ldc = n + pad;
            const size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb, nc = (size_t)m * ldc;
            float *a = rand_floats(na, 1.0f), *b = rand_floats(nb, 1.0f), *c = rand_floats(nc, 1.0f);
            float *c_gpu_in = host_copy(c, nc);
            cpu->matmul(cpu, ta, tb, m, n, k, 0.7f, a, lda, b, ldb, 0.3f, c, ldc);
            float *da = up(a, na * 4), *db = up(b, nb * 4), *dc = up(c_gpu_in, nc * 4);
            gpu->matmul(gpu, ta, tb, m, n, k, 0.7f, da, lda, db, ldb, 0.3f, dc, ldc);
            char name[32];
            snprintf(name, sizeof name, "matmul %c%c", ta ? 'T' : 'N', tb ? 'T' : 'N');
            compare_device(name, "C", c, dc, nc, 1e-5, 1e-2);
            gpu->free(gpu, da), gpu->free(gpu, db), gpu->free(gpu, dc);
            free(a), free(b), free(c), free(c_gpu_in);
        }
}

static void check_to_f32(void)
{
    const size_t n = 1001;
    float *x = rand_floats(n, 100.0f);
    for (int dt = DT_F32; dt <= DT_F16; dt++)
        for (int offset = 0; offset < 2; offset++) { /* offset 1: an unaligned range */
            size_t bytes = storage_bytes((storage_dtype)dt, n);
            unsigned char *stored = calloc(bytes + 1, 1);
            storage_from_f32((storage_dtype)dt, x, stored + offset, n);
            float *ref = malloc(n * sizeof *ref);
            cpu->to_f32(cpu, ref, stored + offset, (storage_dtype)dt, n);
            unsigned char *dstored = up(stored, bytes + 1);
            float *out = poisoned(n);
            gpu->to_f32(gpu, out, dstored + offset, (storage_dtype)dt, n);
            char name[32];
            snprintf(name, sizeof name, "to_f32 %s%s", storage_dtype_name((storage_dtype)dt), offset ? " +1" : "");
            compare_device(name, "out", ref, out, n, 0.0, 0.0);
            gpu->free(gpu, dstored), gpu->free(gpu, out);
            free(stored), free(ref);
        }
    free(x);
}

/* QLoRA's 4-bit weights (src/weight4.h's layout): the GPU's fp32 values are
 * the CPU's bit for bit (FP4's -0.0 included), for NF4 and FP4, nested and
 * plain absmax.  Sizes: one value; part of a block; 301 blocks and an odd
 * count (a partial last block, and a partial last group of 256 blocks for
 * the nested absmax); two whole groups.  Block scales span four decades, so
 * that the nested absmax codes and their unnesting vary, and one block is
 * all zeros.  Odd sizes start at an odd byte: the state is read at any
 * alignment. */
static void check_to_f32_4bit(void)
{
    static const storage_dtype types[] = {DT_NF4, DT_NF4_PLAIN, DT_FP4, DT_FP4_PLAIN};
    static const size_t sizes[] = {1, 63, 64 * 300 + 37, 64 * 512};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            const size_t n = sizes[k], offset = n % 2 ? 3 : 0, bytes = weight4_bytes(types[t], n);
            float *x = rand_floats(n, 1.0f);
            for (size_t b = 0; b * 64 < n; b++) {
                const float scale = b == 5 ? 0.0f : powf(10.0f, 4.0f * rng_next_uniform(&gen) - 2.0f);
                for (size_t i = b * 64; i < n && i < b * 64 + 64; i++)
                    x[i] *= scale;
            }
            unsigned char *stored = calloc(bytes + offset, 1);
            errbuf e;
            if (weight4_quantize(types[t], DT_F32, x, n, stored + offset, &e) != 0) {
                printf("to_f32 4-bit: %s\n", e.msg);
                failures++;
            }
            float *ref = malloc(n * sizeof *ref);
            cpu->to_f32(cpu, ref, stored + offset, types[t], n);
            unsigned char *dstored = up(stored, bytes + offset);
            float *out = poisoned(n);
            gpu->to_f32(gpu, out, dstored + offset, types[t], n);
            float *got = down(out, n);
            size_t differ = 0;
            for (size_t i = 0; i < n; i++)
                differ += memcmp(&ref[i], &got[i], sizeof *got) != 0;
            char name[32], what[24];
            snprintf(name, sizeof name, "to_f32 %s %s", types[t] == DT_FP4 || types[t] == DT_FP4_PLAIN ? "fp4" : "nf4",
                     types[t] == DT_NF4 || types[t] == DT_FP4 ? "nested" : "plain");
            snprintf(what, sizeof what, "n=%zu", n);
            printf("%-5s %-18s %-8s %9zu of %zu values differ in their bits%s\n", bf16_mode ? "bf16" : "fp32", name,
                   what, differ, n, differ ? "  FAIL" : "");
            failures += differ != 0;
            gpu->free(gpu, dstored), gpu->free(gpu, out);
            free(x), free(stored), free(ref), free(got);
        }
}

/* fp32 to bf16 (the narrow residual stream): the same bits as the CPU's
 * rounding to nearest even, compared after widening both on the CPU. */
static void check_from_f32(void)
{
    const size_t n = 3001;
    float *x = rand_floats(n, 50.0f), *ref = malloc(n * 4), *got = malloc(n * 4);
    unsigned char *cpu_bytes = malloc(n * 2), *gpu_bytes = malloc(n * 2);
    cpu->from_f32(cpu, cpu_bytes, x, DT_BF16, n);
    float *dx = up(x, n * 4);
    unsigned char *dout = gpu->alloc(gpu, n * 2, MEM_ACTIVATIONS);
    gpu->from_f32(gpu, dout, dx, DT_BF16, n);
    gpu->copy_to_host(gpu, gpu_bytes, dout, n * 2);
    cpu->to_f32(cpu, ref, cpu_bytes, DT_BF16, n);
    cpu->to_f32(cpu, got, gpu_bytes, DT_BF16, n);
    compare("from_f32 bf16", "out", ref, got, n, 0.0, 0.0);
    gpu->free(gpu, dx), gpu->free(gpu, dout);
    free(x), free(ref), free(got), free(cpu_bytes), free(gpu_bytes);
}

static void check_flat(void)
{
    const size_t n = 100003;
    float *y = rand_floats(n, 1.0f), *x = rand_floats(n, 1.0f);
    float *dy = up(y, n * 4), *dx = up(x, n * 4);
    cpu->add(cpu, y, x, n);
    gpu->add(gpu, dy, dx, n);
    compare_device("add", "y", y, dy, n, 0.0, 0.0);
    cpu->scale(cpu, y, n, -1.7f);
    gpu->scale(gpu, dy, n, -1.7f);
    compare_device("scale", "x", y, dy, n, 0.0, 0.0);
    float ref = (float)cpu->sum_squares(cpu, y, n), got = (float)gpu->sum_squares(gpu, dy, n);
    compare("sum_squares", "sum", &ref, &got, 1, 1e-7, 1e-7);
    gpu->free(gpu, dy), gpu->free(gpu, dx);
    free(y), free(x);
}

static void check_embedding_and_norm(void)
{
    const int n = 45, dim = 300, vocab = 70;
    float *table = rand_floats((size_t)vocab * dim, 1.0f);
    int32_t ids[45];
    for (int i = 0; i < n; i++)
        ids[i] = (int32_t)(rng_next_u64(&gen) % vocab);
    float *emb = malloc((size_t)n * dim * 4);
    cpu->embedding_fwd(cpu, emb, ids, table, n, dim);
    float *dtable = up(table, (size_t)vocab * dim * 4), *demb = poisoned((size_t)n * dim);
    int32_t *dids = up(ids, sizeof ids);
    gpu->embedding_fwd(gpu, demb, dids, dtable, n, dim);
    compare_device("embedding_fwd", "out", emb, demb, (size_t)n * dim, 0.0, 0.0);

    float *w = rand_floats(dim, 1.0f), *out = malloc((size_t)n * dim * 4), rstd[45];
    cpu->rmsnorm_fwd(cpu, out, rstd, emb, w, n, dim, 1e-5f);
    float *dw = up(w, dim * 4), *dout = poisoned((size_t)n * dim), *drstd = poisoned(n);
    gpu->rmsnorm_fwd(gpu, dout, drstd, demb, dw, n, dim, 1e-5f);
    compare_device("rmsnorm_fwd", "out", out, dout, (size_t)n * dim, 1e-6, 1e-6);
    compare_device("rmsnorm_fwd", "rstd", rstd, drstd, n, 1e-6, 1e-6);

    float *g = rand_floats((size_t)n * dim, 1.0f), *dx = rand_floats((size_t)n * dim, 1.0f);
    float *ddx = up(dx, (size_t)n * dim * 4), *dg = up(g, (size_t)n * dim * 4);
    cpu->rmsnorm_bwd(cpu, dx, g, emb, w, rstd, n, dim);
    gpu->rmsnorm_bwd(gpu, ddx, dg, demb, dw, drstd, n, dim);
    compare_device("rmsnorm_bwd", "dx", dx, ddx, (size_t)n * dim, 1e-5, 1e-5);

    gpu->free(gpu, dtable), gpu->free(gpu, demb), gpu->free(gpu, dids), gpu->free(gpu, dw);
    gpu->free(gpu, dout), gpu->free(gpu, drstd), gpu->free(gpu, ddx), gpu->free(gpu, dg);
    free(table), free(emb), free(w), free(out), free(g), free(dx);
}

static void check_rope(void)
{
    const int n = 33, heads = 3, hd = 64;
    const size_t total = (size_t)n * heads * hd;
    int32_t pos[33];
    for (int i = 0; i < n; i++)
        pos[i] = (int32_t)(rng_next_u64(&gen) % 4096);
    float inv_freq[32];
    for (int j = 0; j < hd / 2; j++)
        inv_freq[j] = 1.0f / powf(10000.0f, 2.0f * j / hd);
    int32_t *dpos = up(pos, sizeof pos);
    float *dfreq = up(inv_freq, sizeof inv_freq);
    for (int inverse = 0; inverse < 2; inverse++) {
        float *x = rand_floats(total, 1.0f);
        float *dx = up(x, total * 4);
        cpu->rope(cpu, x, pos, inv_freq, n, heads, hd, inverse);
        gpu->rope(gpu, dx, dpos, dfreq, n, heads, hd, inverse);
        compare_device(inverse ? "rope inverse" : "rope", "x", x, dx, total, 1e-5, 1e-5);
        gpu->free(gpu, dx);
        free(x);
    }
    gpu->free(gpu, dpos), gpu->free(gpu, dfreq);
}

/* B = 2 sequences of T positions; with_seg: packed, three documents, then
 * padding (segment -1). */
static void check_attention(const char *label, int with_seg, int T, int Hq, int Hkv, int hd)
{
    const int B = 2;
    const size_t nq = (size_t)B * T * Hq * hd, nk = (size_t)B * T * Hkv * hd, nl = (size_t)B * Hq * T;
    float *q = rand_floats(nq, 1.0f), *k = rand_floats(nk, 1.0f), *v = rand_floats(nk, 1.0f);
    int32_t *seg = malloc((size_t)B * T * sizeof *seg);
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            seg[b * T + t] = t < 3 * T / 10 ? 0 : t < (55 + 10 * b) * T / 100 ? 1 : t < 9 * T / 10 ? 2 : -1;
    const int32_t *s = with_seg ? seg : NULL;
    float *out = malloc(nq * 4), *lse = malloc(nl * 4);
    cpu->attention_fwd(cpu, out, lse, q, k, v, s, B, T, Hq, Hkv, hd);
    float *dq_ = up(q, nq * 4), *dk_ = up(k, nk * 4), *dv_ = up(v, nk * 4);
    int32_t *dseg = with_seg ? up(seg, (size_t)B * T * sizeof *seg) : NULL;
    float *dout = poisoned(nq), *dlse = poisoned(nl);
    gpu->attention_fwd(gpu, dout, dlse, dq_, dk_, dv_, dseg, B, T, Hq, Hkv, hd);
    char name[48];
    snprintf(name, sizeof name, "attention_fwd%s", label);
    compare_device(name, "out", out, dout, nq, 1e-5, 2e-2);
    compare_device(name, "lse", lse, dlse, nl, 1e-5, 2e-2);

    /* backward from the CPU's forward results, so that it is checked alone */
    float *g = rand_floats(nq, 1.0f);
    float *gq = malloc(nq * 4), *gk = malloc(nk * 4), *gv = malloc(nk * 4);
    cpu->attention_bwd(cpu, gq, gk, gv, g, out, lse, q, k, v, s, B, T, Hq, Hkv, hd);
    float *dg = up(g, nq * 4), *dout_ref = up(out, nq * 4), *dlse_ref = up(lse, nl * 4);
    float *dgq = poisoned(nq), *dgk = poisoned(nk), *dgv = poisoned(nk);
    gpu->attention_bwd(gpu, dgq, dgk, dgv, dg, dout_ref, dlse_ref, dq_, dk_, dv_, dseg, B, T, Hq, Hkv, hd);
    snprintf(name, sizeof name, "attention_bwd%s", label);
    compare_device(name, "dq", gq, dgq, nq, 1e-5, 3e-2);
    compare_device(name, "dk", gk, dgk, nk, 1e-5, 3e-2);
    compare_device(name, "dv", gv, dgv, nk, 1e-5, 3e-2);

    void *dev[] = {dq_, dk_, dv_, dseg, dout, dlse, dg, dout_ref, dlse_ref, dgq, dgk, dgv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        gpu->free(gpu, dev[i]);
    free(q), free(k), free(v), free(out), free(lse), free(g), free(gq), free(gk), free(gv), free(seg);
}

/* Both attention paths: under bf16 the fused kernels (flash) by default, and
 * the blocked GEMM path; a second shape with three 16-wide steps of
 * head_dim and a group of three query heads per KV head. */
static void check_attention_paths(void)
{
    static const char *const paths[] = {"flash", "blocked"};
    for (int p = 0; p < (bf16_mode ? 2 : 1); p++) {
        setenv("SHARDTUNE_CUDA_ATTENTION", paths[p], 1);
        char label[32];
        snprintf(label, sizeof label, " %s", bf16_mode ? paths[p] : "");
        check_attention(label, 0, 100, 4, 2, 16);
        snprintf(label, sizeof label, " %sseg", bf16_mode ? paths[p] : "");
        check_attention(label, 1, 100, 4, 2, 16);
        snprintf(label, sizeof label, " %shd48", bf16_mode ? paths[p] : "");
        check_attention(label, 1, 130, 6, 2, 48);
    }
    unsetenv("SHARDTUNE_CUDA_ATTENTION");
}

static void check_decode(int n_q, int q_pos0, int n_kv)
{
    const int Hq = 4, Hkv = 2, hd = 16;
    const size_t nq = (size_t)n_q * Hq * hd, nk = (size_t)n_kv * Hkv * hd;
    float *q = rand_floats(nq, 1.0f), *k = rand_floats(nk, 1.0f), *v = rand_floats(nk, 1.0f);
    float *out = malloc(nq * 4);
    cpu->attention_decode(cpu, out, q, k, v, n_q, q_pos0, n_kv, Hq, Hkv, hd);
    float *dq_ = up(q, nq * 4), *dk_ = up(k, nk * 4), *dv_ = up(v, nk * 4), *dout = poisoned(nq);
    gpu->attention_decode(gpu, dout, dq_, dk_, dv_, n_q, q_pos0, n_kv, Hq, Hkv, hd);
    char name[48];
    snprintf(name, sizeof name, "attn_decode %d/%d", n_q, n_kv);
    compare_device(name, "out", out, dout, nq, 1e-5, 1e-5);
    gpu->free(gpu, dq_), gpu->free(gpu, dk_), gpu->free(gpu, dv_), gpu->free(gpu, dout);
    free(q), free(k), free(v), free(out);
}

static void check_swiglu_dropout_adamw(void)
{
    const size_t n = 5000;
    float *gate = rand_floats(n, 4.0f), *upv = rand_floats(n, 2.0f), *out = malloc(n * 4);
    cpu->swiglu_fwd(cpu, out, gate, upv, n);
    float *dgate = up(gate, n * 4), *dup = up(upv, n * 4), *dout = poisoned(n);
    gpu->swiglu_fwd(gpu, dout, dgate, dup, n);
    compare_device("swiglu_fwd", "out", out, dout, n, 1e-6, 1e-6);
    float *g = rand_floats(n, 1.0f), *gg = malloc(n * 4), *gu = malloc(n * 4);
    cpu->swiglu_bwd(cpu, gg, gu, g, gate, upv, n);
    float *dg = up(g, n * 4), *dgg = poisoned(n), *dgu = poisoned(n);
    gpu->swiglu_bwd(gpu, dgg, dgu, dg, dgate, dup, n);
    compare_device("swiglu_bwd", "dgate", gg, dgg, n, 1e-6, 1e-6);
    compare_device("swiglu_bwd", "dup", gu, dgu, n, 1e-6, 1e-6);

    cpu->dropout(cpu, out, gate, n, 0.3f, 0x1234abcdull);
    gpu->dropout(gpu, dout, dgate, n, 0.3f, 0x1234abcdull);
    compare_device("dropout", "out", out, dout, n, 0.0, 0.0);

    float *p = rand_floats(n, 1.0f), *m = rand_floats(n, 0.1f), *v = rand_floats(n, 0.1f);
    for (size_t i = 0; i < n; i++)
        v[i] = fabsf(v[i]);
    float *dp = up(p, n * 4), *dm = up(m, n * 4), *dv = up(v, n * 4);
    cpu->adamw(cpu, p, g, m, v, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
    gpu->adamw(gpu, dp, dg, dm, dv, n, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
    compare_device("adamw", "param", p, dp, n, 1e-6, 1e-6);
    compare_device("adamw", "m", m, dm, n, 1e-6, 1e-6);
    compare_device("adamw", "v", v, dv, n, 1e-6, 1e-6);

    void *dev[] = {dgate, dup, dout, dg, dgg, dgu, dp, dm, dv};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        gpu->free(gpu, dev[i]);
    free(gate), free(upv), free(out), free(g), free(gg), free(gu), free(p), free(m), free(v);
}

/* DoRA's three ops on odd shapes (rows and columns not multiples of a block
 * or warp); col_dot and scale_cols accumulate into what is there. */
static void check_dora(void)
{
    const int rows = 37, cols = 130, n = 21;
    float *w = rand_floats((size_t)rows * cols, 1.0f), *m = rand_floats((size_t)rows, 1.0f);
    float *norm = malloc((size_t)rows * 4), *g = malloc((size_t)rows * 4);
    cpu->dora_norm(cpu, norm, g, m, w, rows, cols);
    float *dw = up(w, (size_t)rows * cols * 4), *dm = up(m, (size_t)rows * 4);
    float *dnorm = poisoned((size_t)rows), *dg = poisoned((size_t)rows);
    gpu->dora_norm(gpu, dnorm, dg, dm, dw, rows, cols);
    compare_device("dora_norm", "norm", norm, dnorm, (size_t)rows, 1e-6, 1e-6);
    compare_device("dora_norm", "g", g, dg, (size_t)rows, 1e-6, 1e-6);

    float *x = rand_floats((size_t)n * rows, 1.0f), *y = rand_floats((size_t)n * rows, 1.0f);
    float *dx = up(x, (size_t)n * rows * 4), *dy = up(y, (size_t)n * rows * 4);
    cpu->scale_cols(cpu, y, x, g, -1.0f, n, rows, 1);
    gpu->scale_cols(gpu, dy, dx, dg, -1.0f, n, rows, 1);
    compare_device("scale_cols", "accumulated", y, dy, (size_t)n * rows, 1e-6, 1e-6);
    cpu->scale_cols(cpu, x, x, g, 0.0f, n, rows, 0);
    gpu->scale_cols(gpu, dx, dx, dg, 0.0f, n, rows, 0);
    compare_device("scale_cols", "in place", x, dx, (size_t)n * rows, 1e-6, 1e-6);

    float *out = rand_floats((size_t)rows, 1.0f), *dout = up(out, (size_t)rows * 4);
    cpu->col_dot(cpu, out, x, y, norm, n, rows);
    gpu->col_dot(gpu, dout, dx, dy, dnorm, n, rows);
    compare_device("col_dot", "out", out, dout, (size_t)rows, 1e-5, 1e-5);

    void *dev[] = {dw, dm, dnorm, dg, dx, dy, dout};
    for (size_t i = 0; i < sizeof dev / sizeof dev[0]; i++)
        gpu->free(gpu, dev[i]);
    free(w), free(m), free(norm), free(g), free(x), free(y), free(out);
}

static void check_xent(const char *label)
{
    const int n = 70, dim = 48, vocab = 300;
    float *h = rand_floats((size_t)n * dim, 1.0f), *w = rand_floats((size_t)vocab * dim, 0.5f);
    int32_t targets[70];
    for (int i = 0; i < n; i++)
        targets[i] = i % 7 == 3 ? -100 : (int32_t)(rng_next_u64(&gen) % vocab);
    float *dh = malloc((size_t)n * dim * 4), *logits = malloc((size_t)n * vocab * 4);
    float *ddh, *dlogits, *dhv = up(h, (size_t)n * dim * 4), *dw = up(w, (size_t)vocab * dim * 4);
    int32_t *dt = up(targets, sizeof targets);
    char name[48];
    for (int mode = 0; mode < 3; mode++) { /* loss only; loss + dh; loss + dh + logits */
        const int want_dh = mode >= 1, want_logits = mode == 2;
        float ref = (float)cpu->lm_head_xent(cpu, want_dh ? dh : NULL, want_logits ? logits : NULL, h, w, targets, n,
                                             dim, vocab, 0.37f);
        ddh = want_dh ? poisoned((size_t)n * dim) : NULL;
        dlogits = want_logits ? poisoned((size_t)n * vocab) : NULL;
        float got = (float)gpu->lm_head_xent(gpu, ddh, dlogits, dhv, dw, dt, n, dim, vocab, 0.37f);
        snprintf(name, sizeof name, "lm_head_xent%s/%d", label, mode);
        compare(name, "loss", &ref, &got, 1, 1e-5, 1e-2);
        if (want_dh)
            compare_device(name, "dh", dh, ddh, (size_t)n * dim, 1e-5, 2e-2);
        if (want_logits)
            compare_device(name, "logits", logits, dlogits, (size_t)n * vocab, 1e-5, 1e-2);
        gpu->free(gpu, ddh), gpu->free(gpu, dlogits);
    }
    gpu->free(gpu, dhv), gpu->free(gpu, dw), gpu->free(gpu, dt);
    free(h), free(w), free(dh), free(logits);
}

static size_t counted_bytes(void)
{
    size_t total = 0;
    for (int c = 0; c < MEM_N_CATEGORIES; c++)
        total += gpu->cur_bytes[c] + gpu->host_cur_bytes[c];
    return total;
}

static void check_memory(void)
{
    /* alloc is zeroed, alloc_host is reachable by copies, and what is freed
     * is no longer counted (the ops' scratch stays until destroy) */
    const size_t before = counted_bytes(), n = 4097;
    float *d = gpu->alloc(gpu, n * 4, MEM_GRADS);
    float *h = gpu->alloc_host(gpu, n * 4, MEM_OPTIMIZER);
    float *ones = malloc(n * 4);
    for (size_t i = 0; i < n; i++)
        ones[i] = 1.0f;
    gpu->copy(gpu, h, d, n * 4); /* zeros into pinned host memory */
    gpu->synchronize(gpu);
    float zero = 0.0f, maxh = 0.0f;
    for (size_t i = 0; i < n; i++)
        maxh = fabsf(h[i]) > maxh ? fabsf(h[i]) : maxh;
    compare("alloc zeroed", "max", &zero, &maxh, 1, 0.0, 0.0);
    gpu->copy_to_device(gpu, d, ones, n * 4);
    gpu->copy(gpu, h, d, n * 4);
    gpu->synchronize(gpu);
    compare("copy to pinned", "values", ones, h, n, 0.0, 0.0);
    gpu->free(gpu, d);
    gpu->free(gpu, h);
    free(ones);
    float fl = (float)counted_bytes() - (float)before, z = 0.0f;
    compare("accounting", "bytes", &z, &fl, 1, 0.0, 0.0);
}

int main(void)
{
    errbuf e;
    const cuda_plugin *plugin = cuda_plugin_open(&e);
    if (!plugin) {
        printf("op_check: skipped: %s\n", e.msg);
        return 77;
    }
    if (plugin->device_count() == 0) {
        printf("op_check: no GPU answers: skipped\n");
        return 77;
    }
    cpu = backend_cpu_create(1, 0);
    for (bf16_mode = 0; bf16_mode < 2; bf16_mode++) {
        unsetenv("SHARDTUNE_CUDA_SCRATCH_KIB");
        gpu = plugin->backend_create(0, bf16_mode, &e);
        if (!gpu) {
            fprintf(stderr, "op_check: %s\n", e.msg);
            return 1;
        }
        rng_init(&gen, 7, (uint64_t)bf16_mode);
        check_matmul();
        check_to_f32();
        check_to_f32_4bit();
        check_from_f32();
        check_flat();
        check_embedding_and_norm();
        check_rope();
        check_attention_paths();
        check_decode(3, 5, 8);
        check_decode(1, 599, 600);
        check_swiglu_dropout_adamw();
        check_dora();
        check_xent("");
        /* small scratch: attention in blocks of 16 queries, logits in chunks of 3 rows */
        setenv("SHARDTUNE_CUDA_SCRATCH_KIB", "4", 1);
        setenv("SHARDTUNE_CUDA_ATTENTION", "blocked", 1);
        check_attention(" blk", 1, 100, 4, 2, 16);
        unsetenv("SHARDTUNE_CUDA_ATTENTION");
        check_xent(" chk");
        unsetenv("SHARDTUNE_CUDA_SCRATCH_KIB");
        check_memory();
        gpu->destroy(gpu);
    }
    cpu->destroy(cpu);
    printf("op_check: %s\n", failures ? "FAILED" : "all ops within bounds");
    return failures ? 1 : 0;
}
