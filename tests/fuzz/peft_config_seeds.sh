#!/bin/sh
# peft_config_seeds.sh DIR: the seed inputs of the adapter_config.json fuzz
# target: the forms tests/ref/make_adapter_forms.py has PEFT write (names,
# all-linear, a regex, layers, full paths, exclusions, rank and alpha
# patterns, rsLoRA, DoRA, modules_to_save) as PEFT writes them, and the
# ones shardtune or PEFT refuse.
set -eu
mkdir -p "$1"
n=0
while IFS= read -r rest; do
    case $rest in '#'*|'') continue ;; esac
    n=$((n + 1))
    printf '{"peft_type":"LORA","task_type":"CAUSAL_LM","r":4,"lora_alpha":8,"lora_dropout":0.0,"bias":"none",%s}\n' \
        "$rest" >"$1/config_$n.json"
done <<'FORMS'
"target_modules":["q_proj","v_proj","down_proj"],"fan_in_fan_out":false,"use_rslora":false,"use_dora":false
"target_modules":"all-linear"
"target_modules":"model\\.layers\\.1\\.self_attn\\.(q|k)_proj|.*\\.0\\.mlp\\.(gate|down)_proj"
"target_modules":["q_proj","o_proj","up_proj"],"layers_to_transform":[1],"layers_pattern":"layers"
"target_modules":["v_proj","gate_proj"],"layers_to_transform":0
"target_modules":["model.layers.0.self_attn.q_proj","layers.1.mlp.up_proj","self_attn.v_proj"]
"target_modules":"all-linear","exclude_modules":["o_proj","model.layers.1.mlp.gate_proj"]
"target_modules":["q_proj","k_proj","v_proj","o_proj","gate_proj","up_proj","down_proj"],"exclude_modules":".*\\.0\\.self_attn\\.[qk]_proj"
"target_modules":["q_proj","v_proj"],"rank_pattern":{"layers.0.self_attn.q_proj":2,"q_proj":8},"alpha_pattern":{"v_proj":16,".*\\.1\\.self_attn\\.o_proj":5}
"target_modules":["k_proj","gate_proj"],"use_rslora":true,"use_dora":true,"rank_pattern":{"k_proj":2},"alpha_pattern":{"gate_proj":4}
"target_modules":["q_proj"],"modules_to_save":["lm_head","embed_tokens"]
# refused
"target_modules":["q_proj","lm_head"]
"target_modules":["q_proj","mlp"]
"target_modules":["query_key_value"]
"target_modules":["q_proj"],"rank_pattern":{"q_proj":0}
"target_modules":".*q_proj","layers_to_transform":[0]
"target_modules":["q_proj"],"fan_in_fan_out":true
"target_modules":["q_proj"],"modules_to_save":"classifier"
"target_modules":"(unclosed"
FORMS
printf '{"peft_type":"PREFIX_TUNING","r":4}' >"$1/not_lora.json"
printf '{"r":0,"target_modules":["q_proj"]}' >"$1/zero_r.json"
# found by fuzzing: jansson's "near '...'" quoted a newline, a two-line error
# (src/log.c err_set); an r over INT_MAX wrapped to another rank, and so
# would a rank_pattern value (io/peft_adapter.c)
printf '{"r":4,"target_modules":["q_proj"],"rank_tn\\\n' >"$1/regress_newline.json"
printf '{"r":42147483648,"target_modules":["q_proj"],"modules_to_save":["embed_tokens"]}' >"$1/regress_r_int.json"
printf '{"r":4,"target_modules":["q_proj"],"rank_pattern":{"q_proj":4294967297}}' >"$1/regress_rank_int.json"
# found while reading: a layers_to_transform index beyond int wrapped onto a real layer (io/peft_adapter.c)
printf '{"r":4,"target_modules":["q_proj"],"layers_to_transform":[4294967296]}' >"$1/regress_layer_int.json"
