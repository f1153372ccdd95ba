/* test_cpu_bf16_ops.c: the CPU backend's bf16 mode (backend_cpu_create(n,
 * 1)) op by op against its fp32 mode fed the same inputs rounded to bf16.
 *
 *  - matmul, every transposition, alpha and beta, padded strides: bf16 inputs
 *    with fp32 accumulation give the fp32 product of the rounded inputs, to
 *    fp32 summation-order error (relative 2e-6 of the largest |C|; 4e-7
 *    seen); and they differ from the fp32 product of the unrounded inputs by
 *    far more (the rounding really happens).  Rounding is to nearest even:
 *    1 + 2^-8 (a tie) becomes 1, 1 + 3 * 2^-8 becomes 1 + 2^-6, checked with
 *    1x1x1 products whose exact values IEEE arithmetic fixes.
 *  - lm_head + cross-entropy: logits and loss of rounded h, w to 1e-5; dh
 *    rounds the softmax gradient once more before its product (as cuBLAS'
 *    FAST_16BF does): 2^-8 relative to the norm.
 *  - attention forward/backward: scores from rounded q, k (lse to 1e-5);
 *    P, dO and dS are rounded before their products: 2^-7 of the norm.
 *  - the residual stream is kept in bf16 (activation_dtype).
 *  - linear weights kept in bf16 with the adapter beside them (to_bf16,
 *    lora_fuse_bf16, matmul_bf16_weight): the fp32 products of the rounded
 *    operands, base and adapter summed, to 2e-6.
 * Skipped (77) on a CPU without bf16 instructions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "gemm.h"

static backend *f32, *bf;
static uint64_t seed = 12345;

static float uniform(void) /* [-1, 1) */
{
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((seed >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static float *random_vec(size_t n, float scale)
{
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++)
        x[i] = scale * uniform();
    return x;
}

/* The bf16 nearest-even value of x, through the storage conversion. */
static float *rounded(const float *x, size_t n)
{
    uint16_t *h = malloc(n * sizeof *h);
    float *r = malloc(n * sizeof *r);
    storage_from_f32(DT_BF16, x, h, n);
    storage_to_f32(DT_BF16, h, r, n);
    free(h);
    return r;
}

static double max_abs(const float *x, size_t n)
{
    double m = 0.0;
    for (size_t i = 0; i < n; i++)
        m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* max |a - b| over max |b| */
static double rel_max(const float *a, const float *b, size_t n)
{
    double d = 0.0;
    for (size_t i = 0; i < n; i++)
        d = fabs((double)a[i] - b[i]) > d ? fabs((double)a[i] - b[i]) : d;
    return d / max_abs(b, n);
}

/* ||a - b|| / ||b|| */
static double rel_norm(const float *a, const float *b, size_t n)
{
    double d = 0.0, r = 0.0;
    for (size_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += (double)b[i] * b[i];
    }
    return sqrt(d / r);
}

static void products_round_inputs_and_accumulate_in_fp32(void **state)
{
    (void)state;
    const int shapes[][3] = {{7, 5, 3}, {64, 96, 130}, {33, 257, 40}, {128, 64, 1000}};
    double worst = 0.0, least_unrounded = INFINITY;
    for (size_t si = 0; si < sizeof shapes / sizeof shapes[0]; si++)
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++)
                for (int ab = 0; ab < 2; ab++) {
                    const int m = shapes[si][0], n = shapes[si][1], k = shapes[si][2];
                    const float alpha = ab ? 0.5f : 1.0f, beta = ab ? 1.0f : 0.0f;
                    const int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1, ldc = n + 2;
                    const size_t na = (size_t)(ta ? k : m) * lda, nb = (size_t)(tb ? n : k) * ldb,
                                 nc = (size_t)m * ldc;
                    float *a = random_vec(na, 1.0f), *b = random_vec(nb, 1.0f), *c0 = random_vec(nc, 1.0f);
                    float *ar = rounded(a, na), *br = rounded(b, nb);
                    float *c_bf = malloc(nc * sizeof *c_bf), *c_ref = malloc(nc * sizeof *c_ref),
                          *c_fp = malloc(nc * sizeof *c_fp);
                    memcpy(c_bf, c0, nc * sizeof *c0);
                    memcpy(c_ref, c0, nc * sizeof *c0);
                    memcpy(c_fp, c0, nc * sizeof *c0);
                    bf->matmul(bf, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c_bf, ldc);
                    f32->matmul(f32, ta, tb, m, n, k, alpha, ar, lda, br, ldb, beta, c_ref, ldc);
                    f32->matmul(f32, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c_fp, ldc);
                    double err = rel_max(c_bf, c_ref, nc), unrounded = rel_max(c_bf, c_fp, nc);
                    if (err > 2e-6 || unrounded < 1e-4)
                        fail_msg("matmul %dx%dx%d trans %d%d alpha %g beta %g: vs fp32 of rounded inputs %.2e "
                                 "(<= 2e-6), vs fp32 of the inputs %.2e (>= 1e-4)",
                                 m, n, k, ta, tb, alpha, beta, err, unrounded);
                    worst = err > worst ? err : worst;
                    least_unrounded = unrounded < least_unrounded ? unrounded : least_unrounded;
                    /* padding between rows is left alone */
                    for (int i = 0; i < m; i++)
                        for (int j = n; j < ldc; j++)
                            assert_true(c_bf[(size_t)i * ldc + j] == c0[(size_t)i * ldc + j]);
                    free(a), free(b), free(c0), free(ar), free(br), free(c_bf), free(c_ref), free(c_fp);
                }
    print_message("matmul: worst %.2e from fp32 of the rounded inputs; at least %.2e from fp32 of the inputs\n",
                  worst, least_unrounded);
}

static void rounding_is_to_nearest_even(void **state)
{
    (void)state;
    const float one = 1.0f;
    const float in[] = {1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 1.0f + 0x1p-8f + 0x1p-20f, -(1.0f + 0x1p-8f)};
    const float want[] = {1.0f, 1.0f + 0x1p-6f, 1.0f + 0x1p-7f, -1.0f};
    for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) {
        float c = 0.0f;
        bf->matmul(bf, 0, 0, 1, 1, 1, 1.0f, &in[i], 1, &one, 1, 0.0f, &c, 1);
        if (c != want[i])
            fail_msg("bf16 product of %a and 1: %a, want %a", in[i], c, want[i]);
    }
}

static void lm_head_xent_rounds_its_products(void **state)
{
    (void)state;
    const int n = 70, dim = 48, vocab = 300;
    float *h = random_vec((size_t)n * dim, 1.0f), *w = random_vec((size_t)vocab * dim, 0.5f);
    float *hr = rounded(h, (size_t)n * dim), *wr = rounded(w, (size_t)vocab * dim);
    int32_t targets[70];
    for (int i = 0; i < n; i++)
        targets[i] = i % 9 == 4 ? -100 : (i * 37) % vocab;
    float *lg_bf = malloc((size_t)n * vocab * sizeof(float)), *lg_ref = malloc((size_t)n * vocab * sizeof(float));
    float *dh_bf = malloc((size_t)n * dim * sizeof(float)), *dh_ref = malloc((size_t)n * dim * sizeof(float));
    double loss_bf = bf->lm_head_xent(bf, dh_bf, lg_bf, h, w, targets, n, dim, vocab, 0.01f);
    double loss_ref = f32->lm_head_xent(f32, dh_ref, lg_ref, hr, wr, targets, n, dim, vocab, 0.01f);
    double e_lg = rel_max(lg_bf, lg_ref, (size_t)n * vocab), e_loss = fabs(loss_bf - loss_ref) / fabs(loss_ref),
           e_dh = rel_norm(dh_bf, dh_ref, (size_t)n * dim);
    print_message("lm_head_xent: logits %.2e, loss %.2e, dh %.2e\n", e_lg, e_loss, e_dh);
    if (e_lg > 1e-5 || e_loss > 1e-5 || e_dh > 0x1p-8)
        fail_msg("lm_head_xent: logits %.2e (<= 1e-5), loss %.2e (<= 1e-5), dh %.2e (<= 2^-8)", e_lg, e_loss, e_dh);
    free(h), free(w), free(hr), free(wr), free(lg_bf), free(lg_ref), free(dh_bf), free(dh_ref);
}

static void attention_rounds_its_products(void **state)
{
    (void)state;
    const int B = 2, T = 150, H = 4, KV = 2, hd = 32;
    const size_t nq = (size_t)B * T * H * hd, nk = (size_t)B * T * KV * hd, nl = (size_t)B * H * T;
    float *q = random_vec(nq, 1.0f), *k = random_vec(nk, 1.0f), *v = random_vec(nk, 1.0f),
          *dout = random_vec(nq, 1.0f);
    float *qr = rounded(q, nq), *kr = rounded(k, nk), *vr = rounded(v, nk), *dr = rounded(dout, nq);
    float *o_bf = malloc(nq * 4), *o_ref = malloc(nq * 4), *l_bf = malloc(nl * 4), *l_ref = malloc(nl * 4);
    bf->attention_fwd(bf, o_bf, l_bf, q, k, v, NULL, B, T, H, KV, hd);
    f32->attention_fwd(f32, o_ref, l_ref, qr, kr, vr, NULL, B, T, H, KV, hd);
    double e_o = rel_norm(o_bf, o_ref, nq), e_l = rel_max(l_bf, l_ref, nl);
    print_message("attention_fwd: out %.2e, lse %.2e\n", e_o, e_l);
    if (e_o > 0x1p-7 || e_l > 1e-5)
        fail_msg("attention_fwd: out %.2e (<= 2^-7), lse %.2e (<= 1e-5)", e_o, e_l);
    float *dq_bf = malloc(nq * 4), *dk_bf = malloc(nk * 4), *dv_bf = malloc(nk * 4);
    float *dq_ref = malloc(nq * 4), *dk_ref = malloc(nk * 4), *dv_ref = malloc(nk * 4);
    bf->attention_bwd(bf, dq_bf, dk_bf, dv_bf, dout, o_bf, l_bf, q, k, v, NULL, B, T, H, KV, hd);
    f32->attention_bwd(f32, dq_ref, dk_ref, dv_ref, dr, o_ref, l_ref, qr, kr, vr, NULL, B, T, H, KV, hd);
    double e_dq = rel_norm(dq_bf, dq_ref, nq), e_dk = rel_norm(dk_bf, dk_ref, nk),
           e_dv = rel_norm(dv_bf, dv_ref, nk);
    print_message("attention_bwd: dq %.2e, dk %.2e, dv %.2e\n", e_dq, e_dk, e_dv);
    if (e_dq > 0x1p-7 || e_dk > 0x1p-7 || e_dv > 0x1p-7)
        fail_msg("attention_bwd: dq %.2e dk %.2e dv %.2e (each <= 2^-7)", e_dq, e_dk, e_dv);
    free(q), free(k), free(v), free(dout), free(qr), free(kr), free(vr), free(dr);
    free(o_bf), free(o_ref), free(l_bf), free(l_ref);
    free(dq_bf), free(dk_bf), free(dv_bf), free(dq_ref), free(dk_ref), free(dv_ref);
}

static void residual_stream_is_bf16(void **state)
{
    (void)state;
    assert_int_equal(bf->activation_dtype, DT_BF16);
    assert_int_equal(f32->activation_dtype, DT_F32);
}

/* A linear weight kept in bf16 with its adapter beside it: to_bf16 from
 * fp32 and bf16 storage into rows of stride in + r, lora_fuse_bf16's s B and
 * A, and the products [x | xa] [W | s B]^T and [dy | dxa] [W ; A] against
 * the fp32 products of the rounded operands (x W^T + s xa B^T, dy W + dxa
 * A), to summation-order error; the weight rows' padding columns past s B
 * and the corner are never read (NaN there must not reach the result). */
static void bf16_weight_with_adapter(void **state)
{
    (void)state;
    const int n = 37, out = 48, in = 72, r = 8, ld = in + r;
    const float scale = 1.5f; /* not a power of two: s B is rounded after scaling */
    float *w = random_vec((size_t)out * in, 1.0f), *a = random_vec((size_t)r * in, 1.0f),
          *b = random_vec((size_t)out * r, 1.0f), *x = random_vec((size_t)n * in, 1.0f),
          *xa = random_vec((size_t)n * r, 1.0f), *dy = random_vec((size_t)n * out, 1.0f),
          *dxa = random_vec((size_t)n * r, 1.0f);
    float *sb = malloc((size_t)out * r * sizeof *sb);
    for (int i = 0; i < out * r; i++)
        sb[i] = scale * b[i];
    float *wr = rounded(w, (size_t)out * in), *ar = rounded(a, (size_t)r * in), *sbr = rounded(sb, (size_t)out * r),
          *xr = rounded(x, (size_t)n * in), *xar = rounded(xa, (size_t)n * r), *dyr = rounded(dy, (size_t)n * out),
          *dxar = rounded(dxa, (size_t)n * r);
    uint16_t *w_bf16 = malloc((size_t)out * in * sizeof *w_bf16);
    storage_from_f32(DT_BF16, w, w_bf16, (size_t)out * in);
    for (int from_bf16 = 0; from_bf16 < 2; from_bf16++) {
        uint16_t *buf = malloc((size_t)(out + r) * ld * sizeof *buf);
        memset(buf, 0xff, (size_t)(out + r) * ld * sizeof *buf); /* NaN everywhere not written */
        if (from_bf16)
            bf->to_bf16(bf, buf, (size_t)ld, w_bf16, DT_BF16, (size_t)out, (size_t)in);
        else
            bf->to_bf16(bf, buf, (size_t)ld, w, DT_F32, (size_t)out, (size_t)in);
        bf->lora_fuse_bf16(bf, buf, ld, out, in, r, NULL, b, scale);
        bf->lora_fuse_bf16(bf, buf, ld, out, in, r, a, NULL, scale);
        for (int i = 0; i < out; i++)
            for (int j = 0; j < in; j++) {
                float v;
                storage_to_f32(DT_BF16, buf + (size_t)i * ld + j, &v, 1);
                assert_true(v == wr[(size_t)i * in + j]);
            }
        /* forward: y = x W^T + s xa B^T */
        float *y = malloc((size_t)n * out * sizeof *y), *y_ref = malloc((size_t)n * out * sizeof *y_ref);
        bf->matmul_bf16_weight(bf, 1, n, out, in, x, in, r, xa, r, buf, ld, 0.0f, y, out);
        f32->matmul(f32, 0, 1, n, out, in, 1.0f, xr, in, wr, in, 0.0f, y_ref, out);
        f32->matmul(f32, 0, 1, n, out, r, 1.0f, xar, r, sbr, r, 1.0f, y_ref, out);
        double err_f = rel_max(y, y_ref, (size_t)n * out);
        /* backward: dx = dy W + dxa A, accumulated onto what dx held */
        float *dx0 = random_vec((size_t)n * in, 1.0f);
        float *dx = malloc((size_t)n * in * sizeof *dx), *dx_ref = malloc((size_t)n * in * sizeof *dx_ref);
        memcpy(dx, dx0, (size_t)n * in * sizeof *dx);
        memcpy(dx_ref, dx0, (size_t)n * in * sizeof *dx);
        bf->matmul_bf16_weight(bf, 0, n, in, out, dy, out, r, dxa, r, buf, ld, 1.0f, dx, in);
        f32->matmul(f32, 0, 0, n, in, out, 1.0f, dyr, out, wr, in, 1.0f, dx_ref, in);
        f32->matmul(f32, 0, 0, n, in, r, 1.0f, dxar, r, ar, in, 1.0f, dx_ref, in);
        double err_b = rel_max(dx, dx_ref, (size_t)n * in);
        print_message("bf16 weight (from %s storage) with adapter: forward %.2e, backward %.2e\n",
                      from_bf16 ? "bf16" : "fp32", err_f, err_b);
        if (!(err_f <= 2e-6 && err_b <= 2e-6))
            fail_msg("fused products off the fp32 products of the rounded operands: %.2e, %.2e (<= 2e-6)", err_f,
                     err_b);
        free(buf), free(y), free(y_ref), free(dx0), free(dx), free(dx_ref);
    }
    assert_int_equal(bf->weight_dtype, DT_BF16);
    assert_int_equal(f32->weight_dtype, DT_F32);
    free(w), free(a), free(b), free(x), free(xa), free(dy), free(dxa), free(sb), free(w_bf16);
    free(wr), free(ar), free(sbr), free(xr), free(xar), free(dyr), free(dxar);
}

int main(void)
{
    if (!gemm_cpu_has_bf16()) {
        printf("SKIP: this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16)\n");
        return 77;
    }
    f32 = backend_cpu_create(1, 0);
    bf = backend_cpu_create(1, 1);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(products_round_inputs_and_accumulate_in_fp32),
        cmocka_unit_test(rounding_is_to_nearest_even),
        cmocka_unit_test(lm_head_xent_rounds_its_products),
        cmocka_unit_test(attention_rounds_its_products),
        cmocka_unit_test(residual_stream_is_bf16),
        cmocka_unit_test(bf16_weight_with_adapter),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    bf->destroy(bf);
    f32->destroy(f32);
    return rc;
}
