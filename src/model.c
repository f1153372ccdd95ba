/* model.c: Llama + LoRA forward and backward over flat unit buffers.
 *
 * Read top to bottom: parameter tables, loading, then the forward pass of a
 * layer, its backward, and the whole micro-batch step. */
#include "model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rng.h"
#include "safetensors.h"
#include "weight4.h"
#include "weight4_bnb.h"

enum { RNG_STREAM_LORA_INIT = 0x4c6f5241 };
/* DoRA's weight norms take W + s B A this many rows at a time (a 70B
 * down_proj whole would be 0.9 GB of scratch). */
enum { DORA_NORM_ROWS = 256 };

/* ------------------------------------------------------------------ */
/* shapes                                                              */

static void linear_shape(const llama_config *c, linear_id lin, int *out, int *in)
{
    int q_dim = c->n_heads * c->head_dim, kv_dim = c->n_kv_heads * c->head_dim;
    switch (lin) {
    case LIN_Q: *out = q_dim, *in = c->hidden_size; break;
    case LIN_K:
    case LIN_V: *out = kv_dim, *in = c->hidden_size; break;
    case LIN_O: *out = c->hidden_size, *in = q_dim; break;
    case LIN_GATE:
    case LIN_UP: *out = c->intermediate_size, *in = c->hidden_size; break;
    default: *out = c->hidden_size, *in = c->intermediate_size; break;
    }
}

/* ------------------------------------------------------------------ */
/* parameter tables                                                    */

/* compute: a frozen tensor's format in the frozen buffer (see param_entry) */
static param_entry *unit_add(model_unit *u, const char *name, int n_dims, int64_t d0, int64_t d1,
                             int trainable, storage_dtype compute)
{
    u->params = realloc(u->params, (size_t)(u->n_params + 1) * sizeof *u->params);
    if (!u->params)
        die(EXIT_FAILURE_RUN, "out of memory building the parameter table");
    param_entry *p = &u->params[u->n_params++];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->n_dims = n_dims;
    p->shape[0] = d0;
    p->shape[1] = n_dims > 1 ? d1 : 1;
    p->n_elems = (size_t)d0 * (size_t)p->shape[1];
    p->trainable = trainable;
    p->layer = u->kind == UNIT_LAYER ? u->layer : -1;
    if (trainable) {
        p->offset = u->n_train_elems;
        u->n_train_elems += p->n_elems;
        return p;
    }
    /* each tensor aligned for its format: an all-fp32 unit packs as its
     * fp32 storage does */
    const size_t width = storage_bytes(compute, 1);
    p->compute = compute;
    p->offset = (u->n_frozen_bytes + width - 1) / width * width;
    u->n_frozen_bytes = p->offset + storage_bytes(compute, p->n_elems);
    u->n_frozen_elems += p->n_elems;
    return p;
}

/* mods: this layer's adapters (PEFT may target some layers only, with
 * their own r): the trainable buffer holds only the targeted modules'. */
static void build_layer_table(model_unit *u, const llama_config *c, const lora_config *lc, const lora_module *mods,
                              storage_dtype weight_dtype)
{
    char name[96];
    int l = u->layer;
    snprintf(name, sizeof name, "model.layers.%d.input_layernorm.weight", l);
    unit_add(u, name, 1, c->hidden_size, 0, 0, DT_F32);
    for (int lin = 0; lin < N_LINEARS; lin++) {
        int out, in;
        linear_shape(c, lin, &out, &in);
        snprintf(name, sizeof name, "model.layers.%d.%s.weight", l, lora_module_path(lin));
        param_entry *w = unit_add(u, name, 2, out, in, 0, weight_dtype);
        if (weight_dtype == DT_BF16 && mods[lin].r) { /* room for s B and A beside W */
            w->fused_r = mods[lin].r;
            u->n_frozen_bytes = w->offset + storage_bytes(DT_BF16, (size_t)(out + w->fused_r) * param_frozen_ld(w));
        }
        if (lin == LIN_O) {
            snprintf(name, sizeof name, "model.layers.%d.post_attention_layernorm.weight", l);
            unit_add(u, name, 1, c->hidden_size, 0, 0, DT_F32);
        }
    }
    for (int lin = 0; lin < N_LINEARS; lin++) {
        if (!mods[lin].r)
            continue;
        int out, in;
        linear_shape(c, lin, &out, &in);
        lora_peft_key(name, sizeof name, l, lin, 'A');
        param_entry *a = unit_add(u, name, 2, mods[lin].r, in, 1, DT_F32);
        a->lin = lin, a->lora_ab = 'A';
        lora_peft_key(name, sizeof name, l, lin, 'B');
        param_entry *b = unit_add(u, name, 2, out, mods[lin].r, 1, DT_F32);
        b->lin = lin, b->lora_ab = 'B';
        if (lc->use_dora) {
            lora_peft_key(name, sizeof name, l, lin, 'M');
            param_entry *mag = unit_add(u, name, 1, out, 0, 1, DT_F32);
            mag->lin = lin, mag->lora_ab = 'M';
        }
    }
}

static void build_units(model *m)
{
    const llama_config *c = &m->cfg;
    m->n_units = c->n_layers + 2;
    m->units = xcalloc((size_t)m->n_units, sizeof *m->units);
    model_unit *emb = &m->units[0];
    emb->kind = UNIT_EMBEDDING;
    /* modules_to_save: the trained copy replaces the frozen tensor in the
     * unit (nothing frozen of it is kept or gathered), named by PEFT's key */
    const int save_embed = (m->lora.save_mask & LORA_SAVE_EMBED) != 0;
    param_entry *p = unit_add(emb, save_embed ? "base_model.model.model.embed_tokens.weight" : "model.embed_tokens.weight",
                              2, c->vocab_size, c->hidden_size, save_embed, DT_F32);
    p->lora_ab = save_embed ? 'S' : 0;
    /* DoRA's norms read W unrounded (PEFT's under autocast are fp32) */
    const storage_dtype weight_dtype = m->lora.use_dora ? DT_F32 : m->be->weight_dtype;
    for (int l = 0; l < c->n_layers; l++) {
        model_unit *u = &m->units[1 + l];
        u->kind = UNIT_LAYER;
        u->layer = l;
        build_layer_table(u, c, &m->lora, m->lora_mods + (size_t)l * N_LINEARS, weight_dtype);
    }
    model_unit *head = &m->units[m->n_units - 1];
    head->kind = UNIT_HEAD;
    unit_add(head, "model.norm.weight", 1, c->hidden_size, 0, 0, DT_F32);
    const int save_head = (m->lora.save_mask & LORA_SAVE_LM_HEAD) != 0;
    if (!c->tie_word_embeddings) {
        p = unit_add(head, save_head ? "base_model.model.lm_head.weight" : "lm_head.weight", 2, c->vocab_size,
                     c->hidden_size, save_head, DT_F32);
        p->lora_ab = save_head ? 'S' : 0;
    }
}

int model_unit_storage_is_compute(const model_unit *u)
{
    for (int i = 0; i < u->n_params; i++) {
        const param_entry *p = &u->params[i];
        if (!p->trainable && (p->storage != p->compute || p->storage_offset != p->offset || p->fused_r))
            return 0;
    }
    return 1;
}

