/* test_quant4.c: NF4 / FP4 blockwise quantization and nested absmax
 * (src/quant4.c) against facts written out here, not computed by the code
 * under test: the NF4 table as the QLoRA paper (appendix E) and bitsandbytes
 * publish it, FP4 decoded from its bit fields, hand-worked packing and
 * rounding cases, and brute-force nearest-value searches.  The bit-for-bit
 * comparison with bitsandbytes itself is tests/quant/quant_bnb.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant4.h"

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* splitmix64 and Box-Muller: reproducible normal samples for the tests */
static uint64_t rng_state = 0x5eed;
static double uniform01(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return ((z >> 11) + 0.5) * 0x1p-53;
}
static float normal(void)
{
    return (float)(sqrt(-2.0 * log(uniform01())) * cos(2.0 * M_PI * uniform01()));
}

/* ---------------------------------------------------------------- tables */

static void test_nf4_values_are_the_published_table(void **state)
{
    /* QLoRA (Dettmers et al. 2023), appendix E; bitsandbytes get_4bit_type("nf4") */
    static const double published[16] = {
        -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
        -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
        0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
        0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
    };
    for (unsigned c = 0; c < 16; c++)
        assert_true(same_bits(quant4_value(QUANT4_NF4, c), (float)published[c]));
}

static void test_fp4_values_decode_sign_exponent_mantissa(void **state)
{
    /* bitsandbytes' FP4: 1 sign bit, 2 exponent bits, 1 mantissa bit; exponent
     * field 0 is subnormal (mantissa x 1/16), fields 1, 2, 3 are 2^3, 2^2, 2^1;
     * the magnitudes 0 .. 12 are divided by 12 so that 1.0 is the largest. */
    for (unsigned c = 0; c < 16; c++) {
        unsigned e = (c >> 1) & 3, m = c & 1;
        float mag = e == 0 ? m / 16.0f : ldexpf(1.0f + m / 2.0f, 4 - (int)e);
        float want = mag / 12.0f;
        if (c & 8)
            want = -want; /* code 8 is -0 */
        assert_true(same_bits(quant4_value(QUANT4_FP4, c), want));
    }
    assert_true(same_bits(quant4_value(QUANT4_FP4, 3), 1.0f));
    assert_true(same_bits(quant4_value(QUANT4_FP4, 1), 0.0625f / 12.0f));
}

static void test_dynamic_map_is_sorted_symmetric_and_self_encoding(void **state)
{
    assert_true(same_bits(quant4_dynamic_value(127), 0.0f));
    assert_true(same_bits(quant4_dynamic_value(255), 1.0f));
    /* bitsandbytes' signed map: 7 decades of means of linspace(0.1, 1, ...),
     * the top one 64 means of linspace(0.1, 1, 65) -> 0.99296875 */
    assert_float_equal(quant4_dynamic_value(254), 0.99296875f, 1e-7f);
    assert_float_equal(quant4_dynamic_value(128), 0.55e-6f, 1e-12f);
    for (unsigned q = 0; q < 255; q++)
        assert_true(quant4_dynamic_value(q) < quant4_dynamic_value(q + 1));
    for (unsigned j = 0; j < 127; j++)
        assert_true(same_bits(quant4_dynamic_value(126 - j), -quant4_dynamic_value(128 + j)));
    for (unsigned q = 0; q < 256; q++)
        assert_int_equal(quant4_dynamic_encode(quant4_dynamic_value(q)), q);
}

/* -------------------------------------------------------------- encoding */

/* The code whose value is v (for FP4 0.0, code 0; -0.0 is its other zero). */
static unsigned code_of(quant4_type t, float v)
{
    for (unsigned c = 0; c < 16; c++)
        if (same_bits(quant4_value(t, c), v))
            return c;
    fail_msg("%g is not a value of %s", v, quant4_type_name(t));
    return 99;
}

/* Ascending distinct values of type t (FP4's two zeros once). */
static int sorted_values(quant4_type t, float *out)
{
    int k = 0;
    for (unsigned c = 0; c < 16; c++) {
        float v = quant4_value(t, c);
        if (t == QUANT4_FP4 && c == 8)
            continue;
        int i = k++;
        while (i > 0 && out[i - 1] > v) {
            out[i] = out[i - 1];
            i--;
        }
        out[i] = v;
    }
    return k;
}

