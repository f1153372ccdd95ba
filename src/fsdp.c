/* fsdp.c: shards, gathers, releases, reduce-scatters (see fsdp.h).
 *
 * States of a unit's full buffers: RELEASED (only the shard exists),
 * GATHERING (an all-gather is in flight), READY (fp32 frozen weights and the
 * trainable tensors are bound to the model for compute).  A unit of a
 * one-rank shard group is READY for good: its shard is the full buffer. */
#include "fsdp.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "checksum.h"
#include "peft_adapter.h"
#include "safetensors.h"
#include "weight4.h"

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
    float *frozen_f32;           /* separate only when storage is not all fp32 */
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
        /* A one-rank shard group binds its shards as the full buffers once,
         * when they are fp32 already.  Weights stored narrower (bf16, f16)
         * stay so and are widened unit by unit when used, as when sharded:
         * an fp32 copy of the whole model would double their memory. */
        u->persistent = S == 1 && mu->storage_is_f32;
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

/* Widens gathered storage into the fp32 compute layout. */
static void materialize(fsdp *f, int ui, const uint8_t *storage, float *out)
{
    const model_unit *mu = &f->m->units[ui];
    for (int i = 0; i < mu->n_params; i++) {
        const param_entry *p = &mu->params[i];
        if (!p->trainable)
            f->be->to_f32(f->be, out + p->offset, storage + p->storage_offset, p->storage, p->n_elems);
    }
}

/* Binds the fp32 frozen weights from full storage bytes: the bytes
 * themselves when they are fp32, else a widened copy (in category cat), the
 * storage then freed, as nothing reads it again. */
static void bind_frozen(fsdp *f, int ui, uint8_t **storage, mem_category cat)
{
    model_unit *mu = &f->m->units[ui];
    fsdp_unit *u = &f->units[ui];
    if (mu->storage_is_f32) {
        mu->frozen = (float *)*storage;
        return;
    }
    u->frozen_f32 = f->be->alloc(f->be, mu->n_frozen_elems * sizeof(float), cat);
    materialize(f, ui, *storage, u->frozen_f32);
    f->be->free(f->be, *storage);
    *storage = NULL;
    mu->frozen = u->frozen_f32;
}

/* A one-rank shard group of fp32 weights: bind the shards as the full
 * buffers, once. */
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
    }
    return 0;
}

/* Reads the part [lo, hi) of unit ui's storage layout that its tensors
 * cover into dst (dst[0] is byte lo). */
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
        if (a >= b)
            continue;
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
 * the new vocabulary rows are the mean of the source's rows.  So is a unit
 * with 4-bit weights: a tensor is quantized whole (the nested offset is the
 * mean of all its blocks' absmax), and the rank keeps its byte range. */
static int needs_assembly(const model_unit *mu)
{
    for (int i = 0; i < mu->n_params; i++)
        if (!mu->params[i].trainable && (mu->params[i].from_adapter || mu->params[i].rows_in_file < mu->params[i].shape[0] ||
                                         weight4_is(mu->params[i].storage)))
            return 1;
    return 0;
}

/* A 4-bit weight: its 16- or 32-bit values in the file, quantized into out. */
static int quantize_tensor(const param_entry *p, const st_tensor *t, range_reader *rr, uint8_t *out, errbuf *e)
{
    storage_dtype src = t->dtype == ST_F32 ? DT_F32 : t->dtype == ST_BF16 ? DT_BF16 : DT_F16;
    if (t->n_bytes != storage_bytes(src, p->n_elems))
        return err_set(e, "tensor '%s' changed since the model was opened", p->name);
    uint8_t *values = xmalloc(t->n_bytes);
    errbuf qe;
    int rc = read_range(rr, t->file_path, t->file_offset, values, t->n_bytes, e);
    if (rc == 0 && weight4_quantize(p->storage, src, values, p->n_elems, out, &qe) != 0)
        rc = err_set(e, "%s: %s", p->name, qe.msg);
    free(values);
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
        if (weight4_is(p->storage)) {
            if (!t || quantize_tensor(p, t, rr, out, e) != 0)
                return t ? -1 : err_set(e, "tensor '%s' changed since the model was opened", p->name);
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
    range_reader rr = {NULL, -1};
    for (int ui = 0; ui < m->n_units && rc == 0; ui++) {
        fsdp_unit *u = &f->units[ui];
        size_t lo = (size_t)f->shard_index * u->storage_shard_bytes;
        size_t full = u->storage_shard_bytes * (size_t)f->shard_size;
        int assemble = needs_assembly(&m->units[ui]);
        if (efficient && !assemble) {
            /* files are read into host memory, then placed on the device */
            uint8_t *stage = xcalloc(u->storage_shard_bytes, 1);
            rc = read_storage_range(m, ui, st, &rr, lo, lo + u->storage_shard_bytes, stage, e);
            if (rc == 0)
                f->be->copy_to_device(f->be, u->storage_shard, stage, u->storage_shard_bytes);
            free(stage);
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
            if (is_root && (assemble ? assemble_unit(m, ui, st, adapter, &rr, buf, e)
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

int fsdp_load_trainable(fsdp *f, uint64_t seed, const safetensors *adapter, errbuf *e)
{
    model *m = f->m;
    int rc = 0;
    for (int ui = 0; ui < m->n_units && rc == 0; ui++) {
        fsdp_unit *u = &f->units[ui];
        const model_unit *mu = &m->units[ui];
        if (!mu->n_train_elems)
            continue;
        size_t padded = u->train_shard_elems * (size_t)f->shard_size;
        float *host = xcalloc(padded, sizeof(float));
        if (adapter)
            rc = peft_adapter_fill_unit(adapter, m, ui, host, e);
        else
            model_lora_init_unit(m, ui, seed, host);
        if (rc == 0)
            f->be->copy_to_device(f->be, u->train_shard, host + (size_t)f->shard_index * u->train_shard_elems,
                                  u->train_shard_elems * sizeof(float));
        free(host);
    }
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
    f->be->free(f->be, u->frozen_f32);
    f->be->free(f->be, u->train_full);
    u->storage_full = NULL, u->frozen_f32 = NULL, u->train_full = NULL;
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
    const model_batch *b;
    float grad_scale;
    int do_backward;
    float *logits;
    double loss;
} step_args;

static void step_unit(model *m, int ui, void *arg)
{
    step_args *a = arg;
    if (ui == m->n_units - 1)
        a->loss = model_head_forward(m, a->b, a->grad_scale, a->do_backward, a->logits);
    else
        model_unit_forward(m, ui, a->b);
}

double fsdp_forward_backward(fsdp *f, const model_batch *b, float grad_scale, int do_backward, float *logits)
{
    model *m = f->m;
    const int head = m->n_units - 1;
    step_args args = {b, grad_scale, do_backward, logits, 0.0};
    fsdp_forward_each(f, step_unit, &args, do_backward);
    const double loss = args.loss;
    if (!do_backward)
        return loss;

    int in_flight = -1;
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
        f->be->free(f->be, u->frozen_f32);
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