void model_bind_unit(model *m, int ui)
{
    model_unit *u = &m->units[ui];
    for (int i = 0; i < u->n_params; i++) {
        param_entry *p = &u->params[i];
        void *w = NULL;
        if (p->trainable && u->train)
            w = u->train + p->offset;
        else if (!p->trainable && u->frozen)
            w = (char *)u->frozen + p->offset;
        float *g = p->trainable && u->grad ? u->grad + p->offset : NULL;
        if (u->kind == UNIT_EMBEDDING) {
            m->embed = w;
            m->embed_grad = g;
            if (m->cfg.tie_word_embeddings)
                m->lm_head = m->embed;
        } else if (u->kind == UNIT_HEAD) {
            if (strcmp(p->name, "model.norm.weight") == 0) {
                m->final_norm = w;
            } else {
                m->lm_head = w;
                m->lm_head_grad = g;
            }
        } else {
            layer_view *v = &m->layers[u->layer];
            if (p->trainable) {
                float **tw = p->lora_ab == 'A' ? v->lora_a : p->lora_ab == 'B' ? v->lora_b : v->mag;
                float **tg = p->lora_ab == 'A' ? v->grad_a : p->lora_ab == 'B' ? v->grad_b : v->grad_mag;
                tw[p->lin] = w;
                tg[p->lin] = g;
            } else {
                if (strstr(p->name, "input_layernorm"))
                    v->attn_norm = w;
                else if (strstr(p->name, "post_attention_layernorm"))
                    v->mlp_norm = w;
                else
                    for (int lin = 0; lin < N_LINEARS; lin++)
                        if (strstr(p->name, lora_module_path(lin))) {
                            v->w[lin] = p->compute == DT_F32 ? w : NULL;
                            v->w_bf16[lin] = p->compute == DT_BF16 ? w : NULL;
                            v->w_ld[lin] = (int)param_frozen_ld(p);
                        }
            }
        }
    }
}

/* ------------------------------------------------------------------ */
/* loading                                                             */

/* RoPE frequencies exactly as transformers computes them in fp32,
 * including the llama3 wavelength-dependent scaling. */
static void rope_inv_freq(const llama_config *c, float *inv_freq)
{
    int half = c->head_dim / 2;
    for (int i = 0; i < half; i++) {
        float expo = (float)(2 * i) / (float)c->head_dim;
        inv_freq[i] = 1.0f / powf(c->rope_theta, expo);
    }
    if (c->rope_type != ROPE_LLAMA3)
        return;
    float old_len = (float)c->rope_original_max_position_embeddings;
    float low_wavelen = old_len / c->rope_low_freq_factor;
    float high_wavelen = old_len / c->rope_high_freq_factor;
    for (int i = 0; i < half; i++) {
        float f = inv_freq[i];
        float wavelen = 2.0f * (float)M_PI / f;
        float scaled = wavelen > low_wavelen ? f / c->rope_factor : f;
        if (!(wavelen < high_wavelen) && !(wavelen > low_wavelen)) {
            float smooth = (old_len / wavelen - c->rope_low_freq_factor) /
                           (c->rope_high_freq_factor - c->rope_low_freq_factor);
            scaled = (1.0f - smooth) * scaled / c->rope_factor + smooth * scaled;
        }
        inv_freq[i] = scaled;
    }
}

const char *model_embedding_peft_key(const param_entry *p)
{
    if (strcmp(p->name, "model.embed_tokens.weight") == 0)
        return "base_model.model.model.embed_tokens.weight";
    if (strcmp(p->name, "lm_head.weight") == 0)
        return "base_model.model.lm_head.weight";
    return "";
}

const char *model_saved_base_name(const param_entry *p)
{
    return strcmp(p->name, "base_model.model.lm_head.weight") == 0 ? "lm_head.weight" : "model.embed_tokens.weight";
}

int model_saves_embeddings(const model *m)
{
    if (m->cfg.vocab_size != m->base_vocab_size)
        return 1;
    for (int i = 0; i < m->units[0].n_params; i++)
        if (m->units[0].params[i].from_adapter)
            return 1;
    return 0;
}

static int storage_of_dtype(st_dtype d, storage_dtype *out)
{
    switch (d) {
    case ST_F32: *out = DT_F32; return 0;
    case ST_BF16: *out = DT_BF16; return 0;
    case ST_F16: *out = DT_F16; return 0;
    default: return -1;
    }
}

/* A module trained fully: its base tensor (a fresh adapter's initial
 * value) must be in the model with config.json's rows, and in a format
 * that the mean of resized rows is rounded to, as for frozen tensors. */
static int check_saved_base(const model *m, param_entry *p, const safetensors *st, const char *dir, errbuf *e)
{
    const char *name = model_saved_base_name(p);
    const st_tensor *t = safetensors_find(st, name);
    p->rows_in_file = m->base_vocab_size;
    int64_t want[2] = {p->rows_in_file, p->shape[1]};
    if (!t)
        return err_set(e, "%s: missing tensor '%s' (expected shape [%lld, %lld])", dir, name, (long long)want[0],
                       (long long)want[1]);
    if (st_tensor_check_shape(t, 2, want, e) != 0)
        return -1;
    if (storage_of_dtype(t->dtype, &p->storage) != 0)
        return err_set(e, "%s: tensor '%s' has dtype %s; base weights must be F32, BF16 or F16", dir, name,
                       st_dtype_name(t->dtype));
    return 0;
}

/* transformers' resize_token_embeddings on an fp32 copy: the rows past
 * rows_in_file are the mean of the others, stored in the tensor's format
 * (as fsdp.c assembles frozen tensors). */
static void fill_resized_rows(const param_entry *p, float *out)
{
    if (p->rows_in_file >= p->shape[0])
        return;
    size_t cols = (size_t)p->shape[1];
    double *acc = xcalloc(cols, sizeof *acc);
    for (int64_t r = 0; r < p->rows_in_file; r++)
        for (size_t j = 0; j < cols; j++)
            acc[j] += out[(size_t)r * cols + j];
    float *mean = out + (size_t)p->rows_in_file * cols;
    for (size_t j = 0; j < cols; j++)
        mean[j] = (float)(acc[j] / (double)p->rows_in_file);
    uint8_t *stored = xmalloc(storage_bytes(p->storage, cols));
    storage_from_f32(p->storage, mean, stored, cols);
    storage_to_f32(p->storage, stored, mean, cols);
    for (int64_t r = p->rows_in_file + 1; r < p->shape[0]; r++)
        memcpy(out + (size_t)r * cols, mean, cols * sizeof(float));
    free(acc);
    free(stored);
}

int model_saved_init_unit(const model *m, int ui, const safetensors *base, float *host_train, errbuf *e)
{
    const model_unit *u = &m->units[ui];
    for (int i = 0; i < u->n_params; i++) {
        const param_entry *p = &u->params[i];
        if (p->lora_ab != 'S')
            continue;
        const st_tensor *t = safetensors_find(base, model_saved_base_name(p));
        if (!t)
            return err_set(e, "tensor '%s' changed since the model was opened", model_saved_base_name(p));
        if (st_tensor_to_f32(t, host_train + p->offset, e) != 0)
            return -1;
        fill_resized_rows(p, host_train + p->offset);
    }
    return 0;
}

/* A layer's linear weight in a checkpoint saved with bitsandbytes 4-bit
 * weights (config.json's quantization_config): 1 and its 4-bit storage when
 * the file holds it quantized, which must be the type config.json names; 0
 * when the file holds it unquantized. */
