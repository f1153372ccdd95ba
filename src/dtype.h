/* dtype.h: storage formats of frozen weights and their conversion to fp32.
 * Frozen weights stay in the format the model file has (f32, bf16, f16; NF4
 * later) inside the flat FSDP buffers and become fp32 only when a unit is
 * gathered for compute on the CPU backend. */
#ifndef SHARDTUNE_DTYPE_H
#define SHARDTUNE_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* The 4-bit formats are bitsandbytes' blockwise NF4 / FP4 (blocks of 64
 * values) of a linear layer's weight (QLoRA), with the absmax nested (8 bits
 * in blocks of 256: DT_NF4, DT_FP4) or fp32 (the _PLAIN ones); their byte
 * layout is in weight4.h, and to_f32 of a backend dequantizes them.  Plans
 * size linear weights as DT_NF4. */
typedef enum storage_dtype {
    DT_F32, DT_BF16, DT_F16, DT_NF4, DT_FP4, DT_NF4_PLAIN, DT_FP4_PLAIN, DT_N_STORAGE
} storage_dtype;

/* Bytes that n_elems values take in format d. */
size_t storage_bytes(storage_dtype d, size_t n_elems);
const char *storage_dtype_name(storage_dtype d);
/* n_elems little-endian values at `in` (any alignment) to fp32, exactly
 * (F32, BF16, F16; the 4-bit formats through weight4_dequantize). */
void storage_to_f32(storage_dtype d, const void *in, float *out, size_t n_elems);

/* The bf16 bits of the fp32 whose bits are u: nearest even, NaN kept a
 * (quiet) NaN, denormals kept; torch's conversion.  Branch-free, so that
 * loops over it vectorise.  The one rounding rule of every bf16 value. */
static inline uint16_t bf16_from_f32_bits(uint32_t u)
{
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16, nan = (u >> 16) | 0x40u;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

/* fp32 to format d (F32, BF16, F16), rounding to nearest even. */
void storage_from_f32(storage_dtype d, const float *in, void *out, size_t n_elems);

#endif
