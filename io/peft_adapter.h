/* peft_adapter.h: PEFT LoRA adapter directories in and out.
 *
 * adapter_config.json + adapter_model.safetensors, with PEFT's key names
 * (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight, ...),
 * shapes [r, in] and [out, r], DoRA's ...q_proj.lora_magnitude_vector [out],
 * modules_to_save's copies as base_model.model.lm_head.weight and
 * base_model.model.model.embed_tokens.weight, metadata {"format": "pt"}: what
 * PeftModel.from_pretrained loads and what get_peft_model().save_pretrained
 * writes. */
#ifndef SHARDTUNE_PEFT_ADAPTER_H
#define SHARDTUNE_PEFT_ADAPTER_H

#include "log.h"
#include "lora.h"
#include "model.h"
#include "safetensors.h"

/* Reads DIR/adapter_config.json into lc (r, lora_alpha, lora_dropout,
 * use_rslora, use_dora) and lc->rules: target_modules, exclude_modules,
 * layers_to_transform, layers_pattern, rank_pattern, alpha_pattern as PEFT
 * wrote them, which model_init resolves against the model's layers
 * (lora_resolve); modules_to_save into lc->save_names (lora_resolve_saved);
 * lora_config_free lc after model_init.  Refuses what shardtune cannot
 * honour yet (bias other than "none", fan_in_fan_out ...). */
int peft_adapter_read_config(const char *dir, lora_config *lc, errbuf *e);
/* Opens DIR/adapter_model.safetensors (validated); safetensors_close it. */
safetensors *peft_adapter_open_weights(const char *dir, errbuf *e);
/* Copies the adapter tensors of unit ui into host_train (the unit's fp32
 * trainable layout).  Every adapter tensor of the unit must be there with
 * its shape. */
int peft_adapter_fill_unit(const safetensors *weights, const model *m, int ui, float *host_train, errbuf *e);
/* A full tensor saved beside the LoRA weights: PEFT's saved embedding
 * layers (base_model.model.model.embed_tokens.weight, ...lm_head.weight). */
typedef struct adapter_extra {
    const char *key;
    st_dtype dtype;
    int64_t shape[2];
    const void *data;
} adapter_extra;

/* Writes DIR/adapter_config.json and DIR/adapter_model.safetensors from the
 * full trainable buffers of every unit (host_train[ui], NULL when empty)
 * and n_extra further tensors. */
int peft_adapter_save(const model *m, float *const *host_train, const adapter_extra *extra, int n_extra,
                      const char *dir, const char *base_model_name_or_path, errbuf *e);

#endif
