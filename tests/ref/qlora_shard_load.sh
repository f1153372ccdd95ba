#!/bin/sh
# Proves (QLoRA, quantize on load per shard): with cpu_ram_efficient_loading
# each rank quantizes only its own byte range of a unit's 4-bit layout from
# the values behind it, and the stored 4-bit bytes (packed codes and block
# state; model_dump's MODEL_DUMP_FROZEN) on 1, 2, 3 and 4 ranks FULL_SHARD
# (3: uneven splits of every tensor's blocks) equal bit for bit those of one
# rank quantizing each tensor whole (cpu_ram_efficient_loading False, the
# path tests/ref/qlora_matches_bnb.sh checks against bitsandbytes), for nf4
# nested, nf4 plain and fp4.  Then, on one decoder layer of TinyLlama-1.1B's
# dimensions (bf16, 84.8 MiB; 22.4 MiB as nested NF4): the bytes each rank
# reads from the model file shrink as 1/N (at most 1.02 x file / N + 1 MiB),
# and peak resident memory at the end of loading on 3 ranks is below one
# rank's by at least 40 % of the 4-bit unit's 2/3 it no longer holds, one
# rank's staying under the 4-bit unit + 24 MiB (the program and its buffers;
# the whole-unit loading this replaced held the 4-bit unit twice plus a
# 16-bit tensor).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/qlora_lib.sh"
D="$SCRATCH/q"
"$PY" "$REF/qlora_reference.py" make "$D" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "qlora_reference.py make"; }

# dump RUN NP EFFICIENT MODEL FLAGS...: the stored bytes in $SCRATCH/RUN.frozen
dump() {
    run=$1 np=$2 eff=$3 model=$4
    shift 4
    MODEL_DUMP_FROZEN="$SCRATCH/$run.frozen" FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_CPU_RAM_EFFICIENT_LOADING=$eff \
        timeout 300 "$MPIRUN" -np "$np" "$MODEL_DUMP" --model "$model" --data "$D/data.jsonl" --rows 1 \
        --max_seq_len 8 --out "$SCRATCH/$run.out" --use_4bit_quantization True "$@" >"$SCRATCH/$run.log" 2>&1 \
        || { cat "$SCRATCH/$run.log"; fail "model_dump $run"; }
}

for c in nf4:True nf4:False fp4:False; do
    qt=${c%:*} nested=${c#*:}
    dump "$qt.$nested.whole" 1 False "$D/model" --bnb_4bit_quant_type "$qt" --use_nested_quant "$nested"
    grep -q "^4-bit: linear weights as $qt" "$SCRATCH/$qt.$nested.whole.log" || fail "no 4-bit line for $qt"
    for np in 1 2 3 4; do
        dump "$qt.$nested.$np" $np True "$D/model" --bnb_4bit_quant_type "$qt" --use_nested_quant "$nested"
        cmp "$SCRATCH/$qt.$nested.whole.frozen" "$SCRATCH/$qt.$nested.$np.frozen" \
            || fail "$qt nested=$nested: $np rank(s) quantizing their shards store other bytes than whole tensors"
        echo "$qt nested=$nested: $np rank(s), each its shard: stored bytes equal to whole-tensor quantization"
    done
done

# One layer of TinyLlama-1.1B's dimensions, random bf16 weights.
W="$SCRATCH/wide"
"$PY" - "$W" <<'PYEOF' || fail "writing the one-layer model"
import json, os, sys
import torch
from safetensors.torch import save_file
out = sys.argv[1]
os.makedirs(out)
H, I, KV, V = 2048, 5632, 256, 96
g = torch.Generator().manual_seed(5)
shapes = {"model.embed_tokens.weight": (V, H), "lm_head.weight": (V, H), "model.norm.weight": (H,),
          "model.layers.0.input_layernorm.weight": (H,), "model.layers.0.post_attention_layernorm.weight": (H,),
          "model.layers.0.self_attn.q_proj.weight": (H, H), "model.layers.0.self_attn.k_proj.weight": (KV, H),
          "model.layers.0.self_attn.v_proj.weight": (KV, H), "model.layers.0.self_attn.o_proj.weight": (H, H),
          "model.layers.0.mlp.gate_proj.weight": (I, H), "model.layers.0.mlp.up_proj.weight": (I, H),
          "model.layers.0.mlp.down_proj.weight": (H, I)}
save_file({k: (0.02 * torch.randn(s, generator=g)).to(torch.bfloat16) for k, s in shapes.items()},
          os.path.join(out, "model.safetensors"), metadata={"format": "pt"})
json.dump({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": H, "intermediate_size": I,
           "num_hidden_layers": 1, "num_attention_heads": 32, "num_key_value_heads": 4, "vocab_size": V,
           "max_position_embeddings": 64, "rms_norm_eps": 1e-5, "tie_word_embeddings": False,
           "torch_dtype": "bfloat16"}, open(os.path.join(out, "config.json"), "w"))
PYEOF
for np in 1 2 3; do
    dump "wide.$np" $np True "$W" --use_nested_quant True
    grep '^loaded:' "$SCRATCH/wide.$np.log" | sed "s/^/$np rank(s): /"
done
"$PY" - "$W/model.safetensors" "$SCRATCH/wide.1.log" "$SCRATCH/wide.2.log" "$SCRATCH/wide.3.log" <<'PYEOF' \
    || fail "reads or resident memory do not shrink with the ranks"
import os, re, sys
file_bytes = os.path.getsize(sys.argv[1])
runs = []
for path in sys.argv[2:]:
    text = open(path).read()
    unit = float(re.search(r"frozen weights ([0-9.]+) MiB", text).group(1))  # all units, 4-bit
    line = re.search(r"^loaded: bytes read from the model files per rank: (.*)$", text, re.M).group(1)
    runs.append([(int(b), float(r)) for b, r in re.findall(r"(\d+) \(peak RSS ([0-9.]+) MiB\)", line)])
bad = []
for n, ranks in enumerate(runs, 1):
    if len(ranks) != n:
        bad.append(f"{n} ranks: {len(ranks)} entries in the loaded: line")
    worst = max(b for b, _ in ranks)
    if worst > 1.02 * file_bytes / n + 2**20:
        bad.append(f"{n} ranks: a rank read {worst} bytes of a {file_bytes}-byte file")
    print(f"{n} rank(s): most bytes read by a rank {worst} = {worst / file_bytes:.3f} x the file; "
          f"peak RSS {max(r for _, r in ranks):.1f} MiB")
one, three = runs[0][0][1], max(r for _, r in runs[2])
print(f"peak RSS: 1 rank {one:.1f} MiB, 3 ranks {three:.1f} MiB (4-bit weights {unit:.1f} MiB)")
if one > unit + 24:
    bad.append(f"1 rank: peak RSS {one:.1f} MiB is more than the 4-bit weights + 24 MiB")
if one - three < 0.4 * unit * 2 / 3:
    bad.append(f"3 ranks: peak RSS {three:.1f} MiB is not below 1 rank's {one:.1f} by 40 % of 2/3 of {unit:.1f} MiB")
for b in bad:
    print("FAIL:", b)
sys.exit(1 if bad else 0)
PYEOF
echo PASS