static void test_ties_go_to_the_lower_value(void **state)
{
    /* bitsandbytes' torch.bucketize over fp32 midpoints: s exactly on the
     * midpoint of a < b gets a, the next float up gets b. */
    for (int t = QUANT4_NF4; t <= QUANT4_FP4; t++) {
        float v[16];
        int k = sorted_values(t, v);
        assert_int_equal(k, t == QUANT4_FP4 ? 15 : 16);
        for (int j = 0; j + 1 < k; j++) {
            float mid = (v[j] + v[j + 1]) / 2.0f;
            /* FP4's zero from above is code 8 (-0): see the next test */
            unsigned lower = t == QUANT4_FP4 && v[j] == 0.0f ? 8 : code_of(t, v[j]);
            assert_int_equal(quant4_encode(t, mid), lower);
            assert_int_equal(quant4_encode(t, nextafterf(mid, -2.0f)), lower);
            assert_int_equal(quant4_encode(t, nextafterf(mid, 2.0f)), code_of(t, v[j + 1]));
            assert_int_equal(quant4_encode(t, v[j]), code_of(t, v[j]));
        }
        assert_int_equal(quant4_encode(t, 1.0f), code_of(t, 1.0f));
        assert_int_equal(quant4_encode(t, -1.0f), code_of(t, -1.0f));
    }
    /* an FP4 tie worked by hand: 0.0859375 = (1/192 + 1/6) / 2 exactly */
    assert_int_equal(quant4_encode(QUANT4_FP4, 0.0859375f), 1);   /* +1/192 */
    assert_int_equal(quant4_encode(QUANT4_FP4, -0.0859375f), 14); /* -1/6: the lower value */
    /* the 8-bit map: midpoint of codes 200 and 201 -> 200 */
    float a = quant4_dynamic_value(200), b = quant4_dynamic_value(201);
    assert_int_equal(quant4_dynamic_encode((a + b) / 2.0f), 200);
    assert_int_equal(quant4_dynamic_encode(nextafterf((a + b) / 2.0f, 2.0f)), 201);
}

static void test_fp4_zeros_follow_bitsandbytes_cpu(void **state)
{
    /* bitsandbytes 0.50.2 on the CPU: (-0.0026, 0] -> code 0, (0, 0.0026] -> code 8 */
    assert_int_equal(quant4_encode(QUANT4_FP4, 0.0f), 0);
    assert_int_equal(quant4_encode(QUANT4_FP4, -0.0f), 0);
    assert_int_equal(quant4_encode(QUANT4_FP4, -1e-4f), 0);
    assert_int_equal(quant4_encode(QUANT4_FP4, 1e-4f), 8);
    assert_int_equal(quant4_encode(QUANT4_FP4, 0.0026f), 8);
    assert_int_equal(quant4_encode(QUANT4_FP4, 0.0027f), 1);
    assert_int_equal(quant4_encode(QUANT4_NF4, 0.0f), 7);
}

/* Every dequantized value is a nearest representable one: no other code of
 * its block is closer (brute force, in double). */
static void check_nearest(quant4_type t, const float *x, const float *out, const float *absmax,
                          size_t n, size_t bs)
{
    for (size_t i = 0; i < n; i++) {
        double a = absmax[i / bs], err = fabs((double)x[i] - out[i]), best = INFINITY;
        for (unsigned c = 0; c < 16; c++)
            best = fmin(best, fabs((double)x[i] - (double)quant4_value(t, c) * a));
        /* x * (1/absmax) has one rounding: a tie may tip by 1e-7 of absmax */
        assert_true(err <= best + 1e-6 * a);
        /* the largest half-gap: NF4 (-0.6961928 - (-1)) / 2, FP4 (1 - 2/3) / 2 */
        assert_true(err <= (t == QUANT4_NF4 ? 0.15191 : 0.16667) * a * (1 + 1e-6));
    }
}

static void test_scales_by_the_reciprocal_not_by_division(void **state)
{
    /* a found by search: x * fl32(1/a) lands just above NF4's midpoint
     * between codes 6 and 7, x / a exactly on it.  bitsandbytes (and its CUDA
     * kernel) multiply: code 7; dividing would give code 6. */
    const float a = 0x1.13c502p-4f, x[4] = {a, -0x1.91bdc2p-9f, -0x1.91bdc2p-9f, a};
    float mid = (quant4_value(QUANT4_NF4, 6) + 0.0f) / 2.0f;
    assert_true(x[1] / a == mid);
    assert_true(x[1] * (1.0f / a) > mid);
    uint8_t packed[2];
    float absmax[1];
    errbuf e;
    assert_int_equal(quant4_quantize(QUANT4_NF4, 32, DT_F32, x, 4, packed, absmax, &e), 0);
    assert_int_equal(packed[0], 0xf7); /* in either nibble */
    assert_int_equal(packed[1], 0x7f);
}

