/* weight4.h: a linear layer's weight kept as bitsandbytes 4-bit codes in a
 * unit's flat frozen buffer (QLoRA), and its widening to fp32 for compute.
 *
 * One tensor of n values (blocks of 64, bitsandbytes' and transformers'
 * only blocksize for 4-bit weights) is stored as, end to end:
 *   packed codes   (n + 1) / 2 bytes, first value in the high nibble
 *   then, nested:  absmax codes u8[n_blocks], nested_absmax f32[groups of
 *                  256 blocks], offset f32
 *   or otherwise:  absmax f32[n_blocks]
 * (f32 little-endian, at any alignment).  The bytes depend on the tensor
 * alone, never on the world size, so FSDP shards are byte ranges of a unit
 * and checkpoints and fingerprints stay comparable across world sizes.
 * storage_bytes(DT_NF4, n) in dtype.c is this size, which plans count. */
#ifndef SHARDTUNE_WEIGHT4_H
#define SHARDTUNE_WEIGHT4_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "log.h"
#include "quant4.h"

enum { WEIGHT4_BLOCKSIZE = QUANT4_DEFAULT_BLOCKSIZE };

/* The storage format of a 4-bit weight of type t, nested or not. */
storage_dtype weight4_dtype(quant4_type t, int nested);
/* True for the 4-bit formats (DT_NF4, DT_FP4, DT_NF4_PLAIN, DT_FP4_PLAIN). */
int weight4_is(storage_dtype d);
/* Its code type (NF4 or FP4). */
quant4_type weight4_type(storage_dtype d);
size_t weight4_bytes(storage_dtype d, size_t n);

/* Quantizes n values of format src (F32, BF16, F16) into out[weight4_bytes(d, n)],
 * bit for bit as bitsandbytes' quantize_4bit (src/quant4.c); -1 and e set
 * for a value that is not finite. */
int weight4_quantize(storage_dtype d, storage_dtype src, const void *x, size_t n, uint8_t *out, errbuf *e);
/* The block state's bytes (what follows the packed codes), and their
 * encoding from the fp32 absmax of all n_blocks blocks (nested: codes,
 * nested_absmax, offset; else the absmax), as weight4_quantize writes them. */
size_t weight4_state_bytes(storage_dtype d, size_t n);
void weight4_encode_state(storage_dtype d, const float *absmax, size_t n_blocks, uint8_t *state);
/* out[n] = fp32 of the stored weight: fl32(value[code] * absmax), absmax
 * unnested first when nested (bitsandbytes' dequantize_4bit with an fp32
 * compute dtype). */
void weight4_dequantize(storage_dtype d, const uint8_t *in, size_t n, float *out);

#endif
