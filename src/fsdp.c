/* fsdp.c: shards, gathers, releases, reduce-scatters (see fsdp.h).
 *
 * States of a unit's full buffers: RELEASED (only the shard exists),
 * GATHERING (an all-gather is in flight), READY (frozen weights in their
 * compute formats and the trainable tensors are bound to the model for
 * compute).  A unit of a
 * one-rank shard group is READY for good: its shard is the full buffer. */
#include "fsdp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "checksum.h"
#include "peft_adapter.h"
#include "safetensors.h"
#include "weight4.h"
#include "weight4_bnb.h"

enum { STORAGE_ALIGN_BYTES = 64, TRAIN_ALIGN_ELEMS = 16 };
enum unit_state { RELEASED, GATHERING, READY };

struct fsdp_unit {
    size_t storage_shard_bytes;  /* per rank; x shard_size covers n_storage_bytes */
    size_t train_shard_elems;
    uint8_t *storage_shard;
    float *train_shard, *grad_shard;
    /* gathered */
    enum unit_state state;
    int persistent;
    uint8_t *storage_full;
    uint8_t *frozen;         /* separate only when storage is not the frozen buffer as it is */
    float *train_full;
    comm_request *gather_storage, *gather_train;
    /* gradient reduction in flight */
    float *grad_full, *grad_recv;
    comm_request *reduce;
};

static size_t round_up(size_t n, size_t k) { return (n + k - 1) / k * k; }

comm_layout fsdp_comm_layout(fsdp_strategy s)
{
    switch (s) {
    case FSDP_NO_SHARD: return COMM_SHARD_NONE;
    case FSDP_HYBRID_SHARD: return COMM_SHARD_NODE;
    default: return COMM_SHARD_WORLD;
    }
}

/* ------------------------------------------------------------------ */
/* layout and allocation                                               */

void fsdp_init(fsdp *f, model *m, backend *be, comm *cm, const accel_config *opt)
{
    memset(f, 0, sizeof *f);
    f->m = m, f->be = be, f->cm = cm, f->opt = *opt;
    f->shard_size = cm->size[COMM_SHARD];
    f->shard_index = cm->rank[COMM_SHARD];
    f->replica_size = cm->size[COMM_REPLICA];
    f->units = xcalloc((size_t)m->n_units, sizeof *f->units);
    f->n_ranges = m->n_units;
    f->param_shards = xcalloc((size_t)m->n_units, sizeof *f->param_shards);
    f->grad_shards = xcalloc((size_t)m->n_units, sizeof *f->grad_shards);
    f->shard_elems = xcalloc((size_t)m->n_units, sizeof *f->shard_elems);
    const size_t S = (size_t)f->shard_size;
    /* fsdp_offload_params: the shards live in host memory */
    void *(*shard_alloc)(backend *, size_t, mem_category) = opt->offload_params ? be->alloc_host : be->alloc;
    for (int ui = 0; ui < m->n_units; ui++) {
        model_unit *mu = &m->units[ui];
        fsdp_unit *u = &f->units[ui];
        /* A one-rank shard group binds its units once, for good, where that
         * takes at most an eighth more memory than the storage: the storage
         * itself when it is the frozen buffer already, else a converted copy
         * that replaces it (fp32 files under bf16 weights: half the bytes; a
         * bf16 model's layers under bf16 weights: only the norms widen).
         * Units whose big tensors widen (a bf16 model under fp32 weights)
         * stay as stored and are converted unit by unit when used, as when
         * sharded: an fp32 copy of a bf16 model would double its memory. */
        u->persistent = S == 1 && mu->n_frozen_bytes <= mu->n_storage_bytes + mu->n_storage_bytes / 8;
        u->storage_shard_bytes = round_up(mu->n_storage_bytes, S * STORAGE_ALIGN_BYTES) / S;
        u->train_shard_elems = round_up(mu->n_train_elems, S * TRAIN_ALIGN_ELEMS) / S;
        u->storage_shard = shard_alloc(be, u->storage_shard_bytes, MEM_FROZEN);
        if (mu->n_train_elems) {
            u->train_shard = shard_alloc(be, u->train_shard_elems * sizeof(float), MEM_TRAINABLE);
            u->grad_shard = shard_alloc(be, u->train_shard_elems * sizeof(float), MEM_GRADS);
            f->param_shards[ui] = u->train_shard;
            f->grad_shards[ui] = u->grad_shard;
            f->shard_elems[ui] = u->train_shard_elems;
        }
    }
}

/* Converts gathered storage into the frozen buffer's formats: fp32, or
 * bf16 for the linear weights of a backend that multiplies bf16. */
static void materialize(fsdp *f, int ui, const uint8_t *storage, uint8_t *out)
{
    const model_unit *mu = &f->m->units[ui];
    backend *be = f->be;
    for (int i = 0; i < mu->n_params; i++) {
        const param_entry *p = &mu->params[i];
        if (p->trainable)
            continue;
        if (p->compute == DT_BF16) /* rows widened by fused_r: room for the adapter */
            be->to_bf16(be, (uint16_t *)(out + p->offset), param_frozen_ld(p),
                        storage + p->storage_offset, p->storage, (size_t)p->shape[0], (size_t)p->shape[1]);
        else
            be->to_f32(be, (float *)(out + p->offset), storage + p->storage_offset, p->storage, p->n_elems);
    }
}

/* Binds the frozen weights from full storage bytes: the bytes themselves
 * when they are the frozen buffer already, else a converted copy (in
 * category cat), the storage then freed, as nothing reads it again. */
