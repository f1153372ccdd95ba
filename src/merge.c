/* merge.c: each rank merges the units u with u % N == rank, one output file
 * at a time, so no rank ever holds the whole model (a rank holds at most one
 * file of --max_shard_size).  Every rank computes the same file plan from the
 * parameter tables, so file names and the index need no communication.
 * A merged weight is W + s B A computed in fp32 and stored back in W's
 * dtype; with DoRA each row i of it is then scaled by m[i] / ||row i||
 * (PEFT's merge_and_unload: the norm of the unmerged W + s B A); everything else is copied byte for byte (the embedding layers
 * from the adapter when it saved them).
 * With the 4-bit flags every linear weight of a layer is first what the run
 * computed with, dequantize(quantize(W)) in fp32 (src/weight4.c, as loading
 * does), so the output is the 4-bit model with the adapter merged, in the
 * file's dtype: what PEFT's Linear4bit merge computes before it quantizes
 * the sum again. */
#include "merge.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend.h"
#include "gemm.h"
#include "peft_adapter.h"
#include "weight4.h"
#include "weight4_bnb.h"
#include "safetensors.h"

static int parse_size(const char *s, size_t *out)
{
    char *end;
    double v = strtod(s, &end);
    double unit = !strcmp(end, "GB") ? 1e9 : !strcmp(end, "MB") ? 1e6 : !strcmp(end, "KB") ? 1e3 : !*end ? 1 : 0;
    if (v <= 0 || unit == 0)
        return -1;
    *out = (size_t)(v * unit);
    return 0;
}

static st_dtype st_of(storage_dtype d) { return d == DT_BF16 ? ST_BF16 : d == DT_F16 ? ST_F16 : ST_F32; }

/* The dtype a merged 4-bit weight is written in: that of the unit's other
 * frozen tensors (the norms), what the checkpoint was quantized from. */
static storage_dtype plain_dtype(const model_unit *mu)
{
    for (int i = 0; i < mu->n_params; i++)
        if (!mu->params[i].trainable && !weight4_is(mu->params[i].storage))
            return mu->params[i].storage;
    return DT_F32;
}

/* The dtype tensor p is written in. */
static storage_dtype out_dtype_of(const model_unit *mu, const param_entry *p)
{
    return p->prequantized ? plain_dtype(mu) : p->storage;
}

/* The bytes a unit's tensors take in the merged files. */
static size_t merged_bytes(const model_unit *mu)
{
    size_t n = 0;
    for (int i = 0; i < mu->n_params; i++)
        if (!mu->params[i].trainable || mu->params[i].lora_ab == 'S')
            n += storage_bytes(out_dtype_of(mu, &mu->params[i]), mu->params[i].n_elems);
    return n;
}

/* The output files: (rank, first unit index in that rank's list, count). */
typedef struct out_file {
    int rank;
    int first, n_units; /* into the rank's units u = rank, rank + N, ... */
} out_file;

static int plan_files(const model *m, int world, size_t max_bytes, out_file **files)
{
    int n = 0, cap = 16;
    out_file *f = xmalloc((size_t)cap * sizeof *f);
    for (int r = 0; r < world; r++) {
        size_t acc = 0;
        int idx = 0, open = 0;
        for (int ui = r; ui < m->n_units; ui += world, idx++) {
            size_t bytes = merged_bytes(&m->units[ui]);
            if (open && acc + bytes > max_bytes)
                open = 0;
            if (!open) {
                if (n == cap)
                    f = realloc(f, (size_t)(cap *= 2) * sizeof *f);
                f[n++] = (out_file){r, idx, 0};
                acc = 0;
                open = 1;
            }
            f[n - 1].n_units++;
            acc += bytes;
        }
    }
    *files = f;
    return n;
}

static void file_name(char *buf, size_t n, int index, int total)
{
    if (total == 1)
        snprintf(buf, n, "model.safetensors");
    else
        snprintf(buf, n, "model-%05d-of-%05d.safetensors", index + 1, total);
}

