/* hf_config.h: the config.json of a Hugging Face LlamaForCausalLM. */
#ifndef SHARDTUNE_HF_CONFIG_H
#define SHARDTUNE_HF_CONFIG_H

#include "log.h"

typedef enum { ROPE_DEFAULT, ROPE_LLAMA3 } rope_kind;

typedef struct llama_config {
    int hidden_size;
    int intermediate_size;
    int n_layers;      /* num_hidden_layers */
    int n_heads;       /* num_attention_heads */
    int n_kv_heads;    /* num_key_value_heads (defaults to n_heads) */
    int head_dim;      /* head_dim (defaults to hidden_size / n_heads) */
    int vocab_size;
    int max_position_embeddings;
    int tie_word_embeddings; /* 0/1, default 0 as transformers' LlamaConfig */
    int bos_token_id, eos_token_id, pad_token_id; /* -1 when absent/null */
    float rms_norm_eps;
    float rope_theta;
    /* rope_scaling (or newer transformers' rope_parameters) */
    rope_kind rope_type;
    float rope_factor;
    float rope_low_freq_factor;
    float rope_high_freq_factor;
    int rope_original_max_position_embeddings;
    char torch_dtype[16]; /* "float32", "bfloat16", ... or "" */
    /* quantization_config of a checkpoint transformers saved with
     * bitsandbytes 4-bit weights (a "*-bnb-4bit" model): its linear
     * weights are stored as codes + block state (src/weight4_bnb.h) */
    int bnb_4bit;              /* load_in_4bit */
    char bnb_4bit_quant_type[8]; /* "nf4" or "fp4" */
    int bnb_4bit_nested;       /* bnb_4bit_use_double_quant */
} llama_config;

/* Reads DIR/config.json or a config.json path.  Rejects what shardtune
 * cannot run (model_type other than llama, unknown rope type, sizes that do
 * not divide) with a message naming the file and the field. */
int llama_config_load(const char *path, llama_config *cfg, errbuf *e);
/* Writes config.json for cfg (architectures LlamaForCausalLM). */
int llama_config_save(const llama_config *cfg, const char *path, errbuf *e);

#endif