/* -------------------------------------------------------------- packing */

static void test_first_element_in_the_high_nibble_odd_tail_padded(void **state)
{
    const float x[3] = {1.0f, -1.0f, 0.0f};
    uint8_t packed[2] = {0xaa, 0xaa};
    float absmax[1] = {-1.0f};
    errbuf e;
    assert_int_equal(quant4_quantize(QUANT4_NF4, 64, DT_F32, x, 3, packed, absmax, &e), 0);
    assert_int_equal(packed[0], 0xf0); /* 1.0 -> 15 high, -1.0 -> 0 low */
    assert_int_equal(packed[1], 0x77); /* 0 -> 7, and the pad is 7 (zero) */
    assert_true(same_bits(absmax[0], 1.0f));
    assert_int_equal(quant4_quantize(QUANT4_FP4, 64, DT_F32, x, 3, packed, absmax, &e), 0);
    assert_int_equal(packed[0], 0x3b); /* 1.0 -> 3, -1.0 -> 11 */
    assert_int_equal(packed[1], 0x00); /* 0 -> 0, pad 0 */
}

static void test_odd_sizes_blocks_and_bounds(void **state)
{
    static const size_t sizes[] = {1, 31, 33, 63, 65, 127, 129, 4097};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        size_t n = sizes[k], bs = 32, nb = quant4_n_blocks(n, bs), nbytes = quant4_packed_bytes(n);
        assert_int_equal(nb, (n + 31) / 32);
        assert_int_equal(nbytes, (n + 1) / 2);
        float *x = malloc(n * sizeof *x), *absmax = malloc((nb + 1) * sizeof *absmax);
        float *out = malloc((n + 1) * sizeof *out);
        uint8_t *packed = malloc(nbytes + 1);
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(i % 7) - 3.0f + 0.25f * (float)(i / 32); /* tail max is known */
        packed[nbytes] = 0x5a;
        absmax[nb] = 123.0f;
        out[n] = 456.0f;
        errbuf e;
        assert_int_equal(quant4_quantize(QUANT4_NF4, bs, DT_F32, x, n, packed, absmax, &e), 0);
        assert_int_equal(packed[nbytes], 0x5a); /* nothing written past the end */
        assert_true(same_bits(absmax[nb], 123.0f));
        for (size_t b = 0; b < nb; b++) {
            float m = 0.0f;
            for (size_t i = b * bs; i < n && i < (b + 1) * bs; i++)
                m = fmaxf(m, fabsf(x[i]));
            assert_true(same_bits(absmax[b], m));
        }
        if (n % 2)
            assert_int_equal(packed[nbytes - 1] & 15, 7);
        quant4_dequantize(QUANT4_NF4, bs, packed, absmax, n, DT_F32, out);
        assert_true(same_bits(out[n], 456.0f));
        check_nearest(QUANT4_NF4, x, out, absmax, n, bs);
        /* the tail's values are whole/quarter numbers up to |3.x|: its max
         * element survives exactly (code 1.0 or -1.0 times absmax) */
        size_t last = n - 1;
        if (fabsf(x[last]) == absmax[nb - 1])
            assert_true(same_bits(out[last], x[last]));
        free(x), free(absmax), free(out), free(packed);
    }
}

/* Sharded loading quantizes a tensor in parts: absmax of some blocks, then
 * the codes of any byte range.  Every part equals the same bytes of the
 * whole-tensor quantization (itself checked against bitsandbytes in
 * quant_bnb.sh), at odd lengths, ranges starting inside blocks and ending
 * the tensor. */