static void bind_frozen(fsdp *f, int ui, uint8_t **storage, mem_category cat)
{
    model_unit *mu = &f->m->units[ui];
    fsdp_unit *u = &f->units[ui];
    if (model_unit_storage_is_compute(mu)) {
        mu->frozen = *storage;
        return;
    }
    u->frozen = f->be->alloc(f->be, mu->n_frozen_bytes, cat);
    materialize(f, ui, *storage, u->frozen);
    f->be->free(f->be, *storage);
    *storage = NULL;
    mu->frozen = u->frozen;
}

/* A one-rank shard group's unit: bound once, its storage shard then the
 * frozen buffer or replaced by it (freed: only loading reads it). */
static void bind_persistent(fsdp *f, int ui)
{
    model_unit *mu = &f->m->units[ui];
    fsdp_unit *u = &f->units[ui];
    bind_frozen(f, ui, &u->storage_shard, MEM_FROZEN);
    mu->train = u->train_shard;
    mu->grad = u->grad_shard;
    u->state = READY;
    model_bind_unit(f->m, ui);
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

/* Reads byte ranges of the safetensors files with pread, one open file at a
 * time: only the bytes asked for are read, and no file page is mapped into
 * the process (a memcpy out of the mmap would count the pages as resident). */
typedef struct range_reader {
    const char *path;
    int fd;
    size_t bytes_read; /* by this rank, logged after loading */
} range_reader;

static int read_range(range_reader *rr, const char *path, size_t offset, void *dst, size_t n_bytes, errbuf *e)
{
    if (!rr->path || strcmp(rr->path, path) != 0) {
        if (rr->fd >= 0)
            close(rr->fd);
        rr->fd = open(path, O_RDONLY);
        rr->path = path;
        if (rr->fd < 0)
            return err_set(e, "%s: cannot open: %s", path, strerror(errno));
    }
    uint8_t *p = dst;
    while (n_bytes) {
        ssize_t got = pread(rr->fd, p, n_bytes, (off_t)offset);
        if (got <= 0)
            return err_set(e, "%s: read failed at byte %zu: %s", path, offset, got < 0 ? strerror(errno) : "end of file");
        p += got, offset += (size_t)got, n_bytes -= (size_t)got;
        rr->bytes_read += (size_t)got;
    }
    return 0;
}

/* Bytes [a, b) of the 4-bit layout of p, which the file holds as
 * bitsandbytes saved it: the layout's pieces are the file tensors' bytes. */
static int read_prequantized(const param_entry *p, const safetensors *st, range_reader *rr, size_t a, size_t b,
                             uint8_t *dst, errbuf *e)
{
    weight4_bnb w;
    int found = weight4_bnb_find(st, p->name, p->shape, &w, e);
    if (found != 1)
        return found < 0 ? -1 : err_set(e, "tensor '%s' changed since the model was opened", p->name);
    size_t at = 0;
    for (int k = 0; k < w.n_pieces && at < b; at += w.pieces[k].n_bytes, k++) {
        size_t pa = a > at ? a : at, pb = b < at + w.pieces[k].n_bytes ? b : at + w.pieces[k].n_bytes;
        const st_tensor *t = w.pieces[k].t;
        if (pa >= pb)
            continue;
        if (!t)
            memcpy(dst + (pa - a), w.offset_bytes + (pa - at), pb - pa);
        else if (read_range(rr, t->file_path, t->file_offset + (pa - at), dst + (pa - a), pb - pa, e) != 0)
            return -1;
    }
    return 0;
}

/* Reads the part [lo, hi) of unit ui's storage layout that its tensors
 * cover into dst (dst[0] is byte lo); 4-bit weights quantized on load are
 * left to quantize_range. */
static int read_storage_range(const model *m, int ui, const safetensors *st, range_reader *rr, size_t lo, size_t hi,
                              uint8_t *dst, errbuf *e)
{
    const model_unit *mu = &m->units[ui];
    for (int i = 0; i < mu->n_params; i++) {
        const param_entry *p = &mu->params[i];
        if (p->trainable)
            continue;
        size_t t_lo = p->storage_offset, t_hi = t_lo + storage_bytes(p->storage, p->n_elems);
        size_t a = t_lo > lo ? t_lo : lo, b = t_hi < hi ? t_hi : hi;
        if (a >= b || (weight4_is(p->storage) && !p->prequantized))
            continue;
        if (p->prequantized) {
            if (read_prequantized(p, st, rr, a - t_lo, b - t_lo, dst + (a - lo), e) != 0)
                return -1;
            continue;
        }
        const st_tensor *t = safetensors_find(st, p->name);
        if (!t || t->n_bytes != t_hi - t_lo)
            return err_set(e, "tensor '%s' changed since the model was opened", p->name);
        if (read_range(rr, t->file_path, t->file_offset + (a - t_lo), dst + (a - lo), b - a, e) != 0)
            return -1;
    }
    return 0;
}

/* A host copy of unit ui's storage shard (device memory is not host
 * readable on every backend). */
static uint8_t *shard_to_host(const fsdp *f, int ui)
{
    const fsdp_unit *u = &f->units[ui];
    uint8_t *host = xmalloc(u->storage_shard_bytes);
    f->be->copy_to_host(f->be, host, u->storage_shard, u->storage_shard_bytes);
    return host;
}

/* fsdp_sync_module_states: every rank read the same tensor table, and the
 * ranks holding the same shard hold the same bytes. */
static int check_module_states(fsdp *f, errbuf *e)
{
    const model *m = f->m;
    uint64_t table = CHECKSUM_FNV1A_BASIS, bytes = CHECKSUM_FNV1A_BASIS;
    for (int ui = 0; ui < m->n_units; ui++) {
        const model_unit *mu = &m->units[ui];
        for (int i = 0; i < mu->n_params; i++) {
            const param_entry *p = &mu->params[i];
            table = checksum_fnv1a(table, p->name, strlen(p->name));
            table = checksum_fnv1a(table, p->shape, sizeof p->shape);
            table = checksum_fnv1a(table, &p->storage, sizeof p->storage);
        }
        uint8_t *host = shard_to_host(f, ui);
        bytes = checksum_fnv1a(bytes, host, f->units[ui].storage_shard_bytes);
        free(host);
    }
    int world = f->cm->size[COMM_WORLD];
    uint64_t mine[3] = {table, bytes, (uint64_t)f->shard_index};
    uint64_t *all = xmalloc((size_t)world * sizeof mine);
    f->cm->all_gather(f->cm, COMM_WORLD, mine, all, sizeof mine, 0);
    int rc = 0;
    for (int r = 0; r < world && rc == 0; r++) {
        if (all[3 * r] != table)
            rc = err_set(e, "fsdp_sync_module_states: rank %d read a different model (tensor table differs)", r);
        else if (all[3 * r + 2] == (uint64_t)f->shard_index && all[3 * r + 1] != bytes)
            rc = err_set(e, "fsdp_sync_module_states: ranks %d and %d hold different bytes for shard %d", r,
                         f->cm->rank[COMM_WORLD], f->shard_index);
    }
    free(all);
    return rc;
}

/* A unit with a resized or adapter-supplied tensor is assembled whole:
 * the new vocabulary rows are the mean of the source's rows. */
static int needs_assembly(const model_unit *mu)
{
    for (int i = 0; i < mu->n_params; i++)
        if (!mu->params[i].trainable && (mu->params[i].from_adapter || mu->params[i].rows_in_file < mu->params[i].shape[0]))
            return 1;
    return 0;
}

/* A unit whose 4-bit weights are quantized from 16- or 32-bit values on load. */
static int quantizes_on_load(const model_unit *mu)
{
    for (int i = 0; i < mu->n_params; i++)
        if (!mu->params[i].trainable && weight4_is(mu->params[i].storage) && !mu->params[i].prequantized)
            return 1;
    return 0;
}

/* The file's values of a 4-bit weight quantized on load: their format. */
static int source_of(const param_entry *p, const safetensors *st, const st_tensor **t, storage_dtype *src, errbuf *e)
{
    *t = safetensors_find(st, p->name);
    *src = !*t ? DT_F32 : (*t)->dtype == ST_F32 ? DT_F32 : (*t)->dtype == ST_BF16 ? DT_BF16 : DT_F16;
    if (!*t || ((*t)->dtype != ST_F32 && (*t)->dtype != ST_BF16 && (*t)->dtype != ST_F16) ||
        (*t)->n_bytes != storage_bytes(*src, p->n_elems))
        return err_set(e, "tensor '%s' changed since the model was opened", p->name);
    return 0;
}

/* A 4-bit weight: its 16- or 32-bit values in the file, quantized whole into out. */
static int quantize_tensor(const param_entry *p, const safetensors *st, range_reader *rr, uint8_t *out, errbuf *e)
{
    const st_tensor *t;
    storage_dtype src;
    if (source_of(p, st, &t, &src, e) != 0)
        return -1;
    uint8_t *values = xmalloc(t->n_bytes);
    errbuf qe;
    int rc = read_range(rr, t->file_path, t->file_offset, values, t->n_bytes, e);
    if (rc == 0 && weight4_quantize(p->storage, src, values, p->n_elems, out, &qe) != 0)
        rc = err_set(e, "%s: %s", p->name, qe.msg);
    free(values);
    return rc;
}

/* Values read and quantized at a time when a rank quantizes its part of a
 * tensor: a multiple of the blocksize, so that memory stays this small. */
enum { QUANT_CHUNK_VALUES = 64 * 1024 };

/* Bytes [at, at + len) of unit ui's layout, inside this rank's shard, onto
 * the shard. */
static void put_shard(fsdp *f, int ui, size_t at, const uint8_t *bytes, size_t len)
{
    fsdp_unit *u = &f->units[ui];
    f->be->copy_to_device(f->be, u->storage_shard + (at - (size_t)f->shard_index * u->storage_shard_bytes), bytes, len);
}

/* The index of the first value of x[n] (format d) that is not finite. */
static size_t first_not_finite(storage_dtype d, const uint8_t *x, size_t n)
{
    size_t i = 0, elem = storage_bytes(d, 1);
    for (float v = 0.0f; i < n; i++) {
        storage_to_f32(d, x + i * elem, &v, 1);
        if (!isfinite(v))
            break;
    }
    return i;
}

/* The packed codes of 4-bit weight p in bytes [a, b) of its layout (a
 * part of this rank's shard, a < b <= its packed bytes): the values of the
 * blocks those bytes touch are read a chunk at a time, each block's absmax
 * computed (a code depends on its own block's absmax only), and the codes
 * packed onto the shard.  absmax[block] gets every block computed.
 * Returns 0, 1 + the index of a value that is not finite, or UINT64_MAX
 * with e set. */
static uint64_t pack_range(fsdp *f, int ui, const param_entry *p, const st_tensor *t, storage_dtype src,
                           range_reader *rr, size_t a, size_t b, float *absmax, errbuf *e)
{
    const size_t n = p->n_elems, elem = storage_bytes(src, 1), v_end = 2 * b < n ? 2 * b : n;
    uint8_t *chunk = xmalloc(QUANT_CHUNK_VALUES * elem), *codes = xmalloc(QUANT_CHUNK_VALUES / 2);
    uint64_t status = 0;
    /* whole blocks from the one holding value 2a */
    for (size_t v = 2 * a / WEIGHT4_BLOCKSIZE * WEIGHT4_BLOCKSIZE; v < v_end && !status; v += QUANT_CHUNK_VALUES) {
        const size_t blk_end = quant4_n_blocks(v + QUANT_CHUNK_VALUES < v_end ? v + QUANT_CHUNK_VALUES : v_end,
                                               WEIGHT4_BLOCKSIZE) * WEIGHT4_BLOCKSIZE;
        const size_t len = (blk_end < n ? blk_end : n) - v;
        const size_t first = v > 2 * a ? v : 2 * a, last = v + len < v_end ? v + len : v_end; /* to pack */
        errbuf qe;
        if (read_range(rr, t->file_path, t->file_offset + v * elem, chunk, len * elem, e) != 0)
            status = UINT64_MAX;
        else if (quant4_absmax(WEIGHT4_BLOCKSIZE, src, chunk, len, absmax + v / WEIGHT4_BLOCKSIZE, &qe) != 0)
            status = 1 + v + first_not_finite(src, chunk, len);
        else if (quant4_pack(weight4_type(p->storage), WEIGHT4_BLOCKSIZE, src, chunk + (first - v) * elem, first,
                             last - first, n, absmax, codes, &qe) != 0)
            status = UINT64_MAX, err_set(e, "%s: %s", p->name, qe.msg);
        else
            put_shard(f, ui, p->storage_offset + first / 2, codes, (last - first + 1) / 2);
    }
    free(chunk);
    free(codes);
    return status;
}

/* Quantizes the part of 4-bit weight p (of unit ui) that this rank's shard
 * holds onto the shard, reading only the values behind its packed bytes
 * (whole blocks), a chunk at a time.  The block state needs every block's
 * absmax: each block's is contributed by the rank holding its first packed
 * byte, summed over the shard group (with zeros elsewhere: exact), and
 * every rank derives the same state from all of them, so the bytes are
 * those of weight4_quantize on the whole tensor at any world size.
 * Collective over the shard group: every rank calls it for every such
 * weight, in the same order. */
static int quantize_range(fsdp *f, int ui, const param_entry *p, const safetensors *st, range_reader *rr, errbuf *e)
{
    const fsdp_unit *u = &f->units[ui];
    const size_t lo = (size_t)f->shard_index * u->storage_shard_bytes, hi = lo + u->storage_shard_bytes;
    const size_t n = p->n_elems, blocks = quant4_n_blocks(n, WEIGHT4_BLOCKSIZE), S = (size_t)f->shard_size;
    const size_t packed = quant4_packed_bytes(n), t_lo = p->storage_offset, t_hi = t_lo + weight4_bytes(p->storage, n);
    const size_t block_bytes = WEIGHT4_BLOCKSIZE / 2;
    float *absmax = xcalloc(blocks, sizeof *absmax);
    uint64_t status = 0, *statuses = xcalloc(S, sizeof *statuses);
    const st_tensor *t;
    storage_dtype src;
    /* this rank's packed bytes [a, b) of the tensor */
    size_t a = lo > t_lo ? lo - t_lo : 0, b = hi - t_lo < packed ? hi - t_lo : packed;
    if (source_of(p, st, &t, &src, e) != 0)
        status = UINT64_MAX;
    else if (hi > t_lo && lo < t_lo + packed)
        status = pack_range(f, ui, p, t, src, rr, a, b, absmax, e);
    /* keep only the blocks whose first packed byte is this rank's */
    for (size_t k = 0; k < blocks; k++)
        if (!(hi > t_lo && k * block_bytes >= a && k * block_bytes < b))
            absmax[k] = 0.0f;
    f->cm->all_gather(f->cm, COMM_SHARD, &status, statuses, sizeof status, 0);
    int rc = 0;
    for (size_t r = 0; r < S && rc == 0; r++)
        if (statuses[r] == UINT64_MAX)
            rc = (int)r == f->shard_index ? -1 : err_set(e, "%s: rank %zu of the shard group could not read it", p->name, r);
        else if (statuses[r])
            rc = err_set(e, "%s: 4-bit quantization: value %llu is not finite", p->name,
                         (unsigned long long)(statuses[r] - 1));
    if (rc == 0)
        f->cm->all_reduce(f->cm, COMM_SHARD, absmax, blocks, COMM_F32, 0);
    /* the block state: every rank encodes it from all blocks, keeps its bytes */
    a = t_lo + packed > lo ? t_lo + packed : lo, b = t_hi < hi ? t_hi : hi;
    if (rc == 0 && a < b) {
        uint8_t *state = xmalloc(weight4_state_bytes(p->storage, n));
        weight4_encode_state(p->storage, absmax, blocks, state);
        put_shard(f, ui, a, state + (a - t_lo - packed), b - a);
        free(state);
    }
    free(absmax);
    free(statuses);
    return rc;
}

/* Host memory a rank stages its shard's file bytes through. */
enum { STAGE_BYTES = 1 << 20 };

/* cpu_ram_efficient_loading: this rank's shard of unit ui, its byte ranges
 * read from the files through a bounded staging buffer, then its 4-bit
 * weights quantized on load (collective over the shard group, see
 * quantize_range).  No rank holds more of a unit than its shard. */
static int load_shard(fsdp *f, int ui, const safetensors *st, range_reader *rr, errbuf *e)
{
    const model_unit *mu = &f->m->units[ui];
    fsdp_unit *u = &f->units[ui];
    const size_t lo = (size_t)f->shard_index * u->storage_shard_bytes, n = u->storage_shard_bytes;
    uint8_t *stage = xmalloc(n < STAGE_BYTES ? n : STAGE_BYTES);
    int rc = 0;
    for (size_t at = 0; at < n && rc == 0; at += STAGE_BYTES) {
        size_t len = n - at < STAGE_BYTES ? n - at : STAGE_BYTES;
        memset(stage, 0, len); /* padding, and what quantize_range fills */
        rc = read_storage_range(f->m, ui, st, rr, lo + at, lo + at + len, stage, e);
        if (rc == 0)
            f->be->copy_to_device(f->be, u->storage_shard + at, stage, len);
    }
    free(stage);
    for (int i = 0; i < mu->n_params && rc == 0; i++) {
        const param_entry *p = &mu->params[i];
        if (!p->trainable && weight4_is(p->storage) && !p->prequantized)
            rc = quantize_range(f, ui, p, st, rr, e);
    }
    return rc;
}

static int assemble_unit(const model *m, int ui, const safetensors *st, const safetensors *adapter, range_reader *rr,
                         uint8_t *dst, errbuf *e)
{
    const model_unit *mu = &m->units[ui];
    for (int i = 0; i < mu->n_params; i++) {
        const param_entry *p = &mu->params[i];
        if (p->trainable)
            continue;
        size_t cols = p->n_dims > 1 ? (size_t)p->shape[1] : 1;
        size_t file_bytes = storage_bytes(p->storage, (size_t)p->rows_in_file * cols);
        uint8_t *out = dst + p->storage_offset;
        const st_tensor *t = p->from_adapter ? safetensors_find(adapter, model_embedding_peft_key(p))
                                             : safetensors_find(st, p->name);
        if (p->prequantized) {
            if (read_prequantized(p, st, rr, 0, storage_bytes(p->storage, p->n_elems), out, e) != 0)
                return -1;
            continue;
        }
        if (weight4_is(p->storage)) {
            if (quantize_tensor(p, st, rr, out, e) != 0)
                return -1;
            continue;
        }
        if (!t || t->n_bytes != file_bytes)
            return err_set(e, "tensor '%s' changed since the model was opened", p->name);
        if (p->from_adapter)
            memcpy(out, t->data, file_bytes);
        else if (read_range(rr, t->file_path, t->file_offset, out, file_bytes, e) != 0)
            return -1;
        if (p->rows_in_file >= p->shape[0])
            continue;
        /* transformers' resize_token_embeddings: new rows = mean of the old */
        double *acc = xcalloc(cols, sizeof *acc);
        float *row = xmalloc(cols * sizeof *row);
        size_t row_bytes = storage_bytes(p->storage, cols);
        for (int64_t r = 0; r < p->rows_in_file; r++) {
            storage_to_f32(p->storage, out + (size_t)r * row_bytes, row, cols);
            for (size_t j = 0; j < cols; j++)
                acc[j] += row[j];
        }
        for (size_t j = 0; j < cols; j++)
            row[j] = (float)(acc[j] / (double)p->rows_in_file);
        for (int64_t r = p->rows_in_file; r < p->shape[0]; r++)
            storage_from_f32(p->storage, row, out + (size_t)r * row_bytes, cols);
        free(acc);
        free(row);
    }
    return 0;
}

/* Tensor table plus every stored byte, summed over the shard group: the
 * bytes past a unit's end are padding and never counted. */
static void fingerprint_model(fsdp *f)
{
    const model *m = f->m;
    uint64_t sum = 0;
    for (int ui = 0; ui < m->n_units; ui++) {
        const model_unit *mu = &m->units[ui];
        const fsdp_unit *u = &f->units[ui];
        size_t lo = (size_t)f->shard_index * u->storage_shard_bytes;
        size_t hi = lo + u->storage_shard_bytes < mu->n_storage_bytes ? lo + u->storage_shard_bytes : mu->n_storage_bytes;
        if (hi > lo) {
            uint8_t *host = shard_to_host(f, ui);
            sum += checksum_bytes(0x5348415244ull + (uint64_t)ui, lo, host, hi - lo);
            free(host);
        }
    }
    if (f->shard_size > 1)
        f->cm->all_reduce(f->cm, COMM_SHARD, &sum, 1, COMM_U64, 0);
    uint64_t table = 0;
    for (int ui = 0; ui < m->n_units; ui++)
        for (int i = 0; i < m->units[ui].n_params; i++) {
            const param_entry *p = &m->units[ui].params[i];
            table = table * 31 + checksum_name(p->name) + (uint64_t)p->shape[0] * 7919 + (uint64_t)p->shape[1] +
                    (uint64_t)p->storage;
        }
    f->fingerprint = sum ^ table;
}

/* One line: the bytes each rank read from the model files and its peak
 * resident memory so far (loading is the first large thing a run does). */
static void log_load_reads(fsdp *f, size_t bytes_read)
{
    const int world = f->cm->size[COMM_WORLD];
    struct rusage ru;
    uint64_t mine[2] = {bytes_read, getrusage(RUSAGE_SELF, &ru) == 0 ? (uint64_t)ru.ru_maxrss * 1024u : 0};
    uint64_t *all = xmalloc((size_t)world * sizeof mine);
    f->cm->all_gather(f->cm, COMM_WORLD, mine, all, sizeof mine, 0);
    enum { LISTED = 8 }; /* ranks listed one by one; beyond, the extremes */
    char line[LISTED * 64] = "", *at = line;
    uint64_t lo[2] = {UINT64_MAX, UINT64_MAX}, hi[2] = {0, 0};
    for (int r = 0; r < world; r++)
        for (int k = 0; k < 2; k++)
            lo[k] = all[2 * r + k] < lo[k] ? all[2 * r + k] : lo[k], hi[k] = all[2 * r + k] > hi[k] ? all[2 * r + k] : hi[k];
    for (int r = 0; r < world && world <= LISTED; r++)
        at += snprintf(at, 64, "%s%llu (peak RSS %.1f MiB)", r ? ", " : "", (unsigned long long)all[2 * r],
                       all[2 * r + 1] / 1048576.0);
    if (world > LISTED)
        snprintf(line, sizeof line, "%llu to %llu over %d ranks (peak RSS %.1f to %.1f MiB)", (unsigned long long)lo[0],
                 (unsigned long long)hi[0], world, lo[1] / 1048576.0, hi[1] / 1048576.0);
    log_info("loaded: bytes read from the model files per rank: %s", line);
    free(all);
}

int fsdp_load_frozen(fsdp *f, const char *model_dir, const safetensors *adapter, errbuf *e)
{
    model *m = f->m;
    comm *cm = f->cm;
    int is_root = cm->rank[COMM_WORLD] == 0;
    int efficient = f->opt.cpu_ram_efficient_loading;
    safetensors *st = NULL;
    int rc = 0;
    if (efficient || is_root) {
        st = safetensors_open_dir(model_dir, e);
        if (!st)
            rc = -1;
    }
    /* every rank learns whether opening worked before any collective */
    double failed = rc != 0;
    cm->all_reduce(cm, COMM_WORLD, &failed, 1, COMM_F64, 0);
    if (failed != 0.0) {
        safetensors_close(st);
        return rc != 0 ? -1 : err_set(e, "%s: another rank could not open the model", model_dir);
    }
    range_reader rr = {NULL, -1, 0};
    for (int ui = 0; ui < m->n_units && rc == 0; ui++) {
        fsdp_unit *u = &f->units[ui];
        size_t lo = (size_t)f->shard_index * u->storage_shard_bytes;
        size_t full = u->storage_shard_bytes * (size_t)f->shard_size;
        int assemble = needs_assembly(&m->units[ui]);
        if (efficient && !assemble) {
            rc = load_shard(f, ui, st, &rr, e);
        } else if (efficient) {
            /* every rank builds this one unit whole, keeps its slice */
            uint8_t *buf = xcalloc(full, 1);
            rc = assemble_unit(m, ui, st, adapter, &rr, buf, e);
            if (rc == 0)
                f->be->copy_to_device(f->be, u->storage_shard, buf + lo, u->storage_shard_bytes);
            free(buf);
        } else {
            /* rank 0 reads the unit, everyone takes its slice */
            uint8_t *buf = xcalloc(full, 1);
            double bad = 0.0;
            if (is_root && (assemble || quantizes_on_load(&m->units[ui]) ? assemble_unit(m, ui, st, adapter, &rr, buf, e)
                                                                        : read_storage_range(m, ui, st, &rr, 0, full, buf, e)) != 0)
                bad = 1.0;
            cm->all_reduce(cm, COMM_WORLD, &bad, 1, COMM_F64, 0);
            if (bad != 0.0)
                rc = is_root ? -1 : err_set(e, "%s: rank 0 could not read the model", model_dir);
            else {
                cm->broadcast(cm, COMM_WORLD, buf, full, 0, 0);
                f->be->copy_to_device(f->be, u->storage_shard, buf + lo, u->storage_shard_bytes);
            }
            free(buf);
        }
    }
    if (rr.fd >= 0)
        close(rr.fd);
    safetensors_close(st);
    if (rc == 0)
        log_load_reads(f, rr.bytes_read);
    if (rc == 0 && f->opt.sync_module_states)
        rc = check_module_states(f, e);
    if (rc != 0)
        return -1;
    fingerprint_model(f);
    fsdp_bind_resident(f);
    return 0;
}

void fsdp_bind_resident(fsdp *f)
{
    for (int ui = 0; ui < f->m->n_units; ui++)
        if (f->units[ui].persistent && f->units[ui].state != READY)
            bind_persistent(f, ui);
}

static void gather_finish(fsdp *f, int ui);
static void release(fsdp *f, int ui);

/* DoRA from scratch: m starts as the row norms of the unit's weights
 * (B = 0), so the unit is gathered as for compute and this rank's slice of
 * the result copied back into its shard.  Collective over the shard group. */
static void init_dora_magnitudes(fsdp *f, int ui)
{
    fsdp_unit *u = &f->units[ui];
    gather_finish(f, ui);
    model_dora_init_magnitudes(f->m, ui);
    if (!u->persistent)
        f->be->copy(f->be, u->train_shard, u->train_full + (size_t)f->shard_index * u->train_shard_elems,
                    u->train_shard_elems * sizeof(float));
    release(f, ui);
}

int fsdp_load_trainable(fsdp *f, const char *model_dir, uint64_t seed, const safetensors *adapter, errbuf *e)
{
    model *m = f->m;
    int rc = 0;
    /* a fresh adapter's modules_to_save start as the base model's tensors */
    safetensors *base = !adapter && m->lora.save_mask ? safetensors_open_dir(model_dir, e) : NULL;
    if (!adapter && m->lora.save_mask && !base)
        return -1;
    for (int ui = 0; ui < m->n_units && rc == 0; ui++) {
        fsdp_unit *u = &f->units[ui];
        const model_unit *mu = &m->units[ui];
        if (!mu->n_train_elems)
            continue;
        size_t padded = u->train_shard_elems * (size_t)f->shard_size;
        float *host = xcalloc(padded, sizeof(float));
        if (adapter) {
            rc = peft_adapter_fill_unit(adapter, m, ui, host, e);
        } else {
            model_lora_init_unit(m, ui, seed, host);
            if (base)
                rc = model_saved_init_unit(m, ui, base, host, e);
        }
        if (rc == 0)
            f->be->copy_to_device(f->be, u->train_shard, host + (size_t)f->shard_index * u->train_shard_elems,
                                  u->train_shard_elems * sizeof(float));
        free(host);
    }
    safetensors_close(base);
    if (rc == 0 && !adapter && m->lora.use_dora)
        for (int ui = 0; ui < m->n_units; ui++)
            if (m->units[ui].kind == UNIT_LAYER && m->units[ui].n_train_elems)
                init_dora_magnitudes(f, ui);
    return rc;
}

/* ------------------------------------------------------------------ */
/* gather and release                                                  */

static void gather_start(fsdp *f, int ui)
{
    fsdp_unit *u = &f->units[ui];
    if (u->state != RELEASED)
        return;
    const model_unit *mu = &f->m->units[ui];
    backend *be = f->be;
    size_t S = (size_t)f->shard_size;
    u->storage_full = be->alloc(be, u->storage_shard_bytes * S, MEM_GATHERED);
    u->gather_storage = f->cm->all_gather(f->cm, COMM_SHARD, u->storage_shard, u->storage_full,
                                          u->storage_shard_bytes, 1);
    if (mu->n_train_elems) {
        u->train_full = be->alloc(be, u->train_shard_elems * S * sizeof(float), MEM_GATHERED);
        u->gather_train = f->cm->all_gather(f->cm, COMM_SHARD, u->train_shard, u->train_full,
                                            u->train_shard_elems * sizeof(float), 1);
    }
    u->state = GATHERING;
}

static void gather_finish(fsdp *f, int ui)
{
    fsdp_unit *u = &f->units[ui];
    if (u->state == READY)
        return;
    gather_start(f, ui);
    model_unit *mu = &f->m->units[ui];
    f->cm->wait(f->cm, u->gather_storage);
    f->cm->wait(f->cm, u->gather_train);
    u->gather_storage = u->gather_train = NULL;
    bind_frozen(f, ui, &u->storage_full, MEM_GATHERED);
    mu->train = u->train_full;
    u->state = READY;
    model_bind_unit(f->m, ui);
}

static void release(fsdp *f, int ui)
{
    fsdp_unit *u = &f->units[ui];
    if (u->persistent || u->state == RELEASED)
        return;
    gather_finish(f, ui); /* never free a buffer an all-gather still writes */
    model_unit *mu = &f->m->units[ui];
    f->be->free(f->be, u->storage_full);
    f->be->free(f->be, u->frozen);
    f->be->free(f->be, u->train_full);
    u->storage_full = NULL, u->frozen = NULL, u->train_full = NULL;
    mu->frozen = mu->train = NULL;
    u->state = RELEASED;
    model_bind_unit(f->m, ui);
}

/* ------------------------------------------------------------------ */
/* gradient reduction                                                  */

static void reduce_finish(fsdp *f, int ui)
{
    fsdp_unit *u = &f->units[ui];
    if (!u->reduce && !u->grad_full)
        return;
    f->cm->wait(f->cm, u->reduce);
    u->reduce = NULL;
    f->be->add(f->be, u->grad_shard, u->grad_recv, u->train_shard_elems); /* accumulate micro-batches */
    f->be->free(f->be, u->grad_full);
    f->be->free(f->be, u->grad_recv);
    u->grad_full = u->grad_recv = NULL;
}

static void grad_begin(fsdp *f, int ui)
{
    fsdp_unit *u = &f->units[ui];
    model_unit *mu = &f->m->units[ui];
    if (u->persistent)
        return; /* grads accumulate straight into the (full) shard */
    u->grad_full = f->be->alloc(f->be, u->train_shard_elems * (size_t)f->shard_size * sizeof(float), MEM_GATHERED);
    mu->grad = u->grad_full;
    model_bind_unit(f->m, ui);
}

static void grad_end(fsdp *f, int ui, int *in_flight)
{
    fsdp_unit *u = &f->units[ui];
    model_unit *mu = &f->m->units[ui];
    if (u->persistent)
        return;
    /* one reduce-scatter in flight at a time bounds the full-gradient memory */
    if (*in_flight >= 0)
        reduce_finish(f, *in_flight);
    u->grad_recv = f->be->alloc(f->be, u->train_shard_elems * sizeof(float), MEM_COMM);
    u->reduce = f->cm->reduce_scatter(f->cm, COMM_SHARD, u->grad_full, u->grad_recv, u->train_shard_elems, 1);
    mu->grad = NULL;
    model_bind_unit(f->m, ui);
    *in_flight = ui;
}

/* ------------------------------------------------------------------ */
/* the schedule of one micro-batch                                     */

static int keeps_until_backward(const fsdp *f, int ui)
{
    return f->opt.sharding_strategy == FSDP_SHARD_GRAD_OP && f->m->units[ui].kind == UNIT_LAYER &&
           f->m->units[ui].n_train_elems > 0;
}

void fsdp_forward_each(fsdp *f, fsdp_unit_fn fn, void *arg, int keep_for_backward)
{
    model *m = f->m;
    const int U = m->n_units, head = U - 1;
    const int tied = m->cfg.tie_word_embeddings;
    for (int ui = 0; ui < U; ui++) {
        gather_finish(f, ui);
        if (ui == head && tied)
            gather_finish(f, 0); /* the head reads the embedding's rows */
        if (f->opt.forward_prefetch && ui + 1 < U)
            gather_start(f, ui + 1);
        fn(m, ui, arg);
        if (!(keep_for_backward && keeps_until_backward(f, ui)) && !(ui == 0 && tied))
            release(f, ui);
    }
    release(f, head);
    if (tied)
        release(f, 0);
}

typedef struct step_args {
    fsdp *f;
    const model_batch *b;
    float grad_scale;
    int do_backward;
    float *logits;
    double loss;
    int in_flight; /* the unit whose gradient reduce-scatter is in flight (-1: none) */
} step_args;

static void step_unit(model *m, int ui, void *arg)
{
    step_args *a = arg;
    if (ui != m->n_units - 1) {
        model_unit_forward(m, ui, a->b);
        return;
    }
    /* a trained lm_head (modules_to_save) gets its gradient with the loss */
    const int head_grad = a->do_backward && m->units[ui].n_train_elems > 0;
    if (head_grad)
        grad_begin(a->f, ui);
    a->loss = model_head_forward(m, a->b, a->grad_scale, a->do_backward, a->logits);
    if (head_grad)
        grad_end(a->f, ui, &a->in_flight);
}

double fsdp_forward_backward(fsdp *f, const model_batch *b, float grad_scale, int do_backward, float *logits)
{
    model *m = f->m;
    const int head = m->n_units - 1;
    step_args args = {f, b, grad_scale, do_backward, logits, 0.0, -1};
    fsdp_forward_each(f, step_unit, &args, do_backward);
    const double loss = args.loss;
    if (!do_backward)
        return loss;

    int in_flight = args.in_flight;
    const int prefetch = f->opt.backward_prefetch;
    for (int ui = head - 1; ui >= 1; ui--) {
        const int trainable = m->units[ui].n_train_elems > 0;
        const int prev = ui - 1 >= 1 ? ui - 1 : -1; /* the embedding has no backward */
        gather_finish(f, ui);
        if (prefetch == PREFETCH_BACKWARD_PRE && prev > 0)
            gather_start(f, prev);
        if (trainable)
            grad_begin(f, ui);
        model_unit_backward(m, ui, b);
        if (trainable)
            grad_end(f, ui, &in_flight);
        if (prefetch == PREFETCH_BACKWARD_POST && prev > 0)
            gather_start(f, prev);
        release(f, ui);
    }
    if (m->units[0].n_train_elems > 0) { /* a trained embedding (modules_to_save) */
        gather_finish(f, 0);
        grad_begin(f, 0);
        model_unit_backward(m, 0, b);
        grad_end(f, 0, &in_flight);
        release(f, 0);
    }
    if (in_flight >= 0)
        reduce_finish(f, in_flight);
    return loss;
}

void fsdp_zero_grads(fsdp *f)
{
    for (int ui = 0; ui < f->m->n_units; ui++)
        if (f->units[ui].grad_shard)
            f->be->zero(f->be, f->units[ui].grad_shard, f->units[ui].train_shard_elems * sizeof(float));
}

double fsdp_finish_grads(fsdp *f)
{
    double sumsq = 0.0;
    for (int ui = 0; ui < f->m->n_units; ui++) {
        fsdp_unit *u = &f->units[ui];
        if (!u->grad_shard)
            continue;
        if (f->replica_size > 1) /* replicas hold the same shard: sum their gradients */
            f->cm->all_reduce(f->cm, COMM_REPLICA, u->grad_shard, u->train_shard_elems, COMM_F32, 0);
        sumsq += f->be->sum_squares(f->be, u->grad_shard, u->train_shard_elems);
    }
    if (f->shard_size > 1)
        f->cm->all_reduce(f->cm, COMM_SHARD, &sumsq, 1, COMM_F64, 0);
    return sqrt(sumsq);
}

void fsdp_gather_trainable(fsdp *f, int ui, int gradients, float *host_train)
{
    fsdp_unit *u = &f->units[ui];
    size_t n_full = u->train_shard_elems * (size_t)f->shard_size;
    float *full = f->be->alloc(f->be, n_full * sizeof(float), MEM_COMM);
    f->cm->all_gather(f->cm, COMM_SHARD, gradients ? u->grad_shard : u->train_shard, full,
                      u->train_shard_elems * sizeof(float), 0);
    f->be->copy_to_host(f->be, host_train, full, f->m->units[ui].n_train_elems * sizeof(float));
    f->be->free(f->be, full);
}

void fsdp_gather_frozen_tensor(fsdp *f, int ui, const param_entry *p, void *host_out)
{
    fsdp_unit *u = &f->units[ui];
    if (!u->storage_shard) /* a persistent unit whose storage became its frozen buffer */
        die(EXIT_FAILURE_RUN, "fsdp: %s: its stored bytes were converted and freed", p->name);
    size_t n_bytes = storage_bytes(p->storage, p->n_elems);
    size_t full = u->storage_shard_bytes * (size_t)f->shard_size;
    uint8_t *buf = f->be->alloc(f->be, full, MEM_COMM);
    f->cm->all_gather(f->cm, COMM_SHARD, u->storage_shard, buf, u->storage_shard_bytes, 0);
    f->be->copy_to_host(f->be, host_out, buf + p->storage_offset, n_bytes);
    f->be->free(f->be, buf);
}

void fsdp_free(fsdp *f)
{
    for (int ui = 0; ui < f->m->n_units; ui++) {
        fsdp_unit *u = &f->units[ui];
        if (!u->persistent)
            release(f, ui);
        f->be->free(f->be, u->storage_shard);
        f->be->free(f->be, u->frozen);
        f->be->free(f->be, u->train_shard);
        f->be->free(f->be, u->grad_shard);
        model_unit *mu = &f->m->units[ui];
        mu->frozen = mu->train = mu->grad = NULL;
    }
    free(f->units);
    free(f->param_shards);
    free(f->grad_shards);
    free(f->shard_elems);
    memset(f, 0, sizeof *f);
}
