# tests/ref/tiny_model.sh: sourced by tests that must run without Python.
#
# write_tiny_model DIR writes, with nothing but sh, awk and printf:
#   DIR/model/config.json, DIR/model/model.safetensors   a 2-layer Llama, hidden 64,
#       intermediate 96, 4 heads / 2 kv heads, vocab 96, untied lm_head, config in the
#       Llama-2 Hub style (top-level rope_theta, no rope_scaling)
#   DIR/adapter/adapter_config.json, adapter_model.safetensors   PEFT LoRA r=4,
#       alpha=8 on q_proj, v_proj, down_proj, both A and B nonzero
#   DIR/data.jsonl   12 rows of input_ids, two of them with labels holding -100
# The weights are a fixed pseudo-random pattern (a Lehmer generator in awk),
# magnitudes 2^-7..2^-5 with random signs; RMSNorm weights are 1.  The files
# are the same on every machine, so runs on them can be compared bit for bit.

# _tiny_safetensors OUT SEED < "name dim0 [dim1]" lines
_tiny_safetensors() {
    LC_ALL=C awk -v seed="$2" '
    function oct(b) { return sprintf("\\%03o", b) }
    function emit(b) { line = line oct(b); if (++nl == 512) { print line; line = ""; nl = 0 } }
    BEGIN { n = 0 }
    { name[n] = $1; d0[n] = $2; d1[n] = (NF > 2) ? $3 : 0; n++ }
    END {
        hdr = "{\"__metadata__\":{\"format\":\"pt\"}"
        off = 0
        for (i = 0; i < n; i++) {
            cnt = d0[i] * (d1[i] ? d1[i] : 1)
            shape = d1[i] ? d0[i] "," d1[i] : d0[i]
            hdr = hdr ",\"" name[i] "\":{\"dtype\":\"F32\",\"shape\":[" shape "],\"data_offsets\":[" off "," off + 4 * cnt "]}"
            off += 4 * cnt
        }
        hdr = hdr "}"
        while (length(hdr) % 8) hdr = hdr " "
        len = length(hdr)
        for (k = 0; k < 8; k++) { emit(len % 256); len = int(len / 256) }
        print line hdr; line = ""; nl = 0
        x = seed
        for (i = 0; i < n; i++) {
            cnt = d0[i] * (d1[i] ? d1[i] : 1)
            isnorm = (name[i] ~ /norm\.weight$/)
            for (k = 0; k < cnt; k++) {
                if (isnorm) { emit(0); emit(0); emit(128); emit(63); continue }  # 1.0f
                # little-endian float: 23 random mantissa bits, exponent 120 or 121, random sign
                for (b = 0; b < 3; b++) { x = (x * 16807) % 2147483647; emit(int(x / 8388608) % 256) }
                x = (x * 16807) % 2147483647
                emit((int(x / 8388608) % 2) ? 188 : 60)
            }
        }
        if (nl) print line
    }' | while IFS= read -r l; do
        # shellcheck disable=SC2059  # the lines are octal escapes meant for printf
        printf "$l"
    done >"$1"
}

