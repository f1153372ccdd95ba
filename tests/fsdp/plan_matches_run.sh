#!/bin/sh
# Proves: `shardtune plan`, which reads only config.json, predicts the
# per-rank peak memory of a real run within 10% (total and the large
# categories) and the bytes each rank sends per optimizer step within 10%,
# on two model sizes and two strategies.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

flags="--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_seq_len 32 --lora_r 4 \
    --lora_alpha 8 --lora_target_modules all-linear"
check() { # check NAME NP STRATEGY MODEL_DIR
    name=$1 np=$2 strategy=$3 model=$4
    steps=3
    FSDP_SHARDING_STRATEGY=$strategy fsdp_train "$name" "$np" "$model" $flags --max_steps $steps
    FSDP_SHARDING_STRATEGY=$strategy "$SHARDTUNE" plan --model_name_or_path "$model" $flags \
        --num_processes "$np" --json > "$SCRATCH/$name.plan" || fail "plan $name failed"
    python3 - "$SCRATCH/$name/summary.json" "$SCRATCH/$name.plan" "$steps" <<'PY'
import json, sys
run, plan, steps = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
r = run["ranks"][0]
def close(what, measured, planned, floor=1 << 20):
    err = abs(planned - measured) / max(measured, floor)
    print(f"{what:28s} measured {measured:>12d} planned {planned:>12d} ({100 * err:.1f}%)")
    assert err <= 0.10, f"{what}: plan is off by more than 10%"
close("total peak", r["peak_total_bytes"], plan["peak_total_bytes"])
for cat in ("frozen_params", "activations", "gathered_units", "optimizer"):
    close(cat, r["peak_bytes"][cat], plan["peak_bytes"][cat])
# the run also gathers the adapter to save it and checks module states once
sent = sum(r["bytes_sent"].values())
close("bytes sent per step", sent // steps, sum(plan["bytes_sent_per_step"].values()))
PY
}
"$MAKE_MODEL" --out "$SCRATCH/small" --hidden 128 --intermediate 256 --layers 3 --vocab 512 --rows 16 \
    --min_len 32 --max_len 32
"$MAKE_MODEL" --out "$SCRATCH/large" --hidden 256 --intermediate 688 --layers 4 --heads 8 --kv_heads 4 \
    --vocab 2048 --rows 16 --min_len 32 --max_len 32
check small.full 2 FULL_SHARD "$SCRATCH/small"
check large.full 4 FULL_SHARD "$SCRATCH/large"
check large.grad_op 2 SHARD_GRAD_OP "$SCRATCH/large"
echo PASS