static void test_parts_equal_the_whole_tensor(void **state)
{
    static const size_t sizes[] = {640, 4097};
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < 2; k++) {
            const quant4_type type = t ? QUANT4_FP4 : QUANT4_NF4;
            const size_t n = sizes[k], bs = 64, nb = quant4_n_blocks(n, bs), nbytes = quant4_packed_bytes(n);
            float *x = malloc(n * sizeof *x), *absmax = malloc(nb * sizeof *absmax);
            float *parts = malloc(nb * sizeof *parts);
            uint8_t *packed = malloc(nbytes), *piece = malloc(nbytes + 1);
            for (size_t i = 0; i < n; i++)
                x[i] = normal();
            errbuf e;
            assert_int_equal(quant4_quantize(type, bs, DT_F32, x, n, packed, absmax, &e), 0);
            for (size_t b = 0; b < nb; b += 3) { /* three blocks at a time, the last part short */
                size_t len = n - b * bs < 3 * bs ? n - b * bs : 3 * bs;
                assert_int_equal(quant4_absmax(bs, DT_F32, x + b * bs, len, parts + b, &e), 0);
            }
            assert_memory_equal(parts, absmax, nb * sizeof *absmax);
            static const size_t starts[] = {0, 2, 62, 64, 66, 130, 600};
            for (size_t j = 0; j < sizeof starts / sizeof *starts; j++) {
                size_t first = starts[j];
                for (size_t len = 2; first + len <= n; len = len * 3 + 2) {
                    piece[len / 2] = 0xa5;
                    assert_int_equal(quant4_pack(type, bs, DT_F32, x + first, first, len, n, absmax, piece, &e), 0);
                    assert_memory_equal(piece, packed + first / 2, len / 2);
                    assert_int_equal(piece[len / 2], 0xa5); /* nothing past the range */
                }
                size_t to_end = n - first; /* the range that ends the tensor (odd for 4097) */
                assert_int_equal(quant4_pack(type, bs, DT_F32, x + first, first, to_end, n, absmax, piece, &e), 0);
                assert_memory_equal(piece, packed + first / 2, (to_end + 1) / 2);
            }
            /* a range that starts or ends inside a byte is refused */
            assert_int_equal(quant4_pack(type, bs, DT_F32, x + 1, 1, 4, n, absmax, piece, &e), -1);
            assert_int_equal(quant4_pack(type, bs, DT_F32, x, 0, 3, n, absmax, piece, &e), -1);
            free(x), free(absmax), free(parts), free(packed), free(piece);
        }
}

static void test_zero_block_and_zero_input(void **state)
{
    float x[128] = {0};
    for (int i = 64; i < 128; i++)
        x[i] = (float)(i - 100) / 8.0f;
    x[3] = -0.0f;
    uint8_t packed[64];
    float absmax[2], out[128];
    errbuf e;
    for (int t = QUANT4_NF4; t <= QUANT4_FP4; t++) {
        assert_int_equal(quant4_quantize(t, 64, DT_F32, x, 128, packed, absmax, &e), 0);
        assert_true(same_bits(absmax[0], 0.0f)); /* stored as 0, not a clamped 1e-38 */
        uint8_t zero = (uint8_t)(t == QUANT4_NF4 ? 0x77 : 0x00);
        for (int i = 0; i < 32; i++)
            assert_int_equal(packed[i], zero);
        quant4_dequantize(t, 64, packed, absmax, 128, DT_F32, out);
        for (int i = 0; i < 64; i++)
            assert_true(out[i] == 0.0f);
        assert_true(same_bits(absmax[1], 36.0f / 8.0f));
    }
}

static void test_tiny_absmax_is_clamped_like_bitsandbytes(void **state)
{
    /* absmax 1e-40 < 1e-38: bitsandbytes scales by 1/1e-38, so x = absmax
     * scales to about 0.01 and gets a near-zero code, not 1.0 */
    float x[64] = {0};
    x[0] = 1e-40f;
    uint8_t packed[32];
    float absmax[1];
    errbuf e;
    assert_int_equal(quant4_quantize(QUANT4_NF4, 64, DT_F32, x, 64, packed, absmax, &e), 0);
    assert_true(same_bits(absmax[0], 1e-40f));
    assert_int_equal(packed[0] >> 4, 7); /* 0.01 is nearest 0.0, not 1.0 */
}

/* ------------------------------------------------------------ round trip */

static void test_round_trip_is_nearest_and_bounded(void **state)
{
    static const size_t blocksizes[] = {32, 64, 128, 256, 4096};
    const size_t n = 3 * 4096 + 5;
    float *x = malloc(n * sizeof *x), *out = malloc(n * sizeof *out);
    float *absmax = malloc(quant4_n_blocks(n, 32) * sizeof *absmax);
    uint8_t *packed = malloc(quant4_packed_bytes(n));
    for (size_t i = 0; i < n; i++)
        x[i] = 0.02f * normal() * (i % 1000 == 0 ? 30.0f : 1.0f); /* a few outliers */
    errbuf e;
    for (int t = QUANT4_NF4; t <= QUANT4_FP4; t++)
        for (size_t k = 0; k < sizeof blocksizes / sizeof *blocksizes; k++) {
            size_t bs = blocksizes[k];
            assert_int_equal(quant4_quantize(t, bs, DT_F32, x, n, packed, absmax, &e), 0);
            quant4_dequantize(t, bs, packed, absmax, n, DT_F32, out);
            check_nearest(t, x, out, absmax, n, bs);
        }
    free(x), free(out), free(absmax), free(packed);
}