static int prequantized_storage(const model *m, const safetensors *st, param_entry *p, const char *dir, errbuf *e)
{
    weight4_bnb w;
    int rc = weight4_bnb_find(st, p->name, p->shape, &w, e);
    if (rc != 1)
        return rc;
    storage_dtype want = weight4_dtype(strcmp(m->cfg.bnb_4bit_quant_type, "fp4") == 0 ? QUANT4_FP4 : QUANT4_NF4,
                                       m->cfg.bnb_4bit_nested);
    if (w.storage != want)
        return err_set(e, "%s: tensor '%s' is stored as %s but config.json's quantization_config says %s%s", dir,
                       p->name, storage_dtype_name(w.storage), m->cfg.bnb_4bit_quant_type,
                       m->cfg.bnb_4bit_nested ? " with double quantization" : "");
    p->storage = w.storage;
    p->prequantized = 1;
    return 1;
}

/* Gives each frozen tensor its source (base model or adapter), storage
 * format (the source's) and byte offset in the unit's storage buffer,
 * checking presence and shape; resized vocabulary rows beyond the source
 * are filled at load. */
static int assign_storage(model *m, const safetensors *st, const safetensors *adapter, const char *dir, errbuf *e)
{
    for (int ui = 0; ui < m->n_units; ui++) {
        model_unit *u = &m->units[ui];
        u->n_storage_bytes = 0;
        for (int i = 0; i < u->n_params; i++) {
            param_entry *p = &u->params[i];
            if (p->lora_ab == 'S' && check_saved_base(m, p, st, dir, e) != 0)
                return -1;
            if (p->trainable)
                continue;
            const char *akey = model_embedding_peft_key(p);
            const st_tensor *t = adapter && *akey ? safetensors_find(adapter, akey) : NULL;
            p->from_adapter = t != NULL;
            p->rows_in_file = p->shape[0];
            if (!t) {
                t = safetensors_find(st, p->name);
                if (*akey)
                    p->rows_in_file = m->base_vocab_size;
            }
            if (!t) {
                if (p->n_dims > 1)
                    return err_set(e, "%s: missing tensor '%s' (expected shape [%lld, %lld])", dir, p->name,
                                   (long long)p->rows_in_file, (long long)p->shape[1]);
                return err_set(e, "%s: missing tensor '%s' (expected shape [%lld])", dir, p->name,
                               (long long)p->shape[0]);
            }
            int q4 = u->kind == UNIT_LAYER && p->n_dims == 2 && !p->from_adapter && m->cfg.bnb_4bit
                         ? prequantized_storage(m, st, p, dir, e) : 0;
            if (q4 < 0)
                return -1;
            int64_t want[2] = {p->rows_in_file, p->shape[1]};
            if (q4) /* storage set, its tensors checked */
                ;
            else if (st_tensor_check_shape(t, p->n_dims, p->n_dims > 1 ? want : p->shape, e) != 0)
                return -1;
            else if (storage_of_dtype(t->dtype, &p->storage) != 0)
                return err_set(e, "%s: tensor '%s' has dtype %s; base weights must be F32, BF16 or F16",
                               p->from_adapter ? "adapter" : dir, p->name, st_dtype_name(t->dtype));
            p->storage_offset = u->n_storage_bytes;
            u->n_storage_bytes += storage_bytes(p->storage, p->n_elems);
        }
    }
    return 0;
}

/* For a plan: every frozen tensor in format dt. */
static void assign_planned_storage(model *m, storage_dtype dt)
{
    for (int ui = 0; ui < m->n_units; ui++) {
        model_unit *u = &m->units[ui];
        u->n_storage_bytes = 0;
        for (int i = 0; i < u->n_params; i++) {
            param_entry *p = &u->params[i];
            if (p->trainable)
                continue;
            p->storage = dt;
            p->rows_in_file = p->shape[0];
            p->storage_offset = u->n_storage_bytes;
            u->n_storage_bytes += storage_bytes(p->storage, p->n_elems);
        }
    }
}

void model_lora_init_unit(const model *m, int ui, uint64_t seed, float *host_train)
{
    const model_unit *u = &m->units[ui];
    rng r;
    rng_init(&r, seed, RNG_STREAM_LORA_INIT + (uint64_t)ui);
    memset(host_train, 0, u->n_train_elems * sizeof(float));
    for (int i = 0; i < u->n_params; i++) {
        const param_entry *p = &u->params[i];
        if (!p->trainable || p->lora_ab != 'A')
            continue;
        float bound = 1.0f / sqrtf((float)p->shape[1]);
        for (size_t k = 0; k < p->n_elems; k++)
            host_train[p->offset + k] = (2.0f * rng_next_uniform(&r) - 1.0f) * bound;
    }
}

void model_dora_init_magnitudes(model *m, int ui)
{
    const model_unit *u = &m->units[ui];
    if (u->kind != UNIT_LAYER || !m->lora.use_dora)
        return;
    const layer_view *v = &m->layers[u->layer];
    for (int lin = 0; lin < N_LINEARS; lin++) {
        if (!v->mag[lin])
            continue;
        int out, in;
        linear_shape(&m->cfg, lin, &out, &in);
        m->be->dora_norm(m->be, v->mag[lin], NULL, NULL, v->w[lin], out, in);
    }
}

/* modules_to_save resolved into m->lora.save_mask, and what shardtune
 * cannot do with them refused. */
static int check_saved(model *m, const lora_config *lc, const backend *be, errbuf *e)
{
    if (lora_resolve_saved(lc, m->cfg.n_layers, &m->lora.save_mask, e) != 0)
        return -1;
    if (!m->lora.save_mask)
        return 0;
    /* PEFT 0.21 would train a copy and leave the tied twin as it was (it
     * warns), which unties them: refused rather than half-done */
    if (m->cfg.tie_word_embeddings)
        return err_set(e, "%s: embed_tokens or lm_head with tie_word_embeddings (one tensor) is not supported",
                       lc->save_source);
    if (!be->lm_head_xent_dw || !be->embedding_bwd)
        return err_set(e, "%s: not supported yet on the %s backend", lc->save_source, be->name);
    return 0;
}

static int init_tables(model *m, const char *model_dir, const lora_config *lc, int vocab_size, backend *be,
                       errbuf *e)
{
    memset(m, 0, sizeof *m);
    m->be = be;
    if (llama_config_load(model_dir, &m->cfg, e) != 0)
        return -1;
    m->base_vocab_size = m->cfg.vocab_size;
    if (vocab_size > m->cfg.vocab_size)
        m->cfg.vocab_size = vocab_size;
    m->lora = *lc;
    m->lora.rules = NULL; /* the caller's: resolved here into lora_mods */
    m->lora.save_names = NULL, m->lora.n_save_names = 0, m->lora.save_source = NULL; /* into save_mask */
    if (m->lora.r <= 0)
        m->lora.target_mask = 0, m->lora.use_dora = 0;
    size_t n_mods = (size_t)m->cfg.n_layers * N_LINEARS;
    m->lora_mods = xcalloc(n_mods + 1, sizeof *m->lora_mods);
    if (lora_resolve(lc, m->cfg.n_layers, m->lora_mods, &m->lora.target_mask, e) != 0) {
        free(m->lora_mods);
        m->lora_mods = NULL;
        return -1;
    }
    if (check_saved(m, lc, be, e) != 0) {
        free(m->lora_mods);
        m->lora_mods = NULL;
        return -1;
    }
    for (size_t i = 0; i < n_mods; i++)
        m->lora_r_max = m->lora_mods[i].r > m->lora_r_max ? m->lora_mods[i].r : m->lora_r_max;
    build_units(m);
    m->layers = xcalloc((size_t)m->cfg.n_layers, sizeof *m->layers);
    for (int l = 0; l < m->cfg.n_layers; l++)
        m->layers[l].lora = m->lora_mods + (size_t)l * N_LINEARS;
    float *inv = xmalloc((size_t)m->cfg.head_dim / 2 * sizeof(float));
    rope_inv_freq(&m->cfg, inv);
    m->inv_freq = be->alloc(be, (size_t)m->cfg.head_dim / 2 * sizeof(float), MEM_FROZEN);
    be->copy_to_device(be, m->inv_freq, inv, (size_t)m->cfg.head_dim / 2 * sizeof(float));
    free(inv);
    return 0;
}