/* The LoRA tensors of module lin in a layer unit's trainable layout. */
static const param_entry *lora_entry(const model_unit *mu, linear_id lin, char ab)
{
    for (int i = 0; i < mu->n_params; i++)
        if (mu->params[i].trainable && mu->params[i].lin == lin && mu->params[i].lora_ab == ab)
            return &mu->params[i];
    return NULL;
}

/* DoRA: rows of w [rows, cols] (= W + s B A) times m / ||row||, the
 * norm summed in double. */
static void dora_scale_rows(float *w, const float *mag, int rows, int cols)
{
    for (int i = 0; i < rows; i++) {
        float *row = w + (size_t)i * cols;
        double acc = 0.0;
        for (int j = 0; j < cols; j++)
            acc += (double)row[j] * (double)row[j];
        const float factor = mag[i] / (float)sqrt(acc);
        for (int j = 0; j < cols; j++)
            row[j] *= factor;
    }
}

/* The fp32 weight a run computes with: the file's values, or with 4-bit
 * flags (q4 one of the 4-bit formats) their 4-bit round trip. */
static int weight_f32(const param_entry *p, const void *data, int quantized, storage_dtype q4, float *wf, errbuf *e)
{
    if (!quantized) {
        storage_to_f32(p->storage, data, wf, p->n_elems);
        return 0;
    }
    uint8_t *codes = xmalloc(weight4_bytes(q4, p->n_elems));
    errbuf qe;
    int rc = weight4_quantize(q4, p->storage, data, p->n_elems, codes, &qe);
    if (rc == 0)
        weight4_dequantize(q4, codes, p->n_elems, wf);
    else
        err_set(e, "merge: %s: %s", p->name, qe.msg);
    free(codes);
    return rc;
}

/* A linear weight of a *-bnb-4bit checkpoint, dequantized as saved: its
 * pieces (weight4_bnb.h) end to end are weight4's layout. */
static int prequantized_f32(const safetensors *base, const param_entry *p, float *wf, errbuf *e)
{
    weight4_bnb w;
    int found = weight4_bnb_find(base, p->name, p->shape, &w, e);
    if (found <= 0)
        return found < 0 ? -1 : err_set(e, "merge: tensor '%s' changed since the model was opened", p->name);
    uint8_t *layout = xmalloc(weight4_bytes(w.storage, p->n_elems)), *at = layout;
    for (int k = 0; k < w.n_pieces; k++) {
        memcpy(at, w.pieces[k].t ? w.pieces[k].t->data : w.offset_bytes, w.pieces[k].n_bytes);
        at += w.pieces[k].n_bytes;
    }
    weight4_dequantize(w.storage, layout, p->n_elems, wf);
    free(layout);
    return 0;
}

