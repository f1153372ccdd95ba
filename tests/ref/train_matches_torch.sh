#!/bin/sh
# Proves: `shardtune train` with LoRA logs, step by step, the loss, learning
# rate and pre-clipping grad norm of a plain torch loop over the PEFT model
# (reference_train.py, which implements our data order), and saves an adapter
# that PEFT loads without complaint and that equals the reference's final
# weights to rel 1e-5.  The runs cover:
#  1. cosine with warmup_steps, max_steps 10 crossing three epoch boundaries,
#     B=2 x G=2, truncation to T, AdamW with weight decay, and clipping that
#     scales some steps and not others (the reference fails if none is clipped);
#  2. linear with warmup_ratio, num_train_epochs 2 (no max_steps), a short last
#     micro-batch (12 rows, B=5, G=1), rsLoRA on a model with Llama 3 RoPE;
#  3. constant_with_warmup, a leftover micro-batch skipped (3 batches, G=2);
#  4. constant, fewer micro-batches than G (one step takes all 3), no clipping.
. "$top_srcdir/tests/lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
REF="$top_srcdir/tests/ref"

"$PY" "$REF/make_tiny_llama.py" --all "$SCRATCH" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "make_tiny_llama.py"; }

# run NAME VARIANT ADAPTER [flags...]: shardtune now; the reference's flags go
# to runs.txt (one line per run, shell-quoted) for one reference_train.py call.
# $REF_ONLY holds flags for reference_train.py alone.
: >"$SCRATCH/runs.txt"
names=
run() {
    name=$1 variant=$2 d="$SCRATCH/$2" adapter=$3
    shift 3
    echo "== run $name: $*"
    "$SHARDTUNE" train --model_name_or_path "$d/model" --adapter "$d/$adapter" \
        --dataset_name "$d/data.jsonl" --output_dir "$SCRATCH/$name.ours" \
        --use_peft_lora True --logging_steps 1 --gradient_checkpointing False "$@" \
        >"$SCRATCH/$name.ours.log" 2>&1 \
        || { cat "$SCRATCH/$name.ours.log"; fail "shardtune train, run $name"; }
    for arg in --model_name_or_path "$d/model" --adapter "$d/$adapter" \
        --dataset_name "$d/data.jsonl" --output_dir "$SCRATCH/$name.ref" ${REF_ONLY:-} "$@"; do
        printf "'%s' " "$arg"
    done >>"$SCRATCH/runs.txt"
    echo >>"$SCRATCH/runs.txt"
    names="$names $name:$variant"
}

COMMON="--max_seq_len 32 --weight_decay 0.01 --adam_beta1 0.9 --adam_beta2 0.999 --adam_epsilon 1e-8 --seed 42"

# lr 1e-2 rather than 1e-3: large enough that the loss moves (4.89 -> 3.94),
# so an optimizer mistake shows in the losses as well as in the adapter.
# max_grad_norm 1.5 sits between the step norms (1.4..2.3), the closest 0.6% away.
REF_ONLY=--require_clipping
# shellcheck disable=SC2086
run 1 plain adapter $COMMON --per_device_train_batch_size 2 --gradient_accumulation_steps 2 \
    --learning_rate 1e-2 --lr_scheduler_type cosine --warmup_steps 2 --max_grad_norm 1.5 \
    --max_steps 10
REF_ONLY=
# shellcheck disable=SC2086
run 2 llama3 adapter_rslora $COMMON --per_device_train_batch_size 5 --gradient_accumulation_steps 1 \
    --learning_rate 5e-3 --lr_scheduler_type linear --warmup_ratio 0.2 --max_grad_norm 1.0 \
    --num_train_epochs 2
# shellcheck disable=SC2086
run 3 plain adapter $COMMON --per_device_train_batch_size 5 --gradient_accumulation_steps 2 \
    --learning_rate 5e-3 --lr_scheduler_type constant_with_warmup --warmup_steps 1 \
    --max_grad_norm 1.0 --num_train_epochs 3
# shellcheck disable=SC2086
run 4 plain adapter $COMMON --per_device_train_batch_size 4 --gradient_accumulation_steps 4 \
    --learning_rate 5e-3 --lr_scheduler_type constant --max_grad_norm 0 --num_train_epochs 2

"$PY" "$REF/reference_train.py" --runs "$SCRATCH/runs.txt" >"$SCRATCH/ref.log" 2>&1 \
    || { cat "$SCRATCH/ref.log"; fail "reference_train.py"; }
grep '^reference_train:' "$SCRATCH/ref.log"

status=0
set --
for nv in $names; do
    name=${nv%%:*} d="$SCRATCH/${nv#*:}"
    echo "== run $name: metrics"
    "$PY" "$REF/compare_metrics.py" "$SCRATCH/$name.ours/metrics.jsonl" \
        "$SCRATCH/$name.ref/metrics.jsonl" || { echo "FAIL: run $name: metrics"; status=1; }
    set -- "$@" "$d/model" "$SCRATCH/$name.ours" "$SCRATCH/$name.ref"
done
echo "== saved adapters"
"$PY" "$REF/check_adapter.py" --rtol 1e-5 "$@" >"$SCRATCH/check.log" 2>&1 || status=1
grep -E '^(check_adapter|FAIL)' "$SCRATCH/check.log" || cat "$SCRATCH/check.log"
[ $status = 0 ] || fail "shardtune train differs from the torch reference"
echo "PASS"
