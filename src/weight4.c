/* weight4.c: 4-bit weight storage in a unit's flat buffer (see weight4.h). */
#include "weight4.h"

#include <stdlib.h>
#include <string.h>

storage_dtype weight4_dtype(quant4_type t, int nested)
{
    if (t == QUANT4_FP4)
        return nested ? DT_FP4 : DT_FP4_PLAIN;
    return nested ? DT_NF4 : DT_NF4_PLAIN;
}

int weight4_is(storage_dtype d) { return d == DT_NF4 || d == DT_FP4 || d == DT_NF4_PLAIN || d == DT_FP4_PLAIN; }

static quant4_type type_of(storage_dtype d) { return d == DT_FP4 || d == DT_FP4_PLAIN ? QUANT4_FP4 : QUANT4_NF4; }
static int is_nested(storage_dtype d) { return d == DT_NF4 || d == DT_FP4; }

size_t weight4_bytes(storage_dtype d, size_t n)
{
    size_t blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE);
    if (is_nested(d))
        return quant4_packed_bytes(n) + blocks + 4 * quant4_n_nested_blocks(blocks) + 4;
    return quant4_packed_bytes(n) + 4 * blocks;
}

int weight4_quantize(storage_dtype d, storage_dtype src, const void *x, size_t n, uint8_t *out, errbuf *e)
{
    const size_t blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE), packed = quant4_packed_bytes(n);
    float *absmax = xmalloc((blocks ? blocks : 1) * sizeof *absmax);
    int rc = quant4_quantize(type_of(d), WEIGHT4_BLOCKSIZE, src, x, n, out, absmax, e);
    if (rc == 0 && blocks && is_nested(d)) {
        size_t groups = quant4_n_nested_blocks(blocks);
        float *nested = xmalloc(groups * sizeof *nested), offset;
        quant4_nest(absmax, blocks, &offset, out + packed, nested);
        memcpy(out + packed + blocks, nested, groups * sizeof *nested);
        memcpy(out + packed + blocks + groups * sizeof *nested, &offset, sizeof offset);
        free(nested);
    } else if (rc == 0) {
        memcpy(out + packed, absmax, blocks * sizeof *absmax);
    }
    free(absmax);
    return rc;
}

void weight4_dequantize(storage_dtype d, const uint8_t *in, size_t n, float *out)
{
    const size_t blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE), packed = quant4_packed_bytes(n);
    if (!blocks)
        return;
    /* the state sits at any byte offset: copied out to aligned floats */
    float *absmax = xmalloc(blocks * sizeof *absmax);
    if (is_nested(d)) {
        size_t groups = quant4_n_nested_blocks(blocks);
        float *nested = xmalloc(groups * sizeof *nested), offset;
        memcpy(nested, in + packed + blocks, groups * sizeof *nested);
        memcpy(&offset, in + packed + blocks + groups * sizeof *nested, sizeof offset);
        quant4_unnest(in + packed, nested, offset, blocks, absmax);
        free(nested);
    } else {
        memcpy(absmax, in + packed, blocks * sizeof *absmax);
    }
    quant4_dequantize(type_of(d), WEIGHT4_BLOCKSIZE, in, absmax, n, DT_F32, out);
    free(absmax);
}
