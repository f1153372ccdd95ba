/* cuda_bf16.h of the CPU emulation of CUDA: bfloat16 as the flash-attention
 * kernels use it (conversions to and from float, round to nearest even). */
#ifndef SHARDTUNE_CUDA_EMU_BF16_H
#define SHARDTUNE_CUDA_EMU_BF16_H

#include <cstdint>
#include <cstring>

struct __nv_bfloat16 {
    unsigned short bits;
};

inline __nv_bfloat16 __float2bfloat16(float f)
{
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7f800000u) == 0x7f800000u)
        u |= (u & 0x7fffffu) ? 0x10000u : 0u; /* NaN stays NaN */
    else
        u += 0x7fffu + ((u >> 16) & 1u);
    __nv_bfloat16 b;
    b.bits = (unsigned short)(u >> 16);
    return b;
}

inline float __bfloat162float(__nv_bfloat16 b)
{
    uint32_t u = (uint32_t)b.bits << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
}

#endif
