# tests/fsdp/plan_lib.sh: sourced after tests/lib.sh and tests/fsdp/fsdp_lib.sh
# by the tests that hold `shardtune plan` to measured runs.
#
# plan_check NAME NP MODEL_DIR [flags...]: trains NAME for $plan_steps - 1
# and $plan_steps optimizer steps on NP ranks (fsdp_train; the environment
# chooses the strategy and device), plans the same flags for NP ranks, and
# fails unless
# - memory: every category of peak_bytes and peak_total_bytes equals the
#   plan on every rank of both runs, to the byte (and the categories are the
#   same set), and so does host_offload_bytes;
# - traffic per optimizer step: the bytes each rank sends, per collective,
#   equal the plan's, measured as the difference between the two runs (which
#   cancels the one-off collectives: flags, load and module-state checks,
#   the adapter gathered at the end);
# - a whole run's traffic per step is at most $plan_once_max (default 0.5 %,
#   doc/PERFORMANCE.md's bound) above the plan: the excess is those one-off
#   collectives, whose bytes do not shrink with 4-bit steps.
# One plan serves every rank: fsdp_init pads each unit so that every rank's
# shard has the same size, every rank runs the same schedule on micro-batches
# of the same shape (rows of 32 tokens, G micro-batches per step on every
# rank), and the only rank-dependent count, a broadcast's root, occurs in no
# step.  So the check also asserts that ranks are equal.
plan_steps=3
plan_flags="--per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_seq_len 32 --lora_r 4 \
    --lora_alpha 8 --lora_target_modules all-linear"

plan_check() {
    # not "name": fsdp_train sets that (shell functions share variables)
    case_=$1 np=$2 model=$3
    shift 3
    for n in $((plan_steps - 1)) $plan_steps; do
        fsdp_train "$case_.$n" "$np" "$model" $plan_flags --max_steps $n "$@"
    done
    "$SHARDTUNE" plan --model_name_or_path "$model" $plan_flags --num_processes "$np" --json "$@" \
        > "$SCRATCH/$case_.plan" 2> "$SCRATCH/$case_.plan.err" || { cat "$SCRATCH/$case_.plan.err"; fail "plan $case_ failed"; }
    echo "== $case_: $np ranks, $* (plan layout $(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["layout"])' "$SCRATCH/$case_.plan"))"
    python3 - "$SCRATCH/$case_.plan" "$SCRATCH/$case_.$((plan_steps - 1))/summary.json" \
        "$SCRATCH/$case_.$plan_steps/summary.json" "$plan_steps" "$np" "${plan_once_max:-0.005}" <<'PY' \
        || fail "$case_: plan and run differ"
import json, sys
plan, short, long_ = (json.load(open(p)) for p in sys.argv[1:4])
steps, np_, once_max = int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
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
        equal(f"{tag}: host offload", r["host_offload_bytes"], plan["host_offload_bytes"])
per_step = plan["bytes_sent_per_step"]
for a, b in zip(short["ranks"], long_["ranks"]):
    equal(f"rank {b['rank']}: collectives", sorted(b["bytes_sent"]), sorted(per_step))
    for op, planned in per_step.items():
        equal(f"rank {b['rank']}: {op} sent in step {steps}", b["bytes_sent"][op] - a["bytes_sent"][op], planned)
    # the one-off collectives: present (never negative) and small
    once = sum(b["bytes_sent"].values()) - steps * sum(per_step.values())
    frac = once / (steps * sum(per_step.values())) if sum(per_step.values()) else 0.0
    print(f"rank {b['rank']}: a {steps}-step run sends {once} bytes beyond {steps} planned steps ({100 * frac:.2f} %)")
    if not 0 <= frac <= once_max:
        bad.append(f"rank {b['rank']}: whole run {100 * frac:.2f} % off the plan per step "
                   f"(allowed 0 to {100 * once_max:.1f} %)")
for cat, planned in plan["peak_bytes"].items():
    print(f"peak {cat:17s} {planned:>12d} bytes on every rank")
print(f"peak total             {plan['peak_total_bytes']:>12d} bytes on every rank")
print(f"host offload           {plan['host_offload_bytes']:>12d} bytes on every rank")
print("sent per step          " + ", ".join(f"{op} {n}" for op, n in per_step.items()))
for line in bad:
    print("MISMATCH", line)
sys.exit(1 if bad else 0)
PY
}
