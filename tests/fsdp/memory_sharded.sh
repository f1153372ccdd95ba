#!/bin/sh
# Proves the memory claims of sharding, from the tracked per-rank peaks in
# summary.json:
#  - FULL_SHARD at N = 4: frozen-parameter bytes per rank are at most a
#    quarter of the model (plus shard padding), gathered-unit bytes at most
#    two units, and far below the model;
#  - one rank with bf16 weights: the frozen bytes are the file's (no fp32
#    copy of the whole model), units are widened at most two at a time;
#  - cpu_ram_efficient_loading: with a random model of about 300 MB, every
#    rank's peak resident memory after loading stays well below the model's
#    size (each rank preads only its own byte ranges); without it, rank 0
#    reads and broadcasts one unit at a time, so it stays below the model
#    size too, and both ways train to the same bytes.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

check_json() { python3 - "$@" <<'PY'
import json, os, sys
summary, model_bytes, unit_bytes, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
s = json.load(open(summary))
for r in s["ranks"]:
    frozen, gathered = r["peak_bytes"]["frozen_params"], r["peak_bytes"]["gathered_units"]
    rss = r["load_peak_rss_bytes"]
    print(f"rank {r['rank']}: frozen {frozen} gathered {gathered} rss after load {rss} "
          f"(model {model_bytes}, largest unit {unit_bytes})")
    if mode == "shard":
        assert frozen <= model_bytes / s["world_size"] + 64 * 1024, "frozen shard larger than 1/N of the model"
        assert gathered <= 2 * unit_bytes, "more than two units gathered at once"
    elif mode == "efficient":
        assert rss < 0.6 * model_bytes, "a rank's resident memory came near the model size"
    elif mode == "root":
        assert rss < model_bytes, "a rank held the whole model while loading"
    elif mode == "narrow":
        assert frozen <= model_bytes + 64 * 1024, "bf16 weights were widened for the whole model"
        assert 0 < gathered <= 2 * unit_bytes, "units were not widened one or two at a time"
PY
}

# 4 layers: FULL_SHARD keeps a quarter of the frozen bytes per rank
"$MAKE_MODEL" --out "$SCRATCH/small" --hidden 128 --intermediate 256 --layers 4 --heads 4 --kv_heads 2 --vocab 256
FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train small 4 "$SCRATCH/small" --max_steps 2 --lora_r 4
model_bytes=$(stat -c %s "$SCRATCH/small/model.safetensors")
# the largest unit: a layer (4 attention + 3 MLP matrices + 2 norms, fp32)
# with its LoRA tensors (r 4) and their gradients:
# r x (sum of in + sum of out) = 4 x (1024 + 1024) floats, twice
unit_bytes=$(( (2 * 128 * 128 + 2 * 128 * 64 + 3 * 128 * 256 + 2 * 128) * 4 + 2 * 4 * 2048 * 4 ))
check_json "$SCRATCH/small/summary.json" "$model_bytes" "$unit_bytes" shard

# one rank, bf16 weights: they stay bf16 (the file's size), widened unit by unit
"$MAKE_MODEL" --out "$SCRATCH/b16" --hidden 128 --intermediate 256 --layers 4 --heads 4 --kv_heads 2 --vocab 256 \
    --dtype bf16
fsdp_train b16 1 "$SCRATCH/b16" --max_steps 2 --lora_r 4
check_json "$SCRATCH/b16/summary.json" "$(stat -c %s "$SCRATCH/b16/model.safetensors")" "$unit_bytes" narrow

# about 300 MB: efficient loading reads only each rank's byte ranges
"$MAKE_MODEL" --out "$SCRATCH/big" --hidden 1024 --intermediate 2048 --layers 6 --heads 8 --kv_heads 4 \
    --vocab 8192 --rows 4 --max_len 8
model_bytes=$(stat -c %s "$SCRATCH/big/model.safetensors")
FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_CPU_RAM_EFFICIENT_LOADING=true \
    fsdp_train big.efficient 4 "$SCRATCH/big" --max_steps 1 --lora_r 2
check_json "$SCRATCH/big.efficient/summary.json" "$model_bytes" 0 efficient
FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_CPU_RAM_EFFICIENT_LOADING=false FSDP_SYNC_MODULE_STATES=false \
    fsdp_train big.root 4 "$SCRATCH/big" --max_steps 1 --lora_r 2
check_json "$SCRATCH/big.root/summary.json" "$model_bytes" 0 root
cmp "$SCRATCH/big.efficient/adapter_model.safetensors" "$SCRATCH/big.root/adapter_model.safetensors" \
    || fail "loading by byte ranges and by broadcast trained differently"
echo PASS