/* q4: the 4-bit format of the run's linear weights, DT_F32 without 4-bit flags. */
static int merge_unit(const model *m, int ui, const safetensors *base, const safetensors *adapter, storage_dtype q4,
                      st_writer *w, void ***bufs, int *n_bufs, errbuf *e)
{
    const model_unit *mu = &m->units[ui];
    float *train = NULL;
    if (mu->n_train_elems) {
        train = xcalloc(mu->n_train_elems, sizeof(float));
        if (peft_adapter_fill_unit(adapter, m, ui, train, e) != 0) {
            free(train);
            return -1;
        }
    }
    for (int i = 0; i < mu->n_params; i++) {
        const param_entry *p = &mu->params[i];
        if (p->lora_ab == 'S') { /* modules_to_save: the trained module replaces the base one */
            void *out = xmalloc(storage_bytes(p->storage, p->n_elems));
            *bufs = realloc(*bufs, (size_t)(*n_bufs + 1) * sizeof **bufs);
            (*bufs)[(*n_bufs)++] = out;
            storage_from_f32(p->storage, train + p->offset, out, p->n_elems);
            st_writer_add(w, model_saved_base_name(p), st_of(p->storage), p->n_dims, p->shape, out);
        }
        if (p->trainable)
            continue;
        const st_tensor *t = p->from_adapter ? safetensors_find(adapter, model_embedding_peft_key(p))
                                             : safetensors_find(base, p->name);
        /* a *-bnb-4bit checkpoint's weights are written dequantized */
        const storage_dtype out_dtype = out_dtype_of(mu, p);
        size_t n_bytes = storage_bytes(out_dtype, p->n_elems);
        if (!t || (!p->prequantized && t->n_bytes != n_bytes)) {
            free(train);
            return err_set(e, "merge: tensor '%s' cannot be merged (missing, or a resized vocabulary without the "
                              "adapter's embedding layers)", p->name);
        }
        void *out = xmalloc(n_bytes);
        *bufs = realloc(*bufs, (size_t)(*n_bufs + 1) * sizeof **bufs);
        (*bufs)[(*n_bufs)++] = out;
        const param_entry *a = NULL, *b = NULL, *mag = NULL;
        if (mu->kind == UNIT_LAYER && p->n_dims == 2)
            for (int lin = 0; lin < N_LINEARS; lin++)
                if (strstr(p->name, lora_module_path(lin))) {
                    a = lora_entry(mu, lin, 'A');
                    b = lora_entry(mu, lin, 'B');
                    mag = lora_entry(mu, lin, 'M');
                }
        /* the layers' 2-D tensors are the linear weights: 4-bit in the run */
        const int quantized = q4 != DT_F32 && mu->kind == UNIT_LAYER && p->n_dims == 2;
        if ((!a || !b) && !quantized && !p->prequantized) {
            memcpy(out, t->data, n_bytes);
        } else {
            float *wf = xmalloc(p->n_elems * sizeof(float));
            if ((p->prequantized ? prequantized_f32(base, p, wf, e) : weight_f32(p, t->data, quantized, q4, wf, e)) !=
                0) {
                free(wf);
                free(train);
                return -1;
            }
            if (a && b) {
                /* W [out, in] += s * B [out, r] @ A [r, in], in fp32 */
                int rows = (int)p->shape[0], cols = (int)p->shape[1], r = (int)a->shape[0];
                float scale = m->layers[a->layer].lora[a->lin].scale; /* the module's own (rank_pattern ...) */
                gemm(GEMM_F32, 0, 0, rows, cols, r, scale, train + b->offset, r, train + a->offset, cols, 1.0f, wf,
                     cols);
                if (mag)
                    dora_scale_rows(wf, train + mag->offset, rows, cols);
            }
            storage_from_f32(out_dtype, wf, out, p->n_elems);
            free(wf);
        }
        st_writer_add(w, p->name, st_of(out_dtype), p->n_dims, p->shape, out);
    }
    free(train);
    return 0;
}

