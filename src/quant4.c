/* quant4.c: bitsandbytes-compatible NF4 / FP4 blockwise quantization and the
 * nested 8-bit quantization of absmax (see quant4.h, doc/design.md).
 *
 * Code choice is a search over the values sorted ascending, comparing with
 * the fp32 midpoints (v[j] + v[j+1]) / 2: a scaled value gets the j with
 * exactly j midpoints below it.  That is torch.bucketize(s, midpoints), what
 * bitsandbytes' CPU quantize_4bit does, and it sends a value lying exactly
 * on a midpoint to the lower of the two values. */
#include "quant4.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* NF4 (QLoRA, create_normal_map(offset=0.9677083)), as bitsandbytes lists
 * it; already ascending, so a code is its rank. */
static const float NF4_VALUES[16] = {
    -1.0f, -0.6961928009986877f, -0.5250730514526367f, -0.39491748809814453f,
    -0.28444138169288635f, -0.18477343022823334f, -0.09105003625154495f, 0.0f,
    0.07958029955625534f, 0.16093020141124725f, 0.24611230194568634f, 0.33791524171829224f,
    0.44070982933044434f, 0.5626170039176941f, 0.7229568362236023f, 1.0f,
};

/* FP4: sign bit 8, then bitsandbytes' magnitudes 0, 0.0625, 8, 12, 4, 6, 2, 3
 * for bits 0..7, divided by their maximum 12 in fp32 (as get_4bit_type does).
 * Code 8 is -0: bitsandbytes' dequantize kernels give -0.0 for it. */
static const float FP4_VALUES[16] = {
    0.0f,  0.0625f / 12,  8.0f / 12,  1.0f,  4.0f / 12,  6.0f / 12,  2.0f / 12,  3.0f / 12,
    -0.0f, -0.0625f / 12, -8.0f / 12, -1.0f, -4.0f / 12, -6.0f / 12, -2.0f / 12, -3.0f / 12,
};
/* FP4 codes by ascending value.  The two zeros compare equal; this is the
 * order bitsandbytes' CPU kernel ranks them in (code 0 before code 8), so a
 * scaled value in (-0.0026, 0] gets code 0 and one in (0, 0.0026] code 8,
 * exactly as there (its CUDA kernel would choose by the sign instead). */
static const uint8_t FP4_BY_VALUE[16] = {11, 10, 13, 12, 15, 14, 9, 0, 8, 1, 6, 7, 4, 5, 2, 3};

/* create_dynamic_map(signed=True) of bitsandbytes 0.50.2, its 128 values
 * above zero (indices 128..255); the map is symmetric: index 127 is 0 and
 * index 126 - j is minus index 128 + j.  Checked bit for bit against
 * bitsandbytes by tests/quant/quant_bnb.py. */
