/* lora.h: which linear layers carry a LoRA adapter, its scale, its names.
 *
 * y = W x + s * B A dropout(x), s = alpha / r (alpha / sqrt(r) with rsLoRA).
 * With DoRA (use_dora) each targeted layer also has a magnitude m [out] and
 * computes PEFT's DoraLinearLayer (model.c).
 * The seven linear layers of a Llama block are numbered in the order the
 * flat trainable buffer stores them. */
#ifndef SHARDTUNE_LORA_H
#define SHARDTUNE_LORA_H

#include <stddef.h>

#include "log.h"

typedef enum linear_id { LIN_Q, LIN_K, LIN_V, LIN_O, LIN_GATE, LIN_UP, LIN_DOWN, N_LINEARS } linear_id;

/* PEFT's target rules as an adapter_config.json states them.  PEFT decides
 * module by module from the full name ("model.layers.3.mlp.down_proj"), so
 * the rules are kept as written and resolved once the model's layer count is
 * known (lora_resolve). */
typedef struct lora_name_set {
    char *regex;      /* a string: re.fullmatch on the full name */
    char **names;     /* a list: the full name equals one or ends in "." + one */
    size_t n_names;
} lora_name_set;

typedef struct lora_pattern {
    char *key;        /* re.match("(.*\.)?(" key ")$", full name) */
    double value;
} lora_pattern;

typedef struct lora_rules {
    char *source;                  /* the file, for messages */
    lora_name_set targets;         /* target_modules */
    lora_name_set exclude;         /* exclude_modules (none: nothing excluded) */
    int *layers;                   /* layers_to_transform (list targets only); */
    size_t n_layers;               /* none: every layer */
    char **layers_pattern;         /* where the layer index stands (none: the */
    size_t n_layers_pattern;       /* first ".name.N." of the full name) */
    lora_pattern *rank_pattern;    /* in file order: the first key that */
    size_t n_rank_pattern;         /* matches a module gives its r */
    lora_pattern *alpha_pattern;
    size_t n_alpha_pattern;
} lora_rules;

/* PEFT's modules_to_save that shardtune trains: a full trainable copy of
 * the module, saved whole under the module's own key. */
enum { LORA_SAVE_EMBED = 1u, LORA_SAVE_LM_HEAD = 2u };

typedef struct lora_config {
    int r;
    float alpha;
    float dropout;
    int use_rslora;
    int use_dora;
    unsigned target_mask; /* bit (1 << linear_id) */
    lora_rules *rules;    /* an adapter's (owned; lora_config_free): which layers
                           * and modules, r and alpha per module.  NULL: the
                           * modules of target_mask in every layer, r and alpha */
    char **save_names;    /* modules_to_save as written (owned; lora_config_free) */
    size_t n_save_names;
    char *save_source;    /* for messages: "--modules_to_save" or "<adapter_config.json>: modules_to_save" */
    unsigned save_mask;   /* LORA_SAVE_*: the names resolved (lora_resolve_saved) */
} lora_config;

/* One linear layer's adapter; r == 0 where it has none. */
typedef struct lora_module {
    int r;
    float alpha;
    float scale;
} lora_module;

#define LORA_ALL_LINEAR ((1u << N_LINEARS) - 1u)

/* "q_proj", ... as Hugging Face names the modules. */
const char *lora_module_name(linear_id lin);
/* "self_attn.q_proj", "mlp.down_proj": the path inside a decoder layer. */
const char *lora_module_path(linear_id lin);
/* "all-linear", or a comma-separated list of module names (q_proj, ...).
 * lm_head is never a target.  Error naming the bad entry. */
int lora_parse_targets(const char *spec, unsigned *mask, errbuf *e);
/* PEFT's key: base_model.model.model.layers.{layer}.{path}.lora_{A|B}.weight,
 * or for 'M' (DoRA's magnitude) ...{path}.lora_magnitude_vector, as
 * save_pretrained writes them. */
void lora_peft_key(char *buf, size_t n_bytes, int layer, linear_id lin, char a_or_b);
/* The adapter of every linear layer of an n_layers Llama:
 * mods[layer * N_LINEARS + lin], and in *mask the linear ids targeted in
 * some layer.  With rules, PEFT 0.21's own matching over LlamaForCausalLM's
 * module names (check_target_module_exists, get_pattern_key); a target that
 * is not one of a block's seven linear layers, or targets that match none,
 * are refused with a line naming the file, the key and the module. */
int lora_resolve(const lora_config *lc, int n_layers, lora_module *mods, unsigned *mask, errbuf *e);
/* --modules_to_save: a comma-separated list of names into lc (an empty
 * spec: none). */
void lora_parse_modules_to_save(const char *spec, lora_config *lc);
/* PEFT 0.21's matching of modules_to_save (_set_trainable: a module is
 * wrapped when its name in the PeftModel ends with one of the names) over
 * LlamaForCausalLM's modules, into *save (LORA_SAVE_*).  A name that
 * matches nothing, or a module other than embed_tokens and lm_head, is
 * refused with a line naming lc->save_source and the module. */
int lora_resolve_saved(const lora_config *lc, int n_layers, unsigned *save, errbuf *e);
void lora_config_free(lora_config *lc);

#endif
