#!/usr/bin/env bash
# bench/fsdp_scaling.sh: FULL_SHARD training on 1, 2 and 4 MPI ranks of this
# machine: tokens/s per rank and in total, the fraction of collective time
# hidden behind compute, and the bytes each rank sent per optimizer step
# against the ring-algorithm count for this model.
# On a 2-core machine ranks beyond 2 share cores: the numbers show overheads
# of sharding, not speed-up.
#   bench/fsdp_scaling.sh [BUILD_DIR]      (default: _build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/_build}" && pwd)
work=$(mktemp -d /tmp/shardtune-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1

make -C "$build" -s tests/fsdp/make_random_llama shardtune >/dev/null
"$build/tests/fsdp/make_random_llama" --out "$work/m" --hidden 512 --intermediate 1376 --layers 8 --heads 8 \
    --kv_heads 4 --vocab 8192 --rows 256 --min_len 256 --max_len 256
steps=6 micro=4  # global batch: 4 micro-batches of 2 x 256 tokens
printf '%-6s %-12s %-12s %-10s %-14s %-14s\n' ranks "tok/s total" "tok/s/rank" hidden "sent/step MiB" "ring MiB"
for np in 1 2 4; do
    threads=$(( $(nproc) / np )); [ "$threads" -ge 1 ] || threads=1
    # mpirun binds a rank to one core unless told otherwise: give each rank its threads' cores
    OMP_NUM_THREADS=$threads FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_FORWARD_PREFETCH=true \
        mpirun -np $np --map-by "slot:PE=$threads" "$build/shardtune" train --model_name_or_path "$work/m" \
        --dataset_name "$work/m/data.jsonl" --max_seq_len 256 --output_dir "$work/o$np" \
        --per_device_train_batch_size 2 --gradient_accumulation_steps $((micro / np)) --max_steps $steps \
        --logging_steps 1 --lora_r 8 --lora_alpha 16 --lora_dropout 0 --lora_target_modules all-linear \
        --learning_rate 1e-4 > "$work/o$np.log" 2>&1 || { cat "$work/o$np.log"; exit 1; }
    python3 - "$work/o$np" "$work/m" "$np" "$steps" "$micro" <<'PY'
import json, os, statistics, sys
out, model, np_, steps, micro = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
m = [json.loads(l) for l in open(f"{out}/metrics.jsonl")]
tps = statistics.median(x["tokens_per_second"] for x in m[2:])  # after two warm-up steps
s = json.load(open(f"{out}/summary.json"))
sent = sum(s["ranks"][0]["bytes_sent"].values()) / steps
# ring count: every unit gathered in forward, every layer again in backward
# (FULL_SHARD), each rank sending (N-1)/N of the unit per gather, per
# micro-batch of this rank; LoRA gradients reduce-scattered once per layer
cfg = json.load(open(f"{model}/config.json"))
h, i, L, v = cfg["hidden_size"], cfg["intermediate_size"], cfg["num_hidden_layers"], cfg["vocab_size"]
kv = cfg["num_key_value_heads"] * h // cfg["num_attention_heads"]
layer = (2 * h * h + 2 * h * kv + 3 * h * i + 2 * h) * 4
emb_head = 2 * v * h * 4 + h * 4
r = 8
lora = r * ((h * 6 + i) + (h + kv + kv + h + i + i + h)) * 4
per_micro = (np_ - 1) / np_ * ((emb_head + L * (layer + lora)) + L * (layer + lora) + L * lora)
ring = per_micro * micro / np_
print(f"{np_:<6d} {tps:<12.0f} {tps / np_:<12.0f} {100 * s['hidden_fraction']:<9.0f}% "
      f"{sent / 2**20:<14.1f} {ring / 2**20:<14.1f}")
PY
done