static void test_bf16_and_f16_inputs_equal_their_fp32_values(void **state)
{
    enum { N = 256 };
    float x[N], xr[N], a1[4], a2[4];
    uint16_t h[N];
    uint8_t p1[N / 2], p2[N / 2];
    errbuf e;
    for (int d = DT_BF16; d <= DT_F16; d++) {
        for (int i = 0; i < N; i++)
            x[i] = normal() * 3.0f;
        storage_from_f32(d, x, h, N); /* round to the format, then widen: exact */
        storage_to_f32(d, h, xr, N);
        assert_int_equal(quant4_quantize(QUANT4_NF4, 64, d, h, N, p1, a1, &e), 0);
        assert_int_equal(quant4_quantize(QUANT4_NF4, 64, DT_F32, xr, N, p2, a2, &e), 0);
        assert_memory_equal(p1, p2, sizeof p1);
        assert_memory_equal(a1, a2, sizeof a1);
    }
}

static void test_dequantize_rounds_to_nearest_even_in_bf16_and_f16(void **state)
{
    /* code 15 (NF4 1.0) times absmax: the product is absmax itself */
    uint8_t packed[16];
    memset(packed, 0xff, sizeof packed);
    float absmax[1];
    uint16_t out[32];
    /* 1 + 2^-8 is halfway between bf16 1.0 and 1 + 2^-7: even -> 1.0 (0x3f80) */
    absmax[0] = 1.0f + 0x1p-8f;
    quant4_dequantize(QUANT4_NF4, 32, packed, absmax, 32, DT_BF16, out);
    assert_int_equal(out[0], 0x3f80);
    /* 1 + 2^-8 + 2^-9 is above halfway: up to 1 + 2^-7 (0x3f81) */
    absmax[0] = 1.0f + 0x1p-8f + 0x1p-9f;
    quant4_dequantize(QUANT4_NF4, 32, packed, absmax, 32, DT_BF16, out);
    assert_int_equal(out[31], 0x3f81);
    /* f16: 1 + 2^-11 is halfway between 1.0 (0x3c00) and 1 + 2^-10: even -> 0x3c00;
     * 1 + 3 * 2^-11 is halfway between 1 + 2^-10 and 1 + 2^-9: even -> 0x3c02 */
    absmax[0] = 1.0f + 0x1p-11f;
    quant4_dequantize(QUANT4_NF4, 32, packed, absmax, 32, DT_F16, out);
    assert_int_equal(out[0], 0x3c00);
    absmax[0] = 1.0f + 3 * 0x1p-11f;
    quant4_dequantize(QUANT4_NF4, 32, packed, absmax, 32, DT_F16, out);
    assert_int_equal(out[0], 0x3c02);
}

/* --------------------------------------------------------------- refusals */

static void test_refuses_bad_blocksize_format_and_nonfinite(void **state)
{
    float x[64] = {0}, absmax[2];
    uint8_t packed[32];
    errbuf e;
    static const size_t bad[] = {0, 16, 48, 96, 8192};
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
        assert_int_equal(quant4_quantize(QUANT4_NF4, bad[k], DT_F32, x, 64, packed, absmax, &e), -1);
        assert_non_null(strstr(e.msg, "blocksize"));
    }
    assert_int_equal(quant4_check_blocksize(32, &e), 0);
    assert_int_equal(quant4_check_blocksize(4096, &e), 0);
    assert_int_equal(quant4_quantize(QUANT4_NF4, 64, DT_NF4, x, 64, packed, absmax, &e), -1);
    assert_non_null(strstr(e.msg, "nf4"));
    x[37] = NAN;
    assert_int_equal(quant4_quantize(QUANT4_NF4, 32, DT_F32, x, 64, packed, absmax, &e), -1);
    assert_non_null(strstr(e.msg, "value 37 is not finite"));
    x[37] = 0.0f;
    x[50] = -INFINITY;
    assert_int_equal(quant4_quantize(QUANT4_FP4, 32, DT_F32, x, 64, packed, absmax, &e), -1);
    assert_non_null(strstr(e.msg, "value 50 is not finite"));
    assert_int_equal(quant4_type_from_name("nf4"), QUANT4_NF4);
    assert_int_equal(quant4_type_from_name("fp4"), QUANT4_FP4);
    assert_int_equal(quant4_type_from_name("int4"), -1);
}

