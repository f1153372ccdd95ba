/* dtype.c: exact widening of f16 / bf16 to fp32 (see dtype.h). */
#include "dtype.h"
#include "weight4.h"

#include <stdint.h>
#include <string.h>

size_t storage_bytes(storage_dtype d, size_t n_elems)
{
    switch (d) {
    case DT_F32: return 4 * n_elems;
    case DT_BF16:
    case DT_F16: return 2 * n_elems;
    default: return weight4_bytes(d, n_elems);
    }
}

const char *storage_dtype_name(storage_dtype d)
{
    static const char *const names[DT_N_STORAGE] = {"f32", "bf16", "f16", "nf4", "fp4", "nf4 (fp32 absmax)",
                                                           "fp4 (fp32 absmax)"};
    return names[d];
}

/* IEEE binary16 -> binary32, exact for every input: subnormals become
 * normal floats, inf stays inf, a NaN keeps its payload (quiet bit too). */
static float f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t bits;
    if (exp == 0x1f) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else if (exp != 0) {
        bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
    } else {
        float mag = (float)mant * 0x1p-24f; /* subnormal (or zero): exact in fp32 */
        memcpy(&bits, &mag, sizeof bits);
        bits |= sign;
    }
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

void storage_to_f32(storage_dtype d, const void *in, float *out, size_t n_elems)
{
    const unsigned char *p = in;
    switch (d) {
    case DT_F32:
        if (n_elems)
            memcpy(out, p, n_elems * sizeof *out); /* data may be unaligned */
        break;
    case DT_F16:
        for (size_t i = 0; i < n_elems; i++)
            out[i] = f16_to_f32((uint16_t)(p[2 * i] | (p[2 * i + 1] << 8)));
        break;
    case DT_BF16:
        /* bf16 is the top half of an fp32: shifting is exact, NaN included. */
        for (size_t i = 0; i < n_elems; i++) {
            uint32_t bits = (uint32_t)(p[2 * i] | (p[2 * i + 1] << 8)) << 16;
            memcpy(&out[i], &bits, sizeof bits);
        }
        break;
    default:
        weight4_dequantize(d, in, n_elems, out);
        break;
    }
}

void storage_from_f32(storage_dtype d, const float *in, void *out, size_t n_elems)
{
    unsigned char *p = out;
    for (size_t i = 0; i < n_elems; i++) {
        uint16_t h;
        if (d == DT_F32) {
            memcpy(p + 4 * i, &in[i], 4);
            continue;
        }
        if (d == DT_BF16) {
            uint32_t bits;
            memcpy(&bits, &in[i], 4);
            h = bf16_from_f32_bits(bits);
        } else {
            _Float16 x = (_Float16)in[i];
            memcpy(&h, &x, 2);
        }
        p[2 * i] = (unsigned char)(h & 0xff);
        p[2 * i + 1] = (unsigned char)(h >> 8);
    }
}