static const float DYN_POSITIVE[128] = {
    0x1.27476ep-21f, 0x1.b43528p-19f, 0x1.040bfep-17f, 0x1.64840cp-16f, 0x1.6f0068p-15f, 0x1.15df66p-14f,
    0x1.743e96p-14f, 0x1.47ae16p-13f, 0x1.19ce0ap-12f, 0x1.8fc506p-12f, 0x1.02de02p-11f, 0x1.3dd982p-11f,
    0x1.78d5p-11f,   0x1.b3d07cp-11f, 0x1.eecbfep-11f, 0x1.4fdf3ap-10f, 0x1.e353f8p-10f, 0x1.3b645ap-9f,
    0x1.851eb8p-9f,  0x1.ced914p-9f,  0x1.0c49bap-8f,  0x1.3126e8p-8f,  0x1.56041ap-8f,  0x1.7ae148p-8f,
    0x1.9fbe76p-8f,  0x1.c49ba6p-8f,  0x1.e978d4p-8f,  0x1.072b02p-7f,  0x1.19999ap-7f,  0x1.2c083p-7f,
    0x1.3e76c8p-7f,  0x1.75c29p-7f,   0x1.d1eb86p-7f,  0x1.170a3ep-6f,  0x1.451ebap-6f,  0x1.733334p-6f,
    0x1.a147aep-6f,  0x1.cf5c2ap-6f,  0x1.fd70a4p-6f,  0x1.15c29p-5f,   0x1.2ccccep-5f,  0x1.43d70ap-5f,
    0x1.5ae146p-5f,  0x1.71eb86p-5f,  0x1.88f5c2p-5f,  0x1.ap-5f,       0x1.b70a3ep-5f,  0x1.ce147ap-5f,
    0x1.e51ebap-5f,  0x1.fc28f6p-5f,  0x1.09999ap-4f,  0x1.151ebap-4f,  0x1.20a3d6p-4f,  0x1.2c28f6p-4f,
    0x1.37ae14p-4f,  0x1.433334p-4f,  0x1.4eb854p-4f,  0x1.5a3d7p-4f,   0x1.65c29p-4f,   0x1.7147aep-4f,
    0x1.7ccccep-4f,  0x1.8851eep-4f,  0x1.93d70ap-4f,  0x1.b66668p-4f,  0x1.fp-4f,       0x1.14ccccp-3f,
    0x1.31999ap-3f,  0x1.4e6666p-3f,  0x1.6b3334p-3f,  0x1.88p-3f,      0x1.a4ccccp-3f,  0x1.c1999ap-3f,
    0x1.de6666p-3f,  0x1.fb3332p-3f,  0x1.0cp-2f,      0x1.1a6668p-2f,  0x1.28ccccp-2f,  0x1.373334p-2f,
    0x1.459998p-2f,  0x1.54p-2f,      0x1.626666p-2f,  0x1.70ccccp-2f,  0x1.7f3334p-2f,  0x1.8d9998p-2f,
    0x1.9cp-2f,      0x1.aa6666p-2f,  0x1.b8ccccp-2f,  0x1.c73334p-2f,  0x1.d59998p-2f,  0x1.e4p-2f,
    0x1.f26664p-2f,  0x1.006666p-1f,  0x1.079998p-1f,  0x1.0eccccp-1f,  0x1.16p-1f,      0x1.1d3334p-1f,
    0x1.246668p-1f,  0x1.2b999ap-1f,  0x1.32ccccp-1f,  0x1.3ap-1f,      0x1.413334p-1f,  0x1.486668p-1f,
    0x1.4f999ap-1f,  0x1.56ccccp-1f,  0x1.5ep-1f,      0x1.653334p-1f,  0x1.6c6668p-1f,  0x1.73999ap-1f,
    0x1.7accccp-1f,  0x1.82p-1f,      0x1.893334p-1f,  0x1.906666p-1f,  0x1.97999ap-1f,  0x1.9eccccp-1f,
    0x1.a6p-1f,      0x1.ad3334p-1f,  0x1.b46666p-1f,  0x1.bb999ap-1f,  0x1.c2ccccp-1f,  0x1.cap-1f,
    0x1.d13334p-1f,  0x1.d86666p-1f,  0x1.df999ap-1f,  0x1.e6ccccp-1f,  0x1.eep-1f,      0x1.f53334p-1f,
    0x1.fc6666p-1f,  0x1p+0f,
};

int quant4_type_from_name(const char *name)
{
    if (strcmp(name, "nf4") == 0)
        return QUANT4_NF4;
    if (strcmp(name, "fp4") == 0)
        return QUANT4_FP4;
    return -1;
}

const char *quant4_type_name(quant4_type t) { return t == QUANT4_FP4 ? "fp4" : "nf4"; }

int quant4_check_blocksize(size_t blocksize, errbuf *e)
{
    if (blocksize < QUANT4_MIN_BLOCKSIZE || blocksize > QUANT4_MAX_BLOCKSIZE ||
        (blocksize & (blocksize - 1)) != 0)
        return err_set(e, "4-bit blocksize %zu: expected a power of two from %d to %d", blocksize,
                       QUANT4_MIN_BLOCKSIZE, QUANT4_MAX_BLOCKSIZE);
    return 0;
}

size_t quant4_n_blocks(size_t n, size_t blocksize) { return (n + blocksize - 1) / blocksize; }
size_t quant4_packed_bytes(size_t n) { return (n + 1) / 2; }
size_t quant4_n_nested_blocks(size_t n_blocks)
{
    return (n_blocks + QUANT4_NESTED_BLOCKSIZE - 1) / QUANT4_NESTED_BLOCKSIZE;
}

