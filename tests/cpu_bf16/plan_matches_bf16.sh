#!/bin/sh
# Proves: under --bf16 on a CPU with bf16 instructions a gathered layer keeps
# its linear weights in bf16 (rounded once per gather, not by every product),
# and `shardtune plan --device cpu --bf16 True` predicts those runs to the
# byte (every memory category, collectives per step: tests/fsdp/plan_lib.sh),
# for fp32 and bf16 model files, on one rank (units converted once, the fp32
# storage then freed) and on two (converted at every gather), and with DoRA
# (whose weights stay fp32: the gathered units as large as in fp32).  Then,
# measured:
# - one rank, fp32 file: nothing is gathered (every unit converted once and
#   kept), and the whole run's peak is lower than the fp32 run's (the linear
#   weights are held at half their bytes);
# - two ranks, bf16 file: the gathered units take under 0.75 of what the
#   fp32 run's take (0.71 here: bf16 linear weights instead of fp32 copies
#   beside the gathered bf16 storage; the embedding and head, fp32 in both,
#   weigh in too).  Byte counts: the same on every run.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/fsdp/plan_lib.sh"
. "$top_srcdir/tests/cpu_bf16/lib.sh"
skip_without_cpu_bf16

"$MAKE_MODEL" --out "$SCRATCH/f32" --hidden 128 --intermediate 256 --layers 3 --vocab 512 --rows 16 \
    --min_len 32 --max_len 32
"$MAKE_MODEL" --out "$SCRATCH/b16" --hidden 128 --intermediate 256 --layers 3 --vocab 512 --rows 16 \
    --min_len 32 --max_len 32 --dtype bf16
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check f32.one 1 "$SCRATCH/f32" --device cpu --bf16 True
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check f32.two 2 "$SCRATCH/f32" --device cpu --bf16 True
# DoRA keeps fp32 weights (its norms read W unrounded); its initial
# magnitudes gather every layer once more, a one-off the plan does not count
plan_once_max=0.1
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check f32.dora 2 "$SCRATCH/f32" --device cpu --bf16 True --use_dora True
plan_once_max=0.005
# bf16 files gather half the bytes per step; the one-off collectives stay
plan_once_max=0.02
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check b16.one 1 "$SCRATCH/b16" --device cpu --bf16 True
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check b16.two 2 "$SCRATCH/b16" --device cpu --bf16 True
grep -q '"layout": "cpu-bf16"' "$SCRATCH/f32.one.plan" || fail "the plan did not take the CPU's bf16 layout"
FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train f32.one.fp32 1 "$SCRATCH/f32" $plan_flags --max_steps $plan_steps
FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train f32.dora.fp32 2 "$SCRATCH/f32" $plan_flags --max_steps $plan_steps \
    --use_dora True
FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train b16.two.fp32 2 "$SCRATCH/b16" $plan_flags --max_steps $plan_steps
python3 - "$SCRATCH" "$plan_steps" <<'PY' || fail "bf16 weights: memory not as expected"
import json, sys
d, steps = sys.argv[1], sys.argv[2]
def rank0(name):
    return json.load(open(f"{d}/{name}/summary.json"))["ranks"][0]
one_bf16, one_fp32 = rank0(f"f32.one.{steps}"), rank0("f32.one.fp32")
dora16, dora32 = rank0(f"f32.dora.{steps}"), rank0("f32.dora.fp32")
print(f"DoRA, two ranks: gathered units {dora16['peak_bytes']['gathered_units']} (bf16) vs "
      f"{dora32['peak_bytes']['gathered_units']} (fp32)")
assert dora16["peak_bytes"]["gathered_units"] == dora32["peak_bytes"]["gathered_units"], "DoRA's weights left fp32"
print(f"one rank, fp32 file: peak total {one_bf16['peak_total_bytes']} (bf16) vs {one_fp32['peak_total_bytes']} (fp32)")
assert one_bf16["peak_total_bytes"] < one_fp32["peak_total_bytes"], "bf16 weights did not lower the peak"
assert one_bf16["peak_bytes"]["gathered_units"] == 0, "one rank gathered units: not converted once"
two_bf16, two_fp32 = rank0(f"b16.two.{steps}"), rank0("b16.two.fp32")
g16, g32 = two_bf16["peak_bytes"]["gathered_units"], two_fp32["peak_bytes"]["gathered_units"]
print(f"two ranks, bf16 file: gathered units {g16} (bf16) vs {g32} (fp32): {g16 / g32:.3f}")
assert g16 < 0.75 * g32, "gathered bf16 units did not shrink"
PY
echo PASS
