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

quant4_type weight4_type(storage_dtype d) { return d == DT_FP4 || d == DT_FP4_PLAIN ? QUANT4_FP4 : QUANT4_NF4; }
static int is_nested(storage_dtype d) { return d == DT_NF4 || d == DT_FP4; }

size_t weight4_bytes(storage_dtype d, size_t n)
{
    size_t blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE);
    if (is_nested(d))
        return quant4_packed_bytes(n) + blocks + 4 * quant4_n_nested_blocks(blocks) + 4;
    return quant4_packed_bytes(n) + 4 * blocks;
}

size_t weight4_state_bytes(storage_dtype d, size_t n) { return weight4_bytes(d, n) - quant4_packed_bytes(n); }

void weight4_encode_state(storage_dtype d, const float *absmax, size_t n_blocks, uint8_t *state)
{
    if (!n_blocks)
        return;
    if (!is_nested(d)) {
        memcpy(state, absmax, n_blocks * sizeof *absmax);
        return;
    }
    size_t groups = quant4_n_nested_blocks(n_blocks);
    float *nested = xmalloc(groups * sizeof *nested), offset;
    quant4_nest(absmax, n_blocks, &offset, state, nested);
    memcpy(state + n_blocks, nested, groups * sizeof *nested);
    memcpy(state + n_blocks + groups * sizeof *nested, &offset, sizeof offset);
    free(nested);
}

int weight4_quantize(storage_dtype d, storage_dtype src, const void *x, size_t n, uint8_t *out, errbuf *e)
{
    const size_t blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE), packed = quant4_packed_bytes(n);
    float *absmax = xmalloc((blocks ? blocks : 1) * sizeof *absmax);
    int rc = quant4_quantize(weight4_type(d), WEIGHT4_BLOCKSIZE, src, x, n, out, absmax, e);
    if (rc == 0)
        weight4_encode_state(d, absmax, blocks, out + packed);
    free(absmax);
    return rc;
}

void weight4_dequantize(storage_dtype d, const uint8_t *in, size_t n, float *out)
{
    const size_t blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE), packed = quant4_packed_bytes(n);
    const uint8_t *state = in + packed;
    const size_t groups = quant4_n_nested_blocks(blocks);
    float offset = 0.0f;
    if (is_nested(d) && blocks)
        memcpy(&offset, state + blocks + groups * sizeof(float), sizeof offset);
    /* One nested group (256 blocks) at a time, its absmax on the stack: this
     * runs on every gather of a unit, so it allocates nothing.  The state sits
     * at any byte offset: copied out to aligned floats. */
    for (size_t g = 0; g < groups; g++) {
        float absmax[QUANT4_NESTED_BLOCKSIZE];
        const size_t b0 = g * QUANT4_NESTED_BLOCKSIZE;
        const size_t nb = blocks - b0 < QUANT4_NESTED_BLOCKSIZE ? blocks - b0 : QUANT4_NESTED_BLOCKSIZE;
        if (is_nested(d)) {
            float nested_absmax;
            memcpy(&nested_absmax, state + blocks + g * sizeof(float), sizeof nested_absmax);
            quant4_unnest(state + b0, &nested_absmax, offset, nb, absmax);
        } else {
            memcpy(absmax, state + b0 * sizeof(float), nb * sizeof(float));
        }
        const size_t first = b0 * WEIGHT4_BLOCKSIZE, len = n - first < nb * WEIGHT4_BLOCKSIZE ? n - first
                                                                                            : nb * WEIGHT4_BLOCKSIZE;
        quant4_dequantize(weight4_type(d), WEIGHT4_BLOCKSIZE, in + first / 2, absmax, len, DT_F32, out + first);
    }
}