/* ----------------------------------------------------------------- nested */

static void test_nested_state_and_round_trip(void **state)
{
    enum { NB = 300 }; /* one full group of 256 and a tail of 44 */
    float absmax[NB], back[NB], nabs[2], offset;
    uint8_t codes[NB];
    long double sum = 0;
    for (int i = 0; i < NB; i++) {
        absmax[i] = 0.05f + 0.01f * fabsf(normal());
        sum += absmax[i];
    }
    assert_int_equal(quant4_n_nested_blocks(NB), 2);
    quant4_nest(absmax, NB, &offset, codes, nabs);
    /* the mean, rounded once to fp32 (the long double sum is exact here) */
    assert_true(same_bits(offset, (float)(sum / NB)));
    for (int g = 0; g < 2; g++) {
        float m = 0.0f;
        for (int i = 256 * g; i < NB && i < 256 * (g + 1); i++)
            m = fmaxf(m, fabsf(absmax[i] - offset));
        assert_true(same_bits(nabs[g], m));
    }
    for (int i = 0; i < NB; i++) { /* nearest of the 256, brute force */
        double s = (double)(absmax[i] - offset) * (double)(1.0f / nabs[i / 256]);
        double err = fabs(s - quant4_dynamic_value(codes[i])), best = INFINITY;
        for (unsigned q = 0; q < 256; q++)
            best = fmin(best, fabs(s - quant4_dynamic_value(q)));
        assert_true(err <= best + 1e-7);
    }
    quant4_unnest(codes, nabs, offset, NB, back);
    for (int i = 0; i < NB; i++) {
        volatile float p = quant4_dynamic_value(codes[i]) * nabs[i / 256]; /* rounded */
        assert_true(same_bits(back[i], p + offset));
        /* the dynamic map's largest gap is 0.9 / 64 (its top decade) */
        assert_true(fabsf(back[i] - absmax[i]) <= nabs[i / 256] * 0.00704f + 1e-9f);
    }
}

static void test_nested_constant_absmax_is_exact(void **state)
{
    float absmax[7], back[7], nabs[1], offset;
    uint8_t codes[7];
    for (int i = 0; i < 7; i++)
        absmax[i] = 0.375f;
    quant4_nest(absmax, 7, &offset, codes, nabs);
    assert_true(same_bits(offset, 0.375f));
    assert_true(same_bits(nabs[0], 0.0f));
    for (int i = 0; i < 7; i++)
        assert_int_equal(codes[i], 127);
    quant4_unnest(codes, nabs, offset, 7, back);
    for (int i = 0; i < 7; i++)
        assert_true(same_bits(back[i], 0.375f));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nf4_values_are_the_published_table),
        cmocka_unit_test(test_fp4_values_decode_sign_exponent_mantissa),
        cmocka_unit_test(test_dynamic_map_is_sorted_symmetric_and_self_encoding),
        cmocka_unit_test(test_ties_go_to_the_lower_value),
        cmocka_unit_test(test_fp4_zeros_follow_bitsandbytes_cpu),
        cmocka_unit_test(test_scales_by_the_reciprocal_not_by_division),
        cmocka_unit_test(test_first_element_in_the_high_nibble_odd_tail_padded),
        cmocka_unit_test(test_odd_sizes_blocks_and_bounds),
        cmocka_unit_test(test_parts_equal_the_whole_tensor),
        cmocka_unit_test(test_zero_block_and_zero_input),
        cmocka_unit_test(test_tiny_absmax_is_clamped_like_bitsandbytes),
        cmocka_unit_test(test_round_trip_is_nearest_and_bounded),
        cmocka_unit_test(test_bf16_and_f16_inputs_equal_their_fp32_values),
        cmocka_unit_test(test_dequantize_rounds_to_nearest_even_in_bf16_and_f16),
        cmocka_unit_test(test_refuses_bad_blocksize_format_and_nonfinite),
        cmocka_unit_test(test_nested_state_and_round_trip),
        cmocka_unit_test(test_nested_constant_absmax_is_exact),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
