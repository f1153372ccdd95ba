/* quant_dump.c: the C side of tests/quant/quant_bnb.sh, where bitsandbytes
 * and a NumPy re-implementation are the reference.
 *
 *   quant_dump IN.safetensors OUT.safetensors nf4|fp4 BLOCKSIZE
 *
 * Quantizes every F32 / BF16 / F16 tensor T of IN (flattened, from its own
 * format) and writes to OUT, per tensor:
 *   T.packed U8 [(n+1)/2]        T.absmax F32 [blocks]
 *   T.nested_codes U8 [blocks]   T.nested_absmax F32 [groups]   T.offset F32 [1]
 *   T.dq_f32 / T.dq_bf16 / T.dq_f16    dequantized from packed + absmax
 *   T.ndq_f32 / T.ndq_bf16             dequantized through the nested state
 * and the tables: table.nf4, table.fp4 (F32 [16], by code), table.dynamic
 * (F32 [256]).  Any failure: one line on stderr, exit status 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quant4.h"
#include "safetensors.h"

enum { MAX_BUFFERS = 4096 };
static void *buffers[MAX_BUFFERS]; /* the writer references them until written */
static size_t n_buffers;

static void *keep(size_t n_bytes)
{
    if (n_buffers == MAX_BUFFERS)
        die(EXIT_FAILURE_RUN, "quant_dump: too many tensors");
    return buffers[n_buffers++] = xcalloc(n_bytes ? n_bytes : 1, 1);
}

static void add(st_writer *w, const char *tensor, const char *suffix, st_dtype dt, size_t n,
                const void *data)
{
    char name[512];
    snprintf(name, sizeof name, "%s%s", tensor, suffix);
    int64_t shape[1] = {(int64_t)n};
    st_writer_add(w, name, dt, 1, shape, data);
}

static void dump_tensor(st_writer *w, const st_tensor *t, quant4_type type, size_t bs)
{
    storage_dtype d;
    switch (t->dtype) {
    case ST_F32: d = DT_F32; break;
    case ST_BF16: d = DT_BF16; break;
    case ST_F16: d = DT_F16; break;
    default: die(EXIT_FAILURE_RUN, "quant_dump: %s is %s, not a float tensor", t->name, st_dtype_name(t->dtype));
    }
    size_t n = t->n_elems, nb = quant4_n_blocks(n, bs), ng = quant4_n_nested_blocks(nb);
    uint8_t *packed = keep(quant4_packed_bytes(n)), *codes = keep(nb);
    float *absmax = keep(nb * 4), *nabs = keep(ng * 4), *offset = keep(4);
    float *back = keep(nb * 4), *dq = keep(n * 4), *ndq = keep(n * 4);
    void *dq_bf16 = keep(n * 2), *dq_f16 = keep(n * 2), *ndq_bf16 = keep(n * 2);
    errbuf e;
    if (quant4_quantize(type, bs, d, t->data, n, packed, absmax, &e) != 0)
        die(EXIT_FAILURE_RUN, "quant_dump: %s: %s", t->name, e.msg);
    quant4_nest(absmax, nb, offset, codes, nabs);
    quant4_unnest(codes, nabs, *offset, nb, back);
    quant4_dequantize(type, bs, packed, absmax, n, DT_F32, dq);
    quant4_dequantize(type, bs, packed, absmax, n, DT_BF16, dq_bf16);
    quant4_dequantize(type, bs, packed, absmax, n, DT_F16, dq_f16);
    quant4_dequantize(type, bs, packed, back, n, DT_F32, ndq);
    quant4_dequantize(type, bs, packed, back, n, DT_BF16, ndq_bf16);

    add(w, t->name, ".packed", ST_U8, quant4_packed_bytes(n), packed);
    add(w, t->name, ".absmax", ST_F32, nb, absmax);
    add(w, t->name, ".nested_codes", ST_U8, nb, codes);
    add(w, t->name, ".nested_absmax", ST_F32, ng, nabs);
    add(w, t->name, ".offset", ST_F32, 1, offset);
    add(w, t->name, ".dq_f32", ST_F32, n, dq);
    add(w, t->name, ".dq_bf16", ST_BF16, n, dq_bf16);
    add(w, t->name, ".dq_f16", ST_F16, n, dq_f16);
    add(w, t->name, ".ndq_f32", ST_F32, n, ndq);
    add(w, t->name, ".ndq_bf16", ST_BF16, n, ndq_bf16);
}

int main(int argc, char **argv)
{
    if (argc != 5)
        die(EXIT_USAGE, "usage: quant_dump IN.safetensors OUT.safetensors nf4|fp4 BLOCKSIZE");
    int type = quant4_type_from_name(argv[3]);
    if (type < 0)
        die(EXIT_USAGE, "quant_dump: unknown 4-bit type '%s'", argv[3]);
    char *end;
    size_t bs = strtoul(argv[4], &end, 10);
    errbuf e;
    if (*end != '\0' || quant4_check_blocksize(bs, &e) != 0)
        die(EXIT_USAGE, "quant_dump: %s", *end ? "blocksize is not a number" : e.msg);
    safetensors *st = safetensors_open(argv[1], &e);
    if (!st)
        die(EXIT_FAILURE_RUN, "%s", e.msg);

    st_writer *w = st_writer_new();
    for (size_t i = 0; i < safetensors_count(st); i++)
        dump_tensor(w, safetensors_at(st, i), (quant4_type)type, bs);

    float *nf4 = keep(16 * 4), *fp4 = keep(16 * 4), *dyn = keep(256 * 4);
    for (unsigned c = 0; c < 16; c++) {
        nf4[c] = quant4_value(QUANT4_NF4, c);
        fp4[c] = quant4_value(QUANT4_FP4, c);
    }
    for (unsigned q = 0; q < 256; q++)
        dyn[q] = quant4_dynamic_value(q);
    add(w, "table.nf4", "", ST_F32, 16, nf4);
    add(w, "table.fp4", "", ST_F32, 16, fp4);
    add(w, "table.dynamic", "", ST_F32, 256, dyn);

    if (st_writer_write(w, argv[2], &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    st_writer_free(w);
    safetensors_close(st);
    for (size_t i = 0; i < n_buffers; i++)
        free(buffers[i]);
    return 0;
}
