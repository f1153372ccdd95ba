/* cuda_fp16.h of the CPU emulation of CUDA: the half type as the backend
 * uses it (widening stored fp16 weights). */
#ifndef SHARDTUNE_CUDA_EMU_FP16_H
#define SHARDTUNE_CUDA_EMU_FP16_H

#include <cmath>

struct __half {
    unsigned short bits;
};

inline __half __ushort_as_half(unsigned short bits)
{
    __half h;
    h.bits = bits;
    return h;
}

/* IEEE binary16 to binary32: sign, 5-bit exponent (bias 15), 10-bit
 * fraction; subnormals, infinities and NaN included. */
inline float __half2float(__half h)
{
    const int sign = h.bits >> 15, exponent = (h.bits >> 10) & 0x1f, fraction = h.bits & 0x3ff;
    float magnitude;
    if (exponent == 0)
        magnitude = std::ldexp((float)fraction, -24);
    else if (exponent == 31)
        magnitude = fraction ? NAN : INFINITY;
    else
        magnitude = std::ldexp((float)(fraction | 0x400), exponent - 25);
    return sign ? -magnitude : magnitude;
}

#endif