float quant4_value(quant4_type t, unsigned c)
{
    return (t == QUANT4_FP4 ? FP4_VALUES : NF4_VALUES)[c & 15];
}

/* The value of rank j (ascending) of type t, and its code. */
static float sorted_value(quant4_type t, unsigned j)
{
    return t == QUANT4_FP4 ? FP4_VALUES[FP4_BY_VALUE[j]] : NF4_VALUES[j];
}

unsigned quant4_encode(quant4_type t, float s)
{
    unsigned lo = 0, hi = 15; /* the answer's rank: how many midpoints lie below s */
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        float midpoint = (sorted_value(t, mid) + sorted_value(t, mid + 1)) / 2.0f;
        if (midpoint < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return t == QUANT4_FP4 ? FP4_BY_VALUE[lo] : lo;
}

float quant4_dynamic_value(unsigned q)
{
    q &= 255;
    if (q >= 128)
        return DYN_POSITIVE[q - 128];
    return q == 127 ? 0.0f : -DYN_POSITIVE[126 - q];
}

unsigned quant4_dynamic_encode(float s)
{
    unsigned lo = 0, hi = 255;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        float midpoint = (quant4_dynamic_value(mid) + quant4_dynamic_value(mid + 1)) / 2.0f;
        if (midpoint < s)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* 1/absmax as bitsandbytes computes it: absmax clamped below at fp32(1e-38),
 * so an all-zero block scales by 1e38 and its zeros stay zeros. */
static float reciprocal_scale(float absmax)
{
    const float tiny = (float)1e-38; /* torch converts the double 1e-38 */
    return 1.0f / (absmax > tiny ? absmax : tiny);
}

static int check_source(size_t blocksize, storage_dtype d, errbuf *e)
{
    if (quant4_check_blocksize(blocksize, e) != 0)
        return -1;
    if (d != DT_F32 && d != DT_BF16 && d != DT_F16)
        return err_set(e, "4-bit quantization of %s values: expected f32, bf16 or f16",
                       storage_dtype_name(d));
    return 0;
}

int quant4_absmax(size_t blocksize, storage_dtype d, const void *x, size_t n, float *absmax, errbuf *e)
{
    if (check_source(blocksize, d, e) != 0)
        return -1;
    const size_t n_blocks = quant4_n_blocks(n, blocksize), elem = storage_bytes(d, 1);
    size_t bad = SIZE_MAX; /* lowest index of a value that is not finite */

#pragma omp parallel for schedule(static) reduction(min : bad)
    for (size_t b = 0; b < n_blocks; b++) {
        float v[QUANT4_MAX_BLOCKSIZE];
        const size_t start = b * blocksize, len = n - start < blocksize ? n - start : blocksize;
        storage_to_f32(d, (const unsigned char *)x + start * elem, v, len);
        float m = 0.0f;
        size_t i;
        for (i = 0; i < len && isfinite(v[i]); i++)
            m = fabsf(v[i]) > m ? fabsf(v[i]) : m;
        if (i < len)
            bad = start + i < bad ? start + i : bad;
        absmax[b] = m;
    }
    if (bad != SIZE_MAX)
        return err_set(e, "4-bit quantization: value %zu is not finite", bad);
    return 0;
}

int quant4_pack(quant4_type t, size_t blocksize, storage_dtype d, const void *x, size_t first, size_t len,
                size_t n, const float *absmax, uint8_t *packed, errbuf *e)
{
    if (check_source(blocksize, d, e) != 0)
        return -1;
    if (first % 2 != 0 || first + len > n || (len % 2 != 0 && first + len != n))
        return err_set(e, "4-bit packing of values [%zu, %zu) of %zu: not whole bytes", first, first + len, n);
    const size_t elem = storage_bytes(d, 1), end = first + len;
    const size_t b_first = first / blocksize, b_end = quant4_n_blocks(end, blocksize);
    const unsigned zero_code = quant4_encode(t, 0.0f);
    const unsigned char *src = x;

#pragma omp parallel for schedule(static)
    for (size_t b = b_first; b < b_end; b++) {
        float v[QUANT4_MAX_BLOCKSIZE];
        const size_t lo = b * blocksize > first ? b * blocksize : first;
        const size_t hi = (b + 1) * blocksize < end ? (b + 1) * blocksize : end;
        storage_to_f32(d, src + (lo - first) * elem, v, hi - lo);
        const float r = reciprocal_scale(absmax[b]);
        /* lo is even (first and blocksize are), so byte pairs never straddle blocks */
        for (size_t i = lo; i < hi; i += 2) {
            unsigned h = quant4_encode(t, v[i - lo] * r);
            unsigned l = i + 1 < hi ? quant4_encode(t, v[i + 1 - lo] * r) : zero_code;
            packed[(i - first) / 2] = (uint8_t)(h << 4 | l);
        }
    }
    return 0;
}

int quant4_quantize(quant4_type t, size_t blocksize, storage_dtype d, const void *x, size_t n,
                    uint8_t *packed, float *absmax, errbuf *e)
{
    if (quant4_absmax(blocksize, d, x, n, absmax, e) != 0)
        return -1;
    return quant4_pack(t, blocksize, d, x, 0, n, n, absmax, packed, e);
}

void quant4_dequantize(quant4_type t, size_t blocksize, const uint8_t *packed, const float *absmax,
                       size_t n, storage_dtype d, void *out)
{
    const size_t n_blocks = quant4_n_blocks(n, blocksize), elem = storage_bytes(d, 1);
#pragma omp parallel for schedule(static)
    for (size_t b = 0; b < n_blocks; b++) {
        float v[QUANT4_MAX_BLOCKSIZE];
        const size_t start = b * blocksize, len = n - start < blocksize ? n - start : blocksize;
        for (size_t i = 0; i < len; i++) {
            uint8_t byte = packed[(start + i) / 2];
            v[i] = quant4_value(t, i % 2 == 0 ? byte >> 4 : byte & 15) * absmax[b];
        }
        storage_from_f32(d, v, (unsigned char *)out + start * elem, len);
    }
}

float quant4_nested_offset(const float *absmax, size_t n_blocks)
{
    double sum = 0.0;
    for (size_t i = 0; i < n_blocks; i++)
        sum += absmax[i];
    return (float)(sum / (double)n_blocks);
}

void quant4_nest(const float *absmax, size_t n_blocks, float *offset, uint8_t *codes,
                 float *nested_absmax)
{
    const float o = quant4_nested_offset(absmax, n_blocks);
    const size_t n_groups = quant4_n_nested_blocks(n_blocks);
    *offset = o;
#pragma omp parallel for schedule(static)
    for (size_t g = 0; g < n_groups; g++) {
        const size_t start = g * QUANT4_NESTED_BLOCKSIZE,
                     len = n_blocks - start < QUANT4_NESTED_BLOCKSIZE ? n_blocks - start
                                                                      : QUANT4_NESTED_BLOCKSIZE;
        float m = 0.0f;
        for (size_t i = 0; i < len; i++) {
            float a = fabsf(absmax[start + i] - o);
            m = a > m ? a : m;
        }
        const float r = reciprocal_scale(m);
        for (size_t i = 0; i < len; i++)
            codes[start + i] = (uint8_t)quant4_dynamic_encode((absmax[start + i] - o) * r);
        nested_absmax[g] = m;
    }
}

/* GCC may fuse the product and the sum into one FMA (one rounding) where the
 * target has FMA; bitsandbytes rounds twice.  Clang fuses only within one
 * expression, and the two statements below are apart. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((optimize("fp-contract=off")))
#endif
void quant4_unnest(const uint8_t *codes, const float *nested_absmax, float offset, size_t n_blocks,
                   float *absmax)
{
    for (size_t i = 0; i < n_blocks; i++) {
        float scaled = quant4_dynamic_value(codes[i]) * nested_absmax[i / QUANT4_NESTED_BLOCKSIZE];
        absmax[i] = scaled + offset;
    }
}