int model_init(model *m, const char *model_dir, const lora_config *lc, int vocab_size, const safetensors *adapter,
               backend *be, errbuf *e)
{
    /* an adapter that saved the embedding layers fixes the vocabulary */
    const st_tensor *emb = adapter ? safetensors_find(adapter, "base_model.model.model.embed_tokens.weight") : NULL;
    if (emb && emb->n_dims == 2 && emb->shape[0] > vocab_size)
        vocab_size = (int)emb->shape[0];
    if (init_tables(m, model_dir, lc, vocab_size, be, e) != 0)
        return -1;
    safetensors *st = safetensors_open_dir(model_dir, e);
    if (!st)
        return -1;
    int rc = assign_storage(m, st, adapter, model_dir, e);
    safetensors_close(st);
    return rc;
}

int model_init_planned(model *m, const char *config_path, const lora_config *lc, storage_dtype dt, backend *be,
                       errbuf *e)
{
    if (init_tables(m, config_path, lc, 0, be, e) != 0)
        return -1;
    assign_planned_storage(m, dt);
    return 0;
}

void model_quantize_linears(model *m, storage_dtype q4)
{
    /* the layers' 2-D frozen tensors are the seven linear weights; norms,
     * embeddings and lm_head stay in their dtype, as bitsandbytes leaves them */
    for (int ui = 0; ui < m->n_units; ui++) {
        model_unit *u = &m->units[ui];
        if (u->kind != UNIT_LAYER)
            continue;
        u->n_storage_bytes = 0;
        for (int i = 0; i < u->n_params; i++) {
            param_entry *p = &u->params[i];
            if (p->trainable)
                continue;
            if (p->n_dims == 2)
                p->storage = q4;
            p->storage_offset = u->n_storage_bytes;
            u->n_storage_bytes += storage_bytes(p->storage, p->n_elems);
        }
    }
}

/* ------------------------------------------------------------------ */
/* activations                                                         */

struct layer_acts {
    float *xn1, *rstd1, *q, *k, *v, *attn, *lse, *x_mid, *xn2, *rstd2, *gate, *up, *act;
    float *xa[N_LINEARS]; /* A dropout(x), [N, r], kept for dB */
    /* DoRA (NULL without): t = W xd + s B A xd [N, out], kept for dm; the
     * row norms of W + s B A and g = m / norm [out] */
    float *dora_t[N_LINEARS], *dora_norm[N_LINEARS], *dora_g[N_LINEARS];
    int dora_norms_ready; /* generation: norm and g hold this layer's already */
};

typedef struct backward_scratch {
    float *d_resid, *d_xn, *d_attn, *dq, *dk, *dv, *d_act, *d_gate, *d_up, *dxa, *xd;
    float *dyg, *wc; /* DoRA: g-scaled dy (or s B A xd in forward) [N, widest]; a block of W + s B A rows */
    float *h, *rstd_f, *dh, *discard;
    float *x_wide; /* a narrow layer input widened to compute with (NULL when inputs are fp32) */
} backward_scratch;

static float *act_alloc(model *m, size_t n_elems) { return m->be->alloc(m->be, n_elems * sizeof(float), MEM_ACTIVATIONS); }

static void acts_alloc(model *m, layer_acts *a, size_t n)
{
    const llama_config *c = &m->cfg;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t D = c->hidden_size, I = c->intermediate_size;
    a->xn1 = act_alloc(m, n * D);
    a->rstd1 = act_alloc(m, n);
    a->q = act_alloc(m, n * q_dim);
    a->k = act_alloc(m, n * kv_dim);
    a->v = act_alloc(m, n * kv_dim);
    a->attn = act_alloc(m, n * q_dim);
    a->lse = act_alloc(m, n * c->n_heads);
    a->x_mid = act_alloc(m, n * D);
    a->xn2 = act_alloc(m, n * D);
    a->rstd2 = act_alloc(m, n);
    a->gate = act_alloc(m, n * I);
    a->up = act_alloc(m, n * I);
    a->act = act_alloc(m, n * I);
    for (int lin = 0; lin < N_LINEARS; lin++) {
        int targeted = (m->lora.target_mask & (1u << lin)) != 0, out, in;
        linear_shape(c, lin, &out, &in);
        a->xa[lin] = targeted ? act_alloc(m, n * m->lora_r_max) : NULL;
        int dora = targeted && m->lora.use_dora;
        a->dora_t[lin] = dora ? act_alloc(m, n * (size_t)out) : NULL;
        a->dora_norm[lin] = dora ? act_alloc(m, (size_t)out) : NULL;
        a->dora_g[lin] = dora ? act_alloc(m, (size_t)out) : NULL;
    }
}

static void acts_free(model *m, layer_acts *a)
{
    float **fields[] = {&a->xn1, &a->rstd1, &a->q, &a->k, &a->v, &a->attn, &a->lse,
                        &a->x_mid, &a->xn2, &a->rstd2, &a->gate, &a->up, &a->act};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        m->be->free(m->be, *fields[i]);
    for (int lin = 0; lin < N_LINEARS; lin++) {
        float *per_linear[] = {a->xa[lin], a->dora_t[lin], a->dora_norm[lin], a->dora_g[lin]};
        for (size_t i = 0; i < sizeof per_linear / sizeof per_linear[0]; i++)
            m->be->free(m->be, per_linear[i]);
    }
}

static void release_activations(model *m)
{
    if (!m->acts)
        return;
    int n_sets = m->checkpointing ? 1 : m->cfg.n_layers;
    for (int i = 0; i < n_sets; i++)
        acts_free(m, &m->acts[i]);
    free(m->acts);
    m->acts = NULL;
    for (int l = 0; l <= m->cfg.n_layers; l++)
        m->be->free(m->be, m->layer_inputs[l]);
    free(m->layer_inputs);
    backward_scratch *s = m->scratch;
    float **fields[] = {&s->d_resid, &s->d_xn, &s->d_attn, &s->dq, &s->dk, &s->dv, &s->d_act, &s->d_gate,
                        &s->d_up, &s->dxa, &s->xd, &s->h, &s->rstd_f, &s->dh, &s->discard, &s->x_wide,
                        &s->dyg, &s->wc};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        m->be->free(m->be, *fields[i]);
    free(s);
    m->scratch = NULL;
}