write_tiny_model() {
    _d=$1
    mkdir -p "$_d/model" "$_d/adapter"
    cat > "$_d/model/config.json" <<'EOF'
{
  "architectures": ["LlamaForCausalLM"],
  "model_type": "llama",
  "vocab_size": 96,
  "hidden_size": 64,
  "intermediate_size": 96,
  "num_hidden_layers": 2,
  "num_attention_heads": 4,
  "num_key_value_heads": 2,
  "hidden_act": "silu",
  "max_position_embeddings": 128,
  "rms_norm_eps": 1e-05,
  "rope_theta": 10000.0,
  "rope_scaling": null,
  "attention_bias": false,
  "mlp_bias": false,
  "tie_word_embeddings": false,
  "bos_token_id": 1,
  "eos_token_id": 2,
  "torch_dtype": "float32"
}
EOF
    {
        echo "model.embed_tokens.weight 96 64"
        for l in 0 1; do
            p="model.layers.$l"
            echo "$p.input_layernorm.weight 64"
            echo "$p.self_attn.q_proj.weight 64 64"
            echo "$p.self_attn.k_proj.weight 32 64"
            echo "$p.self_attn.v_proj.weight 32 64"
            echo "$p.self_attn.o_proj.weight 64 64"
            echo "$p.post_attention_layernorm.weight 64"
            echo "$p.mlp.gate_proj.weight 96 64"
            echo "$p.mlp.up_proj.weight 96 64"
            echo "$p.mlp.down_proj.weight 64 96"
        done
        echo "model.norm.weight 64"
        echo "lm_head.weight 96 64"
    } | _tiny_safetensors "$_d/model/model.safetensors" 12345

    cat > "$_d/adapter/adapter_config.json" <<'EOF'
{
  "peft_type": "LORA",
  "task_type": "CAUSAL_LM",
  "base_model_name_or_path": null,
  "r": 4,
  "lora_alpha": 8,
  "lora_dropout": 0.0,
  "target_modules": ["q_proj", "v_proj", "down_proj"],
  "bias": "none",
  "fan_in_fan_out": false,
  "inference_mode": true,
  "init_lora_weights": true,
  "use_rslora": false,
  "use_dora": false
}
EOF
    {
        for l in 0 1; do
            p="base_model.model.model.layers.$l"
            echo "$p.self_attn.q_proj.lora_A.weight 4 64"
            echo "$p.self_attn.q_proj.lora_B.weight 64 4"
            echo "$p.self_attn.v_proj.lora_A.weight 4 64"
            echo "$p.self_attn.v_proj.lora_B.weight 32 4"
            echo "$p.mlp.down_proj.lora_A.weight 4 96"
            echo "$p.mlp.down_proj.lora_B.weight 64 4"
        done
    } | _tiny_safetensors "$_d/adapter/adapter_model.safetensors" 777

    cat > "$_d/data.jsonl" <<'EOF'
{"input_ids": [1, 44, 22, 53, 86]}
{"input_ids": [1, 9, 12, 71, 15, 49, 77, 10, 67, 30, 7, 14, 58, 56, 11, 33, 14, 73, 57, 10, 75, 18, 31, 83, 83, 77, 10, 76, 77, 53, 9, 31, 8, 74, 20, 40], "labels": [-100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, -100, 58, 56, 11, 33, 14, 73, 57, 10, 75, 18, 31, 83, 83, 77, 10, 76, 77, 53, 9, 31, 8, -100, 20, 40]}
{"input_ids": [1, 76, 42, 74, 90, 26, 16, 77, 76, 84, 27, 50, 15, 73, 94, 11, 75]}
{"input_ids": [1, 5, 60, 33, 21, 8, 90, 47, 12]}
{"input_ids": [1, 38, 64, 19, 7, 88, 52, 31, 45, 3, 69, 24, 80, 16, 57, 92, 41, 28, 66, 10, 35, 73, 50, 14, 87, 29, 61, 6, 44, 95, 18, 55, 70]}
{"input_ids": [1, 30, 81, 17, 62, 9, 48, 75, 26, 93, 39, 11], "labels": [-100, -100, -100, -100, 62, 9, 48, 75, 26, 93, 39, 11]}
{"input_ids": [1, 22, 58, 4, 71, 36, 85, 13, 49, 67, 27, 90, 42, 8, 63, 31, 78, 20, 54, 11, 46, 83, 37, 5, 72, 59, 15, 94]}
{"input_ids": [1, 47, 25, 68, 12, 91]}
{"input_ids": [1, 34, 79, 16, 53, 88, 21, 65, 40, 7, 83, 29, 56, 74, 18, 61, 95, 32, 10, 47, 86]}
{"input_ids": [1, 14, 70, 43, 89, 26, 57, 8, 92, 35, 64, 19, 81, 50, 23, 76, 41, 6, 68, 33, 95, 12, 59, 84, 28, 73, 46, 17, 90, 39, 62, 5, 80, 51, 24, 67, 9, 85]}
{"input_ids": [1, 60, 27, 93, 44, 15, 78, 36, 52, 69, 11, 87, 30, 58]}
{"input_ids": [1, 3, 95, 48, 72, 19, 64, 37, 83, 26, 55, 10, 91, 42, 67, 14, 80, 33, 59, 8, 76, 45, 21, 88, 52]}
EOF
}
