/* model.h: a Llama decoder with LoRA adapters, as units of flat buffers.
 *
 * A unit is what FSDP wraps: the embedding, each decoder layer, and the
 * final norm + lm_head.  Each unit lays its frozen weights end to end in one
 * flat buffer and its trainable adapter tensors in another; the parameter
 * table says where each tensor lives.  The layout depends only on the model
 * and adapter configuration, never on the number of ranks.
 *
 * Forward and backward run unit by unit through the backend interface.
 * With gradient checkpointing only each layer's input is kept and the
 * layer is recomputed in backward. */
#ifndef SHARDTUNE_MODEL_H
#define SHARDTUNE_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "backend.h"
#include "dtype.h"
#include "hf_config.h"
#include "lora.h"
#include "safetensors.h"

typedef enum unit_kind { UNIT_EMBEDDING, UNIT_LAYER, UNIT_HEAD } unit_kind;

typedef struct param_entry {
    char name[96];      /* Hugging Face name (frozen) or PEFT key (trainable) */
    int n_dims;
    int64_t shape[2];
    size_t n_elems;
    size_t offset;      /* trainable: in elements, into the unit's fp32 train and
                         * grad buffers; frozen: in bytes, into its frozen buffer */
    storage_dtype compute;     /* frozen: its format in the frozen buffer, the
                                * backend's weight_dtype for a layer's linear
                                * weights (fp32 under DoRA, whose norms read
                                * W unrounded), else DT_F32 */
    int fused_r;               /* frozen bf16 linear weight of an adapted layer
                                * (no DoRA): kept as [out + r, in + r], row
                                * stride in + r, with room for the adapter's
                                * s B and A (backend lora_fuse_bf16); else 0 */
    storage_dtype storage;     /* frozen: format in the flat storage buffer */
    size_t storage_offset;     /* frozen: byte offset in the flat storage buffer */
    int64_t rows_in_file;      /* frozen: rows the source holds (fewer when the
                                * vocabulary was resized: the rest are the mean) */
    int from_adapter;          /* frozen: read from the adapter (PEFT's saved
                                * embedding layers), not the base model */
    int prequantized;          /* frozen: 4-bit codes and block state as
                                * bitsandbytes saved them (weight4_bnb.h),
                                * read as they are, not quantized on load */
    int trainable;
    int layer;          /* -1 outside decoder layers */
    linear_id lin;      /* for LoRA tensors */
    char lora_ab;       /* 'A' or 'B' for LoRA tensors, 'M' for DoRA's magnitude, 'S' for a
                         * module trained fully (modules_to_save: embed_tokens, lm_head;
                         * storage and rows_in_file then describe its base tensor) */
} param_entry;

/* A frozen tensor's row stride in the frozen buffer: its columns, plus the
 * adapter's r where a bf16 weight carries it (fused_r). */
static inline size_t param_frozen_ld(const param_entry *p) { return (size_t)p->shape[1] + (size_t)p->fused_r; }

typedef struct model_unit {
    unit_kind kind;
    int layer;          /* for UNIT_LAYER */
    size_t n_frozen_elems, n_train_elems;
    size_t n_frozen_bytes;     /* the frozen buffer: each tensor in its compute format */
    size_t n_storage_bytes;    /* frozen weights in their file formats, end to end */
    int n_params;
    param_entry *params;
    /* The full (gathered) buffers the math reads, bound by FSDP before a
     * unit computes and released after (see fsdp.c). */
    void *frozen;       /* frozen weights, each as its param_entry.compute */
    float *train;       /* trainable tensors, NULL when the unit has none */
    float *grad;        /* same layout as train */
} model_unit;

/* Views into a layer unit's buffers (set once from the parameter table). */
typedef struct layer_view {
    float *attn_norm, *mlp_norm;
    float *w[N_LINEARS];                            /* NULL where kept as bf16: */
    uint16_t *w_bf16[N_LINEARS];                    /* (backend weight_dtype DT_BF16) */
    int w_ld[N_LINEARS];                            /* their row strides (in, or in + r: fused_r) */
    float *lora_a[N_LINEARS], *lora_b[N_LINEARS];   /* NULL when not targeted */
    float *grad_a[N_LINEARS], *grad_b[N_LINEARS];
    float *mag[N_LINEARS], *grad_mag[N_LINEARS];    /* DoRA's m [out]; NULL without DoRA */
    const lora_module *lora;                        /* [N_LINEARS]: r, alpha, scale (r 0: none) */
} layer_view;

typedef struct layer_acts layer_acts; /* private to model.c */
typedef struct decode_state decode_state; /* private to model.c */

typedef struct model {
    llama_config cfg;
    int base_vocab_size;  /* config.json's; cfg.vocab_size differs once resized */
    lora_config lora;     /* r, alpha: the adapter's defaults; target_mask: targeted in some layer */
    lora_module *lora_mods; /* [n_layers * N_LINEARS]: each linear layer's adapter (PEFT's
                             * targets, rank_pattern and alpha_pattern resolved) */
    int lora_r_max;
    backend *be;
    int n_units;
    model_unit *units;   /* [0] embedding, [1..L] layers, [L+1] head */
    layer_view *layers;
    float *embed, *final_norm, *lm_head;
    float *embed_grad, *lm_head_grad; /* modules_to_save: their gradients (NULL when frozen) */
    float *inv_freq;     /* head_dim/2 RoPE frequencies (device) */

    /* run state */
    int training;        /* dropout on */
    uint64_t dropout_key;
    int checkpointing;
    int max_batch, max_seq;
    layer_acts *acts;    /* per layer (one shared when checkpointing) */
    void **layer_inputs;  /* per layer input, kept in both modes, in be->activation_dtype */
    void *scratch;
    decode_state *decode; /* generation: KV cache and scratch */
} model;