void model_prepare(model *m, int batch, int seq, int checkpointing)
{
    if (m->acts && m->max_batch >= batch && m->max_seq >= seq && m->checkpointing == checkpointing)
        return;
    release_activations(m);
    const llama_config *c = &m->cfg;
    size_t n = (size_t)batch * seq;
    size_t q_dim = (size_t)c->n_heads * c->head_dim, kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    size_t D = c->hidden_size, I = c->intermediate_size;
    size_t widest = D > I ? D : I;
    widest = widest > q_dim ? widest : q_dim;
    m->max_batch = batch, m->max_seq = seq, m->checkpointing = checkpointing;
    int n_sets = checkpointing ? 1 : c->n_layers;
    m->acts = xcalloc((size_t)n_sets, sizeof *m->acts);
    for (int i = 0; i < n_sets; i++)
        acts_alloc(m, &m->acts[i], n);
    m->layer_inputs = xcalloc((size_t)c->n_layers + 1, sizeof *m->layer_inputs);
    for (int l = 0; l <= c->n_layers; l++)
        m->layer_inputs[l] = m->be->alloc(m->be, storage_bytes(m->be->activation_dtype, n * D), MEM_ACTIVATIONS);
    backward_scratch *s = xcalloc(1, sizeof *s);
    s->d_resid = act_alloc(m, n * D);
    s->d_xn = act_alloc(m, n * D);
    s->d_attn = act_alloc(m, n * q_dim);
    s->dq = act_alloc(m, n * q_dim);
    s->dk = act_alloc(m, n * kv_dim);
    s->dv = act_alloc(m, n * kv_dim);
    s->d_act = act_alloc(m, n * I);
    s->d_gate = act_alloc(m, n * I);
    s->d_up = act_alloc(m, n * I);
    s->dxa = act_alloc(m, n * (m->lora_r_max > 0 ? m->lora_r_max : 1));
    s->xd = act_alloc(m, n * widest);
    s->h = act_alloc(m, n * D);
    s->rstd_f = act_alloc(m, n);
    s->dh = act_alloc(m, n * D);
    s->discard = act_alloc(m, n * D);
    s->x_wide = m->be->activation_dtype == DT_F32 ? NULL : act_alloc(m, n * D);
    s->dyg = m->lora.use_dora ? act_alloc(m, n * widest) : NULL;
    s->wc = m->lora.use_dora ? act_alloc(m, (size_t)DORA_NORM_ROWS * widest) : NULL;
    m->scratch = s;
}

/* ------------------------------------------------------------------ */
/* one linear layer with its adapter                                   */

static int has_dropout(const model *m) { return m->training && m->lora.dropout > 0.0f; }

static uint64_t dropout_key(const model *m, int layer, linear_id lin)
{
    return rng_hash(m->dropout_key, (uint64_t)layer * N_LINEARS + lin);
}

/* c = a op(W) + beta c for linear lin's weight W [out, in] (op: W^T
 * with trans_w), in the format its unit keeps it (backend weight_dtype). */
static void matmul_weight(backend *be, const layer_view *v, linear_id lin, int trans_w, int m, int n, int k,
                          const float *a, float beta, float *c)
{
    if (v->w_bf16[lin])
        be->matmul_bf16_weight(be, trans_w, m, n, k, a, k, 0, NULL, 0, v->w_bf16[lin], v->w_ld[lin], beta, c, n);
    else
        be->matmul(be, 0, trans_w, m, n, k, 1.0f, a, k, v->w[lin], v->w_ld[lin], beta, c, n);
}

/* A bf16 weight with room for its adapter (param_entry.fused_r): s B
 * (forward) or A (backward) written beside W from the adapter as it is now
 * (the optimizer moves it every step; a gathered unit arrives without it). */
static int fuse_adapter(backend *be, const layer_view *v, linear_id lin, int out, int in, int backward)
{
    const int r = v->lora[lin].r;
    if (!v->w_bf16[lin] || v->w_ld[lin] != in + r || !v->lora_a[lin])
        return 0;
    be->lora_fuse_bf16(be, v->w_bf16[lin], v->w_ld[lin], out, in, r, backward ? v->lora_a[lin] : NULL,
                       backward ? NULL : v->lora_b[lin], v->lora[lin].scale);
    return 1;
}

/* DoRA's row norms ||W + s B A|| and, when g is not NULL, g = m / norm
 * (PEFT's get_weight_norm), DORA_NORM_ROWS rows at a time so that
 * W + s B A never exists whole. */
static void dora_weight_norm(model *m, const layer_view *v, linear_id lin, float *norm, float *g)
{
    backend *be = m->be;
    float *wc = ((backward_scratch *)m->scratch)->wc;
    int out, in, r = v->lora[lin].r;
    linear_shape(&m->cfg, lin, &out, &in);
    for (int r0 = 0; r0 < out; r0 += DORA_NORM_ROWS) {
        int k = out - r0 < DORA_NORM_ROWS ? out - r0 : DORA_NORM_ROWS;
        be->copy(be, wc, v->w[lin] + (size_t)r0 * in, (size_t)k * in * sizeof(float));
        be->matmul(be, 0, 0, k, in, r, v->lora[lin].scale, v->lora_b[lin] + (size_t)r0 * r, r, v->lora_a[lin], in,
                   1.0f, wc, in);
        be->dora_norm(be, norm + r0, g ? g + r0 : NULL, g ? v->mag[lin] + r0 : NULL, wc, k, in);
    }
}

/* LoRA: y (= or +=) x W^T + s * (xd A^T) B^T, xd = dropout(x); a->xa[lin]
 * receives xd A^T.
 * DoRA, as PEFT's DoraLinearLayer: g = m / ||W + s B A||_row, the norm a
 * constant for the gradient (PEFT detaches it).  Without dropout (or in
 * eval) y = g (W x + s B A x).  With dropout PEFT recomputes the base on
 * the dropped input: y = W x + (g - 1) W xd + g s B A xd.  Either way
 * t = W xd + s B A xd is kept: dm = sum over positions of dy t / norm. */
static void linear_fwd(model *m, int layer, linear_id lin, const float *x, int n, float *y, int accumulate,
                       layer_acts *a)
{
    backend *be = m->be;
    backward_scratch *s = m->scratch;
    const layer_view *v = &m->layers[layer];
    int out, in;
    linear_shape(&m->cfg, lin, &out, &in);
    const int dora = v->lora_a[lin] && m->lora.use_dora, drop = has_dropout(m);
    float *t = dora ? a->dora_t[lin] : NULL;
    float *base = dora && !drop ? t : y; /* scaled by g as a whole below */
    const int fused = fuse_adapter(be, v, lin, out, in, 0);
    if (!fused)
        matmul_weight(be, v, lin, 1, n, out, in, x, accumulate && base == y ? 1.0f : 0.0f, base);
    if (!v->lora_a[lin])
        return;
    int r = v->lora[lin].r;
    float *xa = a->xa[lin];
    const float *xd = x;
    if (drop) {
        be->dropout(be, s->xd, x, (size_t)n * in, m->lora.dropout, dropout_key(m, layer, lin));
        xd = s->xd;
    }
    be->matmul(be, 0, 1, n, r, in, 1.0f, xd, in, v->lora_a[lin], in, 0.0f, xa, r);
    if (fused) { /* y (+)= [x | xa] [W | s B]^T */
        be->matmul_bf16_weight(be, 1, n, out, in, x, in, r, xa, r, v->w_bf16[lin], v->w_ld[lin],
                               accumulate ? 1.0f : 0.0f, y, out);
        return;
    }
    if (!dora) {
        be->matmul(be, 0, 1, n, out, r, v->lora[lin].scale, xa, r, v->lora_b[lin], r, 1.0f, y, out);
        return;
    }
    if (!a->dora_norms_ready)
        dora_weight_norm(m, v, lin, a->dora_norm[lin], a->dora_g[lin]);
    const float *g = a->dora_g[lin];
    if (!drop) {
        be->matmul(be, 0, 1, n, out, r, v->lora[lin].scale, xa, r, v->lora_b[lin], r, 1.0f, t, out);
        be->scale_cols(be, y, t, g, 0.0f, n, out, accumulate);
        return;
    }
    float *u = s->dyg; /* s B A xd */
    be->matmul(be, 0, 1, n, out, r, v->lora[lin].scale, xa, r, v->lora_b[lin], r, 0.0f, u, out);
    be->scale_cols(be, y, u, g, 0.0f, n, out, 1);
    matmul_weight(be, v, lin, 1, n, out, in, xd, 0.0f, t);
    be->scale_cols(be, y, t, g, -1.0f, n, out, 1);
    be->add(be, t, u, (size_t)n * out);
}

