#!/bin/sh
# Proves: `shardtune train --bf16 True` on the CPU follows transformers + peft
# trained under torch.autocast("cpu", dtype=torch.bfloat16) (what
# Trainer(bf16=True) runs; tests/ref/reference_train.py --autocast_bf16) for
# 20 steps: losses and pre-clipping gradient norms within LOSS_RTOL and
# NORM_RTOL, and it does compute in bf16: its losses are not those of the
# fp32 run.
# The bound: the two round different things to bf16 (autocast rounds every
# matmul's inputs and its output, shardtune rounds the inputs and keeps the
# output and everything between products in fp32, as the CUDA backend's bf16
# mode does), so they differ by about as much as bf16 moves the run at all:
# on this model autocast's losses are up to 1.3e-3 from the fp32 reference's
# and shardtune --bf16's up to 1.4e-3 from autocast's (a few of bf16's unit
# roundoff 2^-9 = 2e-3, not fp32's 1e-5).  LOSS_RTOL 5e-3 leaves a 3.5x
# margin.  Gradient norms move more (2.3e-2 at worst: the norm of 0.4M
# gradients each of whose products rounded its output or not): NORM_RTOL
# 6e-2.  These bounds catch a gross error (a wrong gradient, a wrong row);
# the rounding itself is checked op by op (test_cpu_bf16_ops).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/cpu_bf16/lib.sh"
need_reference_python
skip_without_cpu_bf16
export PYTHONDONTWRITEBYTECODE=1
REF="$top_srcdir/tests/ref"
LOSS_RTOL=5e-3
NORM_RTOL=6e-2

"$PY" "$REF/make_tiny_llama.py" "$SCRATCH/m" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "make_tiny_llama.py"; }
set -- --model_name_or_path "$SCRATCH/m/model" --adapter "$SCRATCH/m/adapter" \
    --dataset_name "$SCRATCH/m/data.jsonl" --max_seq_len 40 --per_device_train_batch_size 2 \
    --gradient_accumulation_steps 2 --learning_rate 5e-3 --lr_scheduler_type constant --max_grad_norm 1.0 \
    --max_steps 20 --seed 42 --logging_steps 1
for prec in bf16 fp32; do
    flag=False
    [ $prec = bf16 ] && flag=True
    "$SHARDTUNE" train "$@" --use_peft_lora True --bf16 $flag --output_dir "$SCRATCH/ours_$prec" \
        >"$SCRATCH/ours_$prec.log" 2>&1 || { cat "$SCRATCH/ours_$prec.log"; fail "shardtune train --bf16 $flag"; }
done
! grep -q "compute stays fp32" "$SCRATCH/ours_bf16.log" || fail "--bf16 fell back to fp32"
"$PY" "$REF/reference_train.py" "$@" --autocast_bf16 --output_dir "$SCRATCH/ref_bf16" >"$SCRATCH/ref_bf16.log" 2>&1 \
    || { cat "$SCRATCH/ref_bf16.log"; fail "reference_train.py --autocast_bf16"; }
"$PY" "$REF/reference_train.py" "$@" --output_dir "$SCRATCH/ref_fp32" >"$SCRATCH/ref_fp32.log" 2>&1 \
    || { cat "$SCRATCH/ref_fp32.log"; fail "reference_train.py"; }

echo "== shardtune --bf16 vs transformers+peft under bf16 autocast"
"$PY" "$REF/compare_metrics.py" "$SCRATCH/ours_bf16/metrics.jsonl" "$SCRATCH/ref_bf16/metrics.jsonl" \
    --loss-rtol $LOSS_RTOL --norm-rtol $NORM_RTOL || fail "--bf16 is not within bf16's bound of autocast"
echo "== shardtune fp32 vs the fp32 reference (the usual 1e-5)"
"$PY" "$REF/compare_metrics.py" "$SCRATCH/ours_fp32/metrics.jsonl" "$SCRATCH/ref_fp32/metrics.jsonl" >/dev/null \
    || fail "the fp32 run does not match the fp32 reference"
"$PY" - "$SCRATCH" <<'PYEOF' || fail "--bf16 logged the fp32 run's losses: no bf16 compute"
import json, sys
d = sys.argv[1]
def losses(name):
    return [json.loads(l)["loss"] for l in open(f"{d}/{name}/metrics.jsonl") if '"loss"' in l]
ob, of, rb, rf = (losses(n) for n in ("ours_bf16", "ours_fp32", "ref_bf16", "ref_fp32"))
def dist(a, b):
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))
ours_vs_autocast, autocast_vs_fp32, ours_bf16_vs_fp32 = dist(ob, rb), dist(rb, rf), dist(ob, of)
print(f"max relative loss distance: shardtune bf16 vs autocast {ours_vs_autocast:.2e}; "
      f"autocast vs fp32 reference {autocast_vs_fp32:.2e}; shardtune bf16 vs shardtune fp32 {ours_bf16_vs_fp32:.2e}")
sys.exit(0 if ours_bf16_vs_fp32 > 1e-5 else 1)
PYEOF
echo PASS