/* A micro-batch on the device: ids, targets (already shifted; -100 ignored),
 * positions and optional segment ids, all [batch * seq]. */
typedef struct model_batch {
    int batch, seq;
    int32_t *ids, *targets, *pos, *seg;
} model_batch;

/* Reads config.json and the safetensors headers of MODEL_DIR and builds
 * the units' parameter tables (lc->r == 0 or no targets: no adapter).
 * Checks every tensor's presence, shape and dtype (F32, BF16, F16); loads
 * no weight data (fsdp.c does, shard by shard).  vocab_size > config's
 * resizes the embedding and lm_head (new rows: the mean of the old ones,
 * as transformers' resize_token_embeddings).  adapter (may be NULL): a PEFT
 * adapter's weights; embedding layers it saved replace the base model's
 * (and set the vocabulary size). */
int model_init(model *m, const char *model_dir, const lora_config *lc, int vocab_size, const safetensors *adapter,
               backend *be, errbuf *e);
/* PEFT's keys for saved embedding layers ("" when p is not one). */
const char *model_embedding_peft_key(const param_entry *p);
/* A module trained fully (lora_ab 'S'): its base model tensor's name. */
const char *model_saved_base_name(const param_entry *p);
/* A fresh adapter's modules_to_save: the base model's tensors (base, the
 * model directory's files), resized vocabulary rows the mean of the others
 * as for frozen ones, into unit ui's host trainable buffer (PEFT's copy of
 * the module). */
int model_saved_init_unit(const model *m, int ui, const safetensors *base, float *host_train, errbuf *e);
/* True when the adapter must carry the embedding layers (vocab resized or
 * they came from an adapter): PEFT's save_embedding_layers "auto". */
int model_saves_embeddings(const model *m);
/* The same tables from config.json alone (a directory or the file), every
 * frozen tensor taken to be stored as dt: for plans, which load nothing
 * (QLoRA's 4-bit layout then comes from model_quantize_linears, as in runs). */
int model_init_planned(model *m, const char *config_path, const lora_config *lc, storage_dtype dt, backend *be,
                       errbuf *e);
/* QLoRA, after model_init and before fsdp_init: every layer's linear
 * weights are stored as the 4-bit format q4 (weight4.h), quantized when
 * fsdp.c loads them; the storage offsets are laid out again. */
void model_quantize_linears(model *m, storage_dtype q4);
void model_free(model *m);

/* 1 when unit u's storage bytes are its frozen buffer as they are (every
 * tensor stored in its compute format, at its offset): FSDP then binds them
 * without a copy. */
int model_unit_storage_is_compute(const model_unit *u);

/* Points the layer views at a unit's currently bound buffers. */
void model_bind_unit(model *m, int ui);
/* LoRA's initial values for unit ui's whole trainable buffer: A
 * kaiming-uniform (bound 1/sqrt(in)) from a stream of (seed, unit), B zero
 * (DoRA's m zero too: see model_dora_init_magnitudes). */
void model_lora_init_unit(const model *m, int ui, uint64_t seed, float *host_train);
/* DoRA's initial magnitudes for a bound layer unit whose B is zero (a fresh
 * adapter): m = ||W + s B A||_row = ||W||_row, PEFT's initialisation,
 * written into the unit's trainable buffer (on the device).  Nothing for
 * other units or without DoRA. */
void model_dora_init_magnitudes(model *m, int ui);

/* Sizes activation buffers for up to batch x seq positions. */
void model_prepare(model *m, int batch, int seq, int checkpointing);

/* The pieces of a micro-batch, unit by unit (FSDP binds each unit first):
 * forward of the embedding or a layer; the head's forward, which returns
 * the sum of the token losses over non-ignored targets and, when
 * do_backward, starts backward (dh scaled by grad_scale; a trained lm_head's
 * gradient too); and backward of a layer, or of a trained embedding (after
 * the first layer's), whose gradients ACCUMULATE into unit->grad.  When logits
 * is not NULL (host [batch*seq, vocab]) the head copies the logits there. */
void model_unit_forward(model *m, int ui, const model_batch *b);
double model_head_forward(model *m, const model_batch *b, float grad_scale, int do_backward, float *logits);
void model_unit_backward(model *m, int ui, const model_batch *b);
/* After a micro-batch's backward: d(loss)/d(embedding output), the gradient
 * that reached the bottom of the first layer (host [n_positions, hidden]).
 * For the reference tests: it carries every layer's dx, the adapters' too. */
void model_input_grad(const model *m, size_t n_positions, float *host);

/* Generation with a KV cache, unit by unit like training (FSDP binds each
 * unit first): begin sizes the cache for max_len positions; a step feeds
 * n_new tokens (the prompt, then one at a time) through every unit, the
 * head writing the logits of the last one (host [vocab]). */
void model_decode_begin(model *m, int max_len);
void model_decode_unit(model *m, int ui, const int32_t *host_ids, int n_new, float *host_logits);
void model_decode_end(model *m);

size_t model_n_trainable(const model *m);


#endif
