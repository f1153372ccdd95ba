#!/bin/sh
# Proves: `shardtune plan`, which reads only config.json, predicts what a real
# run measures on EVERY rank, on two model sizes, 2 to 4 ranks and two
# strategies:
# - memory: every category of peak_bytes and peak_total_bytes, equal to the
#   byte (the categories themselves must be the same set); the plan's peaks
#   include the adapter gathered at the end of the run, as the run's do;
# - traffic per optimizer step: the bytes each rank sends, per collective,
#   equal to the byte.  A run's counters also hold one-off collectives (the
#   flags, load and module-state checks at start, the adapter gathered to be
#   saved at the end), so the step is measured as the difference between a
#   run of 3 steps and one of 2, which cancels them exactly;
# - a whole run's traffic per step at most 0.5 % above the plan
#   (doc/PERFORMANCE.md's bound; the excess is those one-off collectives).
# One plan serves every rank: fsdp_init pads each unit so that every rank's
# shard has the same size (the 3-rank case pads: its units do not divide by
# 3 x 64 bytes), every rank runs the same schedule on micro-batches of the
# same shape (every row is 32 tokens and every rank gets G micro-batches per
# step), and the only rank-dependent count, a broadcast's root, occurs in no
# step.  So the check against the plan also asserts that ranks are equal.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

flags="--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_seq_len 32 --lora_r 4 \
    --lora_alpha 8 --lora_target_modules all-linear"
steps=3
check() { # check NAME NP STRATEGY MODEL_DIR
    # not "name": fsdp_train sets that (shell functions share variables)
    case_=$1 np=$2 strategy=$3 model=$4
    for n in $((steps - 1)) $steps; do
        FSDP_SHARDING_STRATEGY=$strategy fsdp_train "$case_.$n" "$np" "$model" $flags --max_steps $n
    done
    FSDP_SHARDING_STRATEGY=$strategy "$SHARDTUNE" plan --model_name_or_path "$model" $flags \
        --num_processes "$np" --json > "$SCRATCH/$case_.plan" || fail "plan $case_ failed"
    echo "== $case_: $np ranks, $strategy"
    python3 - "$SCRATCH/$case_.plan" "$SCRATCH/$case_.$((steps - 1))/summary.json" \
        "$SCRATCH/$case_.$steps/summary.json" "$steps" "$np" <<'PY' || fail "$case_: plan and run differ"
import json, sys
plan, short, long_ = (json.load(open(p)) for p in sys.argv[1:4])
steps, np_ = int(sys.argv[4]), int(sys.argv[5])
bad = []
def equal(what, measured, planned):
    if measured != planned:
        bad.append(f"{what}: measured {measured}, planned {planned}")
assert len(short["ranks"]) == len(long_["ranks"]) == np_, "a rank is missing from summary.json"
for run, n in ((short, steps - 1), (long_, steps)):
    for r in run["ranks"]:
        tag = f"{n} steps, rank {r['rank']}"
        equal(f"{tag}: memory categories", sorted(r["peak_bytes"]), sorted(plan["peak_bytes"]))
        for cat, planned in plan["peak_bytes"].items():
            equal(f"{tag}: peak {cat}", r["peak_bytes"].get(cat), planned)
        equal(f"{tag}: peak total", r["peak_total_bytes"], plan["peak_total_bytes"])
per_step = plan["bytes_sent_per_step"]
for a, b in zip(short["ranks"], long_["ranks"]):
    equal(f"rank {b['rank']}: collectives", sorted(b["bytes_sent"]), sorted(per_step))
    for op, planned in per_step.items():
        equal(f"rank {b['rank']}: {op} sent in step {steps}", b["bytes_sent"][op] - a["bytes_sent"][op], planned)
    # the one-off collectives: present (never negative) and small
    once = sum(b["bytes_sent"].values()) - steps * sum(per_step.values())
    frac = once / (steps * sum(per_step.values()))
    print(f"rank {b['rank']}: a {steps}-step run sends {once} bytes beyond {steps} planned steps ({100 * frac:.2f} %)")
    if not 0 <= frac <= 0.005:
        bad.append(f"rank {b['rank']}: whole run {100 * frac:.2f} % off the plan per step (allowed 0 to 0.5 %)")
for cat, planned in plan["peak_bytes"].items():
    print(f"peak {cat:17s} {planned:>12d} bytes on every rank")
print(f"peak total             {plan['peak_total_bytes']:>12d} bytes on every rank")
print("sent per step          " + ", ".join(f"{op} {n}" for op, n in per_step.items()))
for line in bad:
    print("MISMATCH", line)
sys.exit(1 if bad else 0)
PY
}
"$MAKE_MODEL" --out "$SCRATCH/small" --hidden 128 --intermediate 256 --layers 3 --vocab 512 --rows 16 \
    --min_len 32 --max_len 32
"$MAKE_MODEL" --out "$SCRATCH/large" --hidden 256 --intermediate 688 --layers 4 --heads 8 --kv_heads 4 \
    --vocab 2048 --rows 16 --min_len 32 --max_len 32
check small.full 2 FULL_SHARD "$SCRATCH/small"
check small.full3 3 FULL_SHARD "$SCRATCH/small"
check large.full 4 FULL_SHARD "$SCRATCH/large"
check large.grad_op 2 SHARD_GRAD_OP "$SCRATCH/large"
echo PASS
