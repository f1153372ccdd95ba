#!/bin/sh
# hf_config_seeds.sh DIR [SHARDTUNE]: the seed inputs of the config.json fuzz
# target: with SHARDTUNE the converted stories260K's config.json; configs
# of each form the loader reads (grouped-query attention, llama3
# rope_scaling, rope_parameters, a bitsandbytes 4-bit checkpoint, a list of
# eos ids, dtype); and refused ones.
set -eu
. "$(dirname "$0")/seeds_lib.sh"
mkdir -p "$1"
base='"model_type":"llama","hidden_size":64,"intermediate_size":172,"num_hidden_layers":2,"num_attention_heads":8,"vocab_size":512'
printf '{%s}' "$base" >"$1/minimal.json"
printf '{%s,"num_key_value_heads":2,"head_dim":16,"max_position_embeddings":4096,"rms_norm_eps":1e-5,"tie_word_embeddings":true,"bos_token_id":128000,"eos_token_id":[128001,128009],"pad_token_id":null,"torch_dtype":"bfloat16"}' \
    "$base" >"$1/gqa.json"
printf '{%s,"rope_theta":500000.0,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}' \
    "$base" >"$1/llama3.json"
printf '{%s,"rope_parameters":{"type":"default","rope_theta":10000}}' "$base" >"$1/rope_parameters.json"
printf '{%s,"dtype":"float16","quantization_config":{"quant_method":"bitsandbytes","load_in_4bit":true,"bnb_4bit_quant_type":"nf4","bnb_4bit_use_double_quant":true}}' \
    "$base" >"$1/bnb4.json"
printf '{"model_type":"mistral"}' >"$1/not_llama.json"
printf '{%s,"num_key_value_heads":3}' "$base" >"$1/bad_gqa.json"
printf '{%s,"rope_scaling":{"rope_type":"yarn","factor":2}}' "$base" >"$1/bad_rope.json"
printf '{%s,"hidden_size":2147483648}' "$base" >"$1/bad_size.json"
printf '{%s,' "$base" >"$1/truncated.json"
if [ $# -ge 2 ]; then
    convert_model "$2" "$1/model"
    cp "$1/model/config.json" "$1/stories260K.json"
    rm -rf "$1/model"
fi
# found by fuzzing: a quoted newline made a two-line error (src/log.c err_set)
printf '{%s,"rope_parameters":{"type":"de\\nfault"}}' "$base" >"$1/regress_newline.json"
# found by fuzzing: an eps beyond the fp32 range was accepted as inf (io/hf_config.c get_pos_float)
printf '{%s,"rms_norm_eps":1e55}' "$base" >"$1/regress_eps_inf.json"