/* dx (= or +=) dy W, plus the adapter's share; dA and dB (and DoRA's dm)
 * accumulate.  The frozen W gets no gradient work at all.  DoRA: the
 * adapter's branch sees g dy; so does W outside dropout, while with dropout
 * W^T dy reaches x directly and W^T (g - 1) dy through the mask. */
static void linear_bwd(model *m, int layer, linear_id lin, const float *dy, const float *x, const layer_acts *a,
                       int n, float *dx, int accumulate)
{
    backend *be = m->be;
    backward_scratch *s = m->scratch;
    const layer_view *v = &m->layers[layer];
    int out, in;
    linear_shape(&m->cfg, lin, &out, &in);
    const int dora = v->lora_a[lin] && m->lora.use_dora, drop = has_dropout(m);
    const float *dy_adapter = dy, *dy_base = dy;
    if (dora) {
        be->col_dot(be, v->grad_mag[lin], dy, a->dora_t[lin], a->dora_norm[lin], n, out);
        be->scale_cols(be, s->dyg, dy, a->dora_g[lin], 0.0f, n, out, 0);
        dy_adapter = s->dyg;
        if (!drop)
            dy_base = s->dyg;
    }
    /* without dropout the adapter's dxa A joins dy W in one product, last */
    const int fused = !drop && fuse_adapter(be, v, lin, out, in, 1);
    if (!fused)
        matmul_weight(be, v, lin, 0, n, in, out, dy_base, accumulate ? 1.0f : 0.0f, dx);
    if (!v->lora_a[lin])
        return;
    int r = v->lora[lin].r;
    float sc = v->lora[lin].scale;
    const float *xa = a->xa[lin];
    be->matmul(be, 1, 0, out, r, n, sc, dy_adapter, out, xa, r, 1.0f, v->grad_b[lin], r); /* dB += s dy^T xa */
    be->matmul(be, 0, 0, n, r, out, sc, dy_adapter, out, v->lora_b[lin], r, 0.0f, s->dxa, r); /* dxa = s dy B */
    const float *xd = x;
    if (drop) {
        be->dropout(be, s->xd, x, (size_t)n * in, m->lora.dropout, dropout_key(m, layer, lin));
        xd = s->xd;
    }
    be->matmul(be, 1, 0, r, in, n, 1.0f, s->dxa, r, xd, in, 1.0f, v->grad_a[lin], in); /* dA += dxa^T xd */
    if (drop) {
        /* d dropout(x) = dxa A (+ (g - 1) dy W with DoRA), then the same mask and scale */
        float beta = 0.0f;
        if (dora) {
            be->scale_cols(be, s->dyg, dy, a->dora_g[lin], -1.0f, n, out, 0);
            matmul_weight(be, v, lin, 0, n, in, out, s->dyg, 0.0f, s->xd);
            beta = 1.0f;
        }
        be->matmul(be, 0, 0, n, in, r, 1.0f, s->dxa, r, v->lora_a[lin], in, beta, s->xd, in);
        be->dropout(be, s->xd, s->xd, (size_t)n * in, m->lora.dropout, dropout_key(m, layer, lin));
        be->add(be, dx, s->xd, (size_t)n * in);
    } else if (fused) { /* dx (+)= [dy | dxa] [W ; A] */
        be->matmul_bf16_weight(be, 0, n, in, out, dy_base, out, r, s->dxa, r, v->w_bf16[lin], v->w_ld[lin],
                               accumulate ? 1.0f : 0.0f, dx, in);
    } else {
        be->matmul(be, 0, 0, n, in, r, 1.0f, s->dxa, r, v->lora_a[lin], in, 1.0f, dx, in);
    }
}

/* ------------------------------------------------------------------ */
/* a decoder layer                                                     */

static void layer_fwd(model *m, int l, layer_acts *a, const model_batch *b, const float *x_in, float *x_out)
{
    backend *be = m->be;
    const llama_config *c = &m->cfg;
    const layer_view *v = &m->layers[l];
    int n = b->batch * b->seq;
    size_t D = c->hidden_size;

    be->rmsnorm_fwd(be, a->xn1, a->rstd1, x_in, v->attn_norm, n, (int)D, c->rms_norm_eps);
    linear_fwd(m, l, LIN_Q, a->xn1, n, a->q, 0, a);
    linear_fwd(m, l, LIN_K, a->xn1, n, a->k, 0, a);
    linear_fwd(m, l, LIN_V, a->xn1, n, a->v, 0, a);
    be->rope(be, a->q, b->pos, m->inv_freq, n, c->n_heads, c->head_dim, 0);
    be->rope(be, a->k, b->pos, m->inv_freq, n, c->n_kv_heads, c->head_dim, 0);
    be->attention_fwd(be, a->attn, a->lse, a->q, a->k, a->v, b->seg, b->batch, b->seq, c->n_heads,
                      c->n_kv_heads, c->head_dim);
    be->copy(be, a->x_mid, x_in, (size_t)n * D * sizeof(float));
    linear_fwd(m, l, LIN_O, a->attn, n, a->x_mid, 1, a);

    be->rmsnorm_fwd(be, a->xn2, a->rstd2, a->x_mid, v->mlp_norm, n, (int)D, c->rms_norm_eps);
    linear_fwd(m, l, LIN_GATE, a->xn2, n, a->gate, 0, a);
    linear_fwd(m, l, LIN_UP, a->xn2, n, a->up, 0, a);
    be->swiglu_fwd(be, a->act, a->gate, a->up, (size_t)n * c->intermediate_size);
    be->copy(be, x_out, a->x_mid, (size_t)n * D * sizeof(float));
    linear_fwd(m, l, LIN_DOWN, a->act, n, x_out, 1, a);
}

