/* lora.h: which linear layers carry a LoRA adapter, its scale, its names.
 *
 * y = W x + s * B A dropout(x), s = alpha / r (alpha / sqrt(r) with rsLoRA).
 * The seven linear layers of a Llama block are numbered in the order the
 * flat trainable buffer stores them. */
#ifndef SHARDTUNE_LORA_H
#define SHARDTUNE_LORA_H

#include <stddef.h>

#include "log.h"

typedef enum linear_id { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, N_LINEARS } linear_id;

typedef struct lora_config {
    int r;
    float alpha;
    float dropout;
    int use_rslora;
    unsigned target_mask; /* bit (1 << linear_id) */
} lora_config;

#define LORA_ALL_LINEAR ((1u << N_LINEARS) - 1u)

/* "q_proj", ... as Hugging Face names the modules. */
const char *lora_module_name(linear_id lin);
/* "self_attn.q_proj", "mlp.down_proj": the path inside a decoder layer. */
const char *lora_module_path(linear_id lin);
float lora_scale(const lora_config *lc);
/* "all-linear", or a comma-separated list of module names (q_proj, ...).
 * lm_head is never a target.  Error naming the bad entry. */
int lora_parse_targets(const char *spec, unsigned *mask, errbuf *e);
/* PEFT's key: base_model.model.model.layers.{layer}.{path}.lora_{A|B}.weight */
void lora_peft_key(char *buf, size_t n_bytes, int layer, linear_id lin, char a_or_b);

#endif