static int copy_file(const char *from_dir, const char *to_dir, const char *name, errbuf *e)
{
    char src[4096], dst[4096], tmp[4200];
    snprintf(src, sizeof src, "%s/%s", from_dir, name);
    snprintf(dst, sizeof dst, "%s/%s", to_dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", dst);
    FILE *in = fopen(src, "rb");
    if (!in)
        return 0; /* optional files */
    FILE *out = fopen(tmp, "wb");
    char buf[1 << 16];
    size_t n;
    int rc = out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    if (rc != 0 || rename(tmp, dst) != 0) {
        remove(tmp);
        return err_set(e, "%s: cannot write: %s", dst, strerror(errno));
    }
    return 0;
}

static int write_index(const model *m, int world, const out_file *files, int n_files, const char *dir, errbuf *e)
{
    json_t *root = json_object(), *map = json_object();
    size_t total = 0;
    for (int f = 0; f < n_files; f++) {
        char name[64];
        file_name(name, sizeof name, f, n_files);
        for (int k = 0; k < files[f].n_units; k++) {
            int ui = files[f].rank + (files[f].first + k) * world;
            const model_unit *mu = &m->units[ui];
            total += mu->n_storage_bytes;
            for (int i = 0; i < mu->n_params; i++) {
                const param_entry *p = &mu->params[i];
                if (p->lora_ab == 'S') /* modules_to_save: written in the base tensor's place and format */
                    total += storage_bytes(p->storage, p->n_elems);
                if (!p->trainable || p->lora_ab == 'S')
                    json_object_set_new(map, p->lora_ab == 'S' ? model_saved_base_name(p) : p->name,
                                        json_string(name));
            }
        }
    }
    json_object_set_new(root, "metadata", json_pack("{s:I}", "total_size", (json_int_t)total));
    json_object_set_new(root, "weight_map", map);
    char path[4096], tmp[4200];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int rc = json_dump_file(root, tmp, JSON_INDENT(2) | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return err_set(e, "%s: cannot write", path);
    }
    return 0;
}

int merge_run(const run_config *c, int argc, char **argv, errbuf *e)
{
    int rank, world;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &world);
    size_t max_bytes;
    if (parse_size(c->max_shard_size, &max_bytes) != 0)
        return err_set(e, "--max_shard_size: '%s' is not a size such as 5GB, 200MB or 1000000", c->max_shard_size);
    storage_dtype q4 = DT_F32;
    if (c->use_4bit_quantization)
        q4 = weight4_dtype(strcmp(c->bnb_4bit_quant_type, "fp4") == 0 ? QUANT4_FP4 : QUANT4_NF4, c->use_nested_quant);
    lora_config lc;
    if (peft_adapter_read_config(c->adapter, &lc, e) != 0)
        return -1;
    safetensors *adapter = peft_adapter_open_weights(c->adapter, e);
    if (!adapter)
        return -1;
    backend *counting = backend_null_create(); /* tables only: no buffers */
    model m;
    safetensors *base = NULL;
    out_file *files = NULL;
    int rc = -1;
    if (model_init(&m, c->model_name_or_path, &lc, 0, adapter, counting, e) != 0)
        goto out;
    if (!(base = safetensors_open_dir(c->model_name_or_path, e)))
        goto out;
    if (rank == 0 && mkdir(c->out, 0777) != 0 && errno != EEXIST) {
        err_set(e, "--out %s: cannot create: %s", c->out, strerror(errno));
        goto out;
    }
    MPI_Barrier(MPI_COMM_WORLD);
    int n_files = plan_files(&m, world, max_bytes, &files);
    rc = 0;
    for (int f = 0; f < n_files && rc == 0; f++) {
        if (files[f].rank != rank)
            continue;
        st_writer *w = st_writer_new();
        void **bufs = NULL;
        int n_bufs = 0;
        for (int k = 0; k < files[f].n_units && rc == 0; k++)
            rc = merge_unit(&m, rank + (files[f].first + k) * world, base, adapter, q4, w, &bufs, &n_bufs, e);
        st_writer_metadata(w, "format", "pt");
        char name[64], path[4200];
        file_name(name, sizeof name, f, n_files);
        snprintf(path, sizeof path, "%s/%s", c->out, name);
        if (rc == 0)
            rc = st_writer_write(w, path, e);
        st_writer_free(w);
        for (int i = 0; i < n_bufs; i++)
            free(bufs[i]);
        free(bufs);
    }
    if (rc == 0 && rank == 0) {
        const char *tok_dir = c->adapter;
        char probe[4096];
        struct stat st;
        snprintf(probe, sizeof probe, "%s/tokenizer.json", c->adapter);
        if (stat(probe, &st) != 0)
            tok_dir = c->model_name_or_path;
        const char *copied[] = {"tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                                "generation_config.json", "tokenizer.model"};
        char cfg_path[4200];
        snprintf(cfg_path, sizeof cfg_path, "%s/config.json", c->out);
        rc = llama_config_save(&m.cfg, cfg_path, e); /* the vocabulary as merged */
        for (size_t i = 0; i < sizeof copied / sizeof copied[0] && rc == 0; i++)
            rc = copy_file(i < 3 ? tok_dir : c->model_name_or_path, c->out, copied[i], e);
        if (rc == 0 && n_files > 1)
            rc = write_index(&m, world, files, n_files, c->out, e);
    }
out:
    /* one failure stops all: the caller's die() brings the job down */
    free(files);
    safetensors_close(base);
    safetensors_close(adapter);
    if (m.units)
        model_free(&m);
    lora_config_free(&lc);
    counting->destroy(counting);
    if (rc == 0)
        log_info("merged %s + %s into %s", c->model_name_or_path, c->adapter, c->out);
    return rc;
}