/* d_resid holds d(layer output) on entry and d(layer input) on return. */
static void layer_bwd(model *m, int l, const layer_acts *a, const model_batch *b, const float *x_in,
                      float *d_resid)
{
    backend *be = m->be;
    backward_scratch *s = m->scratch;
    const llama_config *c = &m->cfg;
    const layer_view *v = &m->layers[l];
    int n = b->batch * b->seq;
    int D = c->hidden_size;

    /* MLP: x_out = x_mid + down(silu(gate(xn2)) * up(xn2)) */
    linear_bwd(m, l, LIN_DOWN, d_resid, a->act, a, n, s->d_act, 0);
    be->swiglu_bwd(be, s->d_gate, s->d_up, s->d_act, a->gate, a->up, (size_t)n * c->intermediate_size);
    linear_bwd(m, l, LIN_GATE, s->d_gate, a->xn2, a, n, s->d_xn, 0);
    linear_bwd(m, l, LIN_UP, s->d_up, a->xn2, a, n, s->d_xn, 1);
    be->rmsnorm_bwd(be, d_resid, s->d_xn, a->x_mid, v->mlp_norm, a->rstd2, n, D);

    /* attention: x_mid = x_in + o(attn(rope(q(xn1)), rope(k(xn1)), v(xn1))) */
    linear_bwd(m, l, LIN_O, d_resid, a->attn, a, n, s->d_attn, 0);
    be->attention_bwd(be, s->dq, s->dk, s->dv, s->d_attn, a->attn, a->lse, a->q, a->k, a->v, b->seg,
                      b->batch, b->seq, c->n_heads, c->n_kv_heads, c->head_dim);
    be->rope(be, s->dq, b->pos, m->inv_freq, n, c->n_heads, c->head_dim, 1);
    be->rope(be, s->dk, b->pos, m->inv_freq, n, c->n_kv_heads, c->head_dim, 1);
    linear_bwd(m, l, LIN_Q, s->dq, a->xn1, a, n, s->d_xn, 0);
    linear_bwd(m, l, LIN_K, s->dk, a->xn1, a, n, s->d_xn, 1);
    linear_bwd(m, l, LIN_V, s->dv, a->xn1, a, n, s->d_xn, 1);
    be->rmsnorm_bwd(be, d_resid, s->d_xn, x_in, v->attn_norm, a->rstd1, n, D);
}

/* ------------------------------------------------------------------ */
/* a micro-batch                                                       */

/* Layer l's input as fp32: the kept buffer itself, or (narrow inputs) its
 * widened copy in the scratch, valid until the next call. */
static const float *layer_input(model *m, int l, const model_batch *b)
{
    backend *be = m->be;
    if (be->activation_dtype == DT_F32)
        return m->layer_inputs[l];
    backward_scratch *s = m->scratch;
    be->to_f32(be, s->x_wide, m->layer_inputs[l], be->activation_dtype, (size_t)b->batch * b->seq * m->cfg.hidden_size);
    return s->x_wide;
}

/* Where to compute layer l's input (the embedding's or a layer's output),
 * then layer_input_store keeps it: in place, or narrowed. */
static float *layer_output_target(model *m, int l)
{
    backward_scratch *s = m->scratch;
    return m->be->activation_dtype == DT_F32 ? m->layer_inputs[l] : s->discard;
}

static void layer_input_store(model *m, int l, const model_batch *b)
{
    backend *be = m->be;
    backward_scratch *s = m->scratch;
    if (be->activation_dtype != DT_F32)
        be->from_f32(be, m->layer_inputs[l], s->discard, be->activation_dtype,
                     (size_t)b->batch * b->seq * m->cfg.hidden_size);
}

void model_unit_forward(model *m, int ui, const model_batch *b)
{
    const model_unit *u = &m->units[ui];
    if (b->batch > m->max_batch || b->seq > m->max_seq)
        model_prepare(m, b->batch, b->seq, m->checkpointing);
    if (u->kind == UNIT_EMBEDDING) {
        m->be->embedding_fwd(m->be, layer_output_target(m, 0), b->ids, m->embed, b->batch * b->seq,
                             m->cfg.hidden_size);
        layer_input_store(m, 0, b);
    } else if (u->kind == UNIT_LAYER) {
        int l = u->layer;
        layer_fwd(m, l, &m->acts[m->checkpointing ? 0 : l], b, layer_input(m, l, b), layer_output_target(m, l + 1));
        layer_input_store(m, l + 1, b);
    }
}

double model_head_forward(model *m, const model_batch *b, float grad_scale, int do_backward, float *logits)
{
    backend *be = m->be;
    const llama_config *c = &m->cfg;
    backward_scratch *s = m->scratch;
    int n = b->batch * b->seq;
    int L = c->n_layers;
    const float *x = layer_input(m, L, b);
    be->rmsnorm_fwd(be, s->h, s->rstd_f, x, m->final_norm, n, c->hidden_size, c->rms_norm_eps);
    float *logits_dev = NULL;
    if (logits)
        logits_dev = be->alloc(be, (size_t)n * c->vocab_size * sizeof(float), MEM_ACTIVATIONS);
    double loss_sum;
    if (do_backward && m->lm_head_grad) /* modules_to_save: lm_head's gradient too */
        loss_sum = be->lm_head_xent_dw(be, s->dh, m->lm_head_grad, logits_dev, s->h, m->lm_head, b->targets, n,
                                       c->hidden_size, c->vocab_size, grad_scale);
    else
        loss_sum = be->lm_head_xent(be, do_backward ? s->dh : NULL, logits_dev, s->h, m->lm_head, b->targets, n,
                                    c->hidden_size, c->vocab_size, grad_scale);
    if (logits) {
        be->copy_to_host(be, logits, logits_dev, (size_t)n * c->vocab_size * sizeof(float));
        be->free(be, logits_dev);
    }
    if (do_backward) {
        be->zero(be, s->d_resid, (size_t)n * c->hidden_size * sizeof(float));
        be->rmsnorm_bwd(be, s->d_resid, s->dh, x, m->final_norm, s->rstd_f, n, c->hidden_size);
    }
    return loss_sum;
}

void model_unit_backward(model *m, int ui, const model_batch *b)
{
    const model_unit *u = &m->units[ui];
    backward_scratch *s = m->scratch;
    if (u->kind == UNIT_EMBEDDING && m->embed_grad) /* modules_to_save: d_resid is d(embedding output) */
        m->be->embedding_bwd(m->be, m->embed_grad, b->ids, s->d_resid, b->batch * b->seq, m->cfg.hidden_size,
                             m->cfg.pad_token_id);
    if (u->kind != UNIT_LAYER)
        return; /* a frozen embedding has none; the head's backward ran with its forward */
    int l = u->layer;
    layer_acts *a = &m->acts[m->checkpointing ? 0 : l];
    const float *x_in = layer_input(m, l, b);
    if (m->checkpointing) /* recompute this layer's activations */
        layer_fwd(m, l, a, b, x_in, s->discard);
    layer_bwd(m, l, a, b, x_in, s->d_resid);
}

void model_input_grad(const model *m, size_t n_positions, float *host)
{
    const backward_scratch *s = m->scratch;
    m->be->copy_to_host(m->be, host, s->d_resid, n_positions * m->cfg.hidden_size * sizeof(float));
}

/* ------------------------------------------------------------------ */
/* generation                                                          */

struct decode_state {
    int max_len, len;       /* cache capacity and filled positions */
    int n_new;              /* tokens of the step in flight */
    float **k, **v;         /* per layer [max_len, kv_dim] */
    layer_acts acts;        /* scratch for up to max_len new tokens */
    float *x, *h, *rstd;    /* hidden state of the new tokens, final norm */
    float *logits;
    int32_t *ids, *pos;
    /* DoRA: per layer and linear, the norms and g of the first step (the
     * weights do not change while generating) */
    float **dora_norm, **dora_g;
};

