/* weight4_bnb.h: a linear weight that transformers saved with bitsandbytes
 * 4-bit quantization (the "*-bnb-4bit" checkpoints), read as weight4.h's
 * layout without re-quantizing.
 *
 * Per quantized weight W (n values, shape [out, in]) the safetensors hold:
 *   W                     packed codes, (n + 1) / 2 bytes seen as U8, BF16,
 *                         F16 or F32 (bnb_4bit_quant_storage; shape [k, 1])
 *   W.absmax              U8 [blocks] with nested quantization, else F32
 *   W.nested_absmax       F32 [groups of 256 blocks]          (nested only)
 *   W.quant_map           F32 [16]: the code values
 *   W.nested_quant_map    F32 [256]: the signed dynamic map   (nested only)
 *   W.quant_state.bitsandbytes__nf4 (or __fp4)   U8: JSON with quant_type,
 *                         blocksize, dtype, shape and, nested, nested_blocksize,
 *                         nested_dtype, nested_offset
 * weight4's layout of W is then W, W.absmax, W.nested_absmax and the offset
 * end to end (or W and the F32 absmax): its pieces are these tensors' file
 * bytes, so a shard of the layout reads only its own bytes of them. */
#ifndef SHARDTUNE_WEIGHT4_BNB_H
#define SHARDTUNE_WEIGHT4_BNB_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "log.h"
#include "safetensors.h"

enum { WEIGHT4_BNB_MAX_PIECES = 4 };

typedef struct weight4_bnb {
    storage_dtype storage; /* DT_NF4, DT_FP4 (nested), DT_NF4_PLAIN, DT_FP4_PLAIN */
    /* weight4's layout of the tensor, piece by piece in order: the bytes of
     * a file tensor, or (t == NULL) the 4 bytes of offset_bytes */
    int n_pieces;
    struct {
        const st_tensor *t;
        size_t n_bytes;
    } pieces[WEIGHT4_BNB_MAX_PIECES];
    uint8_t offset_bytes[4]; /* the nested offset, f32 little-endian */
} weight4_bnb;

/* Looks W = name (its shape [out, in]) up in st.  1 when st holds it as a
 * bitsandbytes 4-bit weight (a quant_state tensor exists) and w describes
 * it; 0 when it has no quant_state (a plain tensor); -1 and e set, naming the
 * file and the tensor, when its tensors or quant_state do not describe the
 * weight (malformed JSON, unknown quant_type, a blocksize other than 64, a
 * shape or byte count that does not match, a code table that is not
 * bitsandbytes'). */
int weight4_bnb_find(const safetensors *st, const char *name, const int64_t shape[2], weight4_bnb *w,
                     errbuf *e);

#endif
