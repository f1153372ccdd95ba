/* peft_adapter.h: PEFT LoRA adapter directories in and out.
 *
 * adapter_config.json + adapter_model.safetensors, with PEFT's key names
 * (base_model.model.model.layers.{i}.self_attn.q_proj.lora_A.weight, ...),
 * shapes [r, in] and [out, r], metadata {"format": "pt"}: what
 * PeftModel.from_pretrained loads and what get_peft_model().save_pretrained
 * writes. */
#ifndef SHARDTUNE_PEFT_ADAPTER_H
#define SHARDTUNE_PEFT_ADAPTER_H

#include "log.h"
#include "lora.h"
#include "model.h"

/* Reads DIR/adapter_config.json into lc (r, lora_alpha, lora_dropout,
 * use_rslora, target_modules).  Refuses what shardtune cannot honour yet
 * (DoRA, bias other than "none", layers_to_transform, rank_pattern ...). */
int peft_adapter_read_config(const char *dir, lora_config *lc, errbuf *e);
/* Loads the adapter weights of DIR into the model's trainable buffers.
 * Every adapter tensor of the model must be there with its shape. */
int peft_adapter_load(model *m, const char *dir, errbuf *e);
/* Writes DIR/adapter_config.json and DIR/adapter_model.safetensors. */
int peft_adapter_save(const model *m, const char *dir, const char *base_model_name_or_path, errbuf *e);

#endif