void model_decode_begin(model *m, int max_len)
{
    backend *be = m->be;
    const llama_config *c = &m->cfg;
    size_t kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    decode_state *d = xcalloc(1, sizeof *d);
    d->max_len = max_len;
    d->k = xcalloc((size_t)c->n_layers, sizeof *d->k);
    d->v = xcalloc((size_t)c->n_layers, sizeof *d->v);
    for (int l = 0; l < c->n_layers; l++) {
        d->k[l] = act_alloc(m, (size_t)max_len * kv_dim);
        d->v[l] = act_alloc(m, (size_t)max_len * kv_dim);
    }
    acts_alloc(m, &d->acts, (size_t)max_len);
    d->x = act_alloc(m, (size_t)max_len * c->hidden_size);
    d->h = act_alloc(m, (size_t)c->hidden_size);
    d->rstd = act_alloc(m, 1);
    d->logits = act_alloc(m, (size_t)c->vocab_size);
    d->ids = be->alloc(be, (size_t)max_len * sizeof(int32_t), MEM_ACTIVATIONS);
    d->pos = be->alloc(be, (size_t)max_len * sizeof(int32_t), MEM_ACTIVATIONS);
    if (m->lora.use_dora) {
        size_t n_cache = (size_t)c->n_layers * N_LINEARS;
        d->dora_norm = xcalloc(n_cache, sizeof *d->dora_norm);
        d->dora_g = xcalloc(n_cache, sizeof *d->dora_g);
        for (size_t i = 0; i < n_cache; i++) {
            int lin = (int)(i % N_LINEARS), out, in;
            linear_shape(c, lin, &out, &in);
            if (m->lora.target_mask & (1u << lin)) {
                d->dora_norm[i] = act_alloc(m, (size_t)out);
                d->dora_g[i] = act_alloc(m, (size_t)out);
            }
        }
    }
    m->decode = d;
    m->training = 0;
    if (!m->scratch)
        model_prepare(m, 1, 1, 0); /* linear_fwd's scratch: DoRA's norm blocks (dropout's, unused) */
}

static void decode_layer(model *m, int l, int n)
{
    backend *be = m->be;
    const llama_config *c = &m->cfg;
    decode_state *d = m->decode;
    layer_acts this_layer = d->acts, *a = &this_layer;
    if (d->dora_norm) { /* this layer's DoRA norms: computed by the first step, then reused */
        for (int lin = 0; lin < N_LINEARS; lin++) {
            a->dora_norm[lin] = d->dora_norm[(size_t)l * N_LINEARS + lin];
            a->dora_g[lin] = d->dora_g[(size_t)l * N_LINEARS + lin];
        }
        a->dora_norms_ready = d->len > 0;
    }
    const layer_view *v = &m->layers[l];
    size_t kv_dim = (size_t)c->n_kv_heads * c->head_dim;
    float *k_new = d->k[l] + (size_t)d->len * kv_dim, *v_new = d->v[l] + (size_t)d->len * kv_dim;

    be->rmsnorm_fwd(be, a->xn1, a->rstd1, d->x, v->attn_norm, n, c->hidden_size, c->rms_norm_eps);
    linear_fwd(m, l, LIN_Q, a->xn1, n, a->q, 0, a);
    linear_fwd(m, l, LIN_K, a->xn1, n, k_new, 0, a);
    linear_fwd(m, l, LIN_V, a->xn1, n, v_new, 0, a);
    be->rope(be, a->q, d->pos, m->inv_freq, n, c->n_heads, c->head_dim, 0);
    be->rope(be, k_new, d->pos, m->inv_freq, n, c->n_kv_heads, c->head_dim, 0);
    be->attention_decode(be, a->attn, a->q, d->k[l], d->v[l], n, d->len, d->len + n, c->n_heads, c->n_kv_heads,
                         c->head_dim);
    linear_fwd(m, l, LIN_O, a->attn, n, d->x, 1, a);
    be->rmsnorm_fwd(be, a->xn2, a->rstd2, d->x, v->mlp_norm, n, c->hidden_size, c->rms_norm_eps);
    linear_fwd(m, l, LIN_GATE, a->xn2, n, a->gate, 0, a);
    linear_fwd(m, l, LIN_UP, a->xn2, n, a->up, 0, a);
    be->swiglu_fwd(be, a->act, a->gate, a->up, (size_t)n * c->intermediate_size);
    linear_fwd(m, l, LIN_DOWN, a->act, n, d->x, 1, a);
}

void model_decode_unit(model *m, int ui, const int32_t *host_ids, int n_new, float *host_logits)
{
    backend *be = m->be;
    const llama_config *c = &m->cfg;
    decode_state *d = m->decode;
    const model_unit *u = &m->units[ui];
    if (u->kind == UNIT_EMBEDDING) {
        if (d->len + n_new > d->max_len)
            die(EXIT_FAILURE_RUN, "generation: %d positions exceed the cache of %d", d->len + n_new, d->max_len);
        int32_t *pos = xmalloc((size_t)n_new * sizeof *pos);
        for (int i = 0; i < n_new; i++)
            pos[i] = d->len + i;
        be->copy_to_device(be, d->ids, host_ids, (size_t)n_new * sizeof(int32_t));
        be->copy_to_device(be, d->pos, pos, (size_t)n_new * sizeof(int32_t));
        free(pos);
        d->n_new = n_new;
        be->embedding_fwd(be, d->x, d->ids, m->embed, n_new, c->hidden_size);
    } else if (u->kind == UNIT_LAYER) {
        decode_layer(m, u->layer, d->n_new);
    } else {
        const float *last = d->x + (size_t)(d->n_new - 1) * c->hidden_size;
        be->rmsnorm_fwd(be, d->h, d->rstd, last, m->final_norm, 1, c->hidden_size, c->rms_norm_eps);
        be->matmul(be, 0, 1, 1, c->vocab_size, c->hidden_size, 1.0f, d->h, c->hidden_size, m->lm_head,
                   c->hidden_size, 0.0f, d->logits, c->vocab_size);
        be->copy_to_host(be, host_logits, d->logits, (size_t)c->vocab_size * sizeof(float));
        d->len += d->n_new;
    }
}

void model_decode_end(model *m)
{
    decode_state *d = m->decode;
    if (!d)
        return;
    for (int l = 0; l < m->cfg.n_layers; l++) {
        m->be->free(m->be, d->k[l]);
        m->be->free(m->be, d->v[l]);
    }
    free(d->k);
    free(d->v);
    acts_free(m, &d->acts);
    float *bufs[] = {d->x, d->h, d->rstd, d->logits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        m->be->free(m->be, bufs[i]);
    m->be->free(m->be, d->ids);
    m->be->free(m->be, d->pos);
    if (d->dora_norm)
        for (size_t i = 0; i < (size_t)m->cfg.n_layers * N_LINEARS; i++) {
            m->be->free(m->be, d->dora_norm[i]);
            m->be->free(m->be, d->dora_g[i]);
        }
    free(d->dora_norm);
    free(d->dora_g);
    free(d);
    m->decode = NULL;
}

/* ------------------------------------------------------------------ */

size_t model_n_trainable(const model *m)
{
    size_t n = 0;
    for (int ui = 0; ui < m->n_units; ui++)
        n += m->units[ui].n_train_elems;
    return n;
}


void model_free(model *m)
{
    model_decode_end(m);
    release_activations(m);
    for (int ui = 0; ui < m->n_units; ui++)
        free(m->units[ui].params);
    m->be->free(m->be, m->inv_freq);
    free(m->units);
    free(m->layers);
    free(m->lora_mods);
    memset(m, 0, sizeof *m);
}
