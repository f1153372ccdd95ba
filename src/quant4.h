/* quant4.h: bitsandbytes' blockwise 4-bit quantization (NF4, FP4) and its
 * nested 8-bit quantization of the block scales, bit for bit, as the QLoRA
 * loading, sharding and compute code will call it.  The exact rules (ties,
 * zero blocks, the mean, the 8-bit code choice) are in doc/design.md,
 * "4-bit quantization".
 *
 * Layout, as bitsandbytes stores it: the tensor is flattened and cut into
 * blocks of `blocksize` values; block b has absmax[b] = max |x| (fp32); each
 * value becomes a 4-bit code, two per byte, the first value in the HIGH
 * nibble; an odd count pads the last low nibble with the code of zero.
 * Nested: the absmax array is stored as an fp32 offset (their mean) plus one
 * 8-bit code per block (bitsandbytes' signed dynamic map) and one fp32
 * nested_absmax per group of 256 blocks.
 *
 * Functions take whole tensors; a caller may pass a part that starts on a
 * block boundary (advance x / out by a multiple of blocksize, packed by half
 * of that, absmax by the block index). */
#ifndef SHARDTUNE_QUANT4_H
#define SHARDTUNE_QUANT4_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "log.h"

typedef enum quant4_type { QUANT4_NF4, QUANT4_FP4 } quant4_type;

enum {
    QUANT4_MIN_BLOCKSIZE = 32,
    QUANT4_MAX_BLOCKSIZE = 4096,
    QUANT4_DEFAULT_BLOCKSIZE = 64,
    QUANT4_NESTED_BLOCKSIZE = 256 /* blocks per nested_absmax */
};

/* "nf4" / "fp4" -> type; -1 for anything else. */
int quant4_type_from_name(const char *name);
const char *quant4_type_name(quant4_type t);
/* 0 for a power of two in 32..4096 (what bitsandbytes accepts), else -1
 * and e set. */
int quant4_check_blocksize(size_t blocksize, errbuf *e);

size_t quant4_n_blocks(size_t n, size_t blocksize);
size_t quant4_packed_bytes(size_t n);
size_t quant4_n_nested_blocks(size_t n_blocks);

/* The value code c (0..15) stands for, in units of absmax: NF4 is the QLoRA
 * table, FP4 bitsandbytes' 1-2-1 format divided by 12 (code 8 is -0). */
float quant4_value(quant4_type t, unsigned c);
/* The code of a scaled value s = x * (1/absmax): the nearest value, s on a
 * midpoint going to the lower value (see doc/design.md for FP4's zeros). */
unsigned quant4_encode(quant4_type t, float s);

/* bitsandbytes' create_dynamic_map(signed=True): 256 ascending values in
 * [-0.993, 1], index 127 is 0. */
float quant4_dynamic_value(unsigned q);
/* The nearest of the 256 values, a midpoint going to the lower one. */
unsigned quant4_dynamic_encode(float s);

/* Quantizes n values of format d (F32, BF16 or F16, little-endian, any
 * alignment) into packed[quant4_packed_bytes(n)] and
 * absmax[quant4_n_blocks(n, blocksize)].  -1 and e set for a bad blocksize
 * or format, or a value that is not finite (naming its index). */
int quant4_quantize(quant4_type t, size_t blocksize, storage_dtype d, const void *x, size_t n,
                    uint8_t *packed, float *absmax, errbuf *e);

/* The two halves of quant4_quantize, for a caller that holds only part of
 * a tensor (sharded loading: each rank the blocks it was given, then the
 * values behind its own packed bytes).
 * quant4_absmax: absmax[quant4_n_blocks(n, blocksize)] of n values (x starts
 * on a block boundary of the tensor); -1 and e set for a value that is not
 * finite (its index counted from x).
 * quant4_pack: the packed bytes of values [first, first + len) of a tensor
 * of n (x points at value first; first even, len even unless the range ends
 * the tensor), given the whole tensor's absmax; packed[0] is the byte of
 * value first.  The bytes equal quant4_quantize's. */
int quant4_absmax(size_t blocksize, storage_dtype d, const void *x, size_t n, float *absmax, errbuf *e);
int quant4_pack(quant4_type t, size_t blocksize, storage_dtype d, const void *x, size_t first, size_t len,
                size_t n, const float *absmax, uint8_t *packed, errbuf *e);

/* out[i] = fl32(value(code_i) * absmax[i / blocksize]), then rounded to
 * nearest even into format d (F32, BF16 or F16). */
void quant4_dequantize(quant4_type t, size_t blocksize, const uint8_t *packed, const float *absmax,
                       size_t n, storage_dtype d, void *out);

/* The nested offset: the mean of absmax[0..n_blocks), summed in double in
 * block order, divided by n_blocks in double, rounded once to fp32. */
float quant4_nested_offset(const float *absmax, size_t n_blocks);
/* Nested quantization of absmax (n_blocks >= 1, all finite):
 * *offset, codes[n_blocks], nested_absmax[quant4_n_nested_blocks(n_blocks)]. */
void quant4_nest(const float *absmax, size_t n_blocks, float *offset, uint8_t *codes,
                 float *nested_absmax);
/* absmax[i] = fl32(fl32(dynamic(codes[i]) * nested_absmax[i / 256]) + offset):
 * two roundings, never a fused multiply-add. */
void quant4_unnest(const uint8_t *codes, const float *nested_absmax, float offset, size_t n_blocks,
                   float *absmax);

#endif
