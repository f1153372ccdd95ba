#!/bin/sh
# Proves: SHARDTUNE_PROFILE=1 times the backend's ops without changing what
# is computed: 2 ranks, FULL_SHARD, the same losses bit for bit and the same
# adapter bytes as an unprofiled run, and a table of the ops that ran
# (matmul, attention, adamw among them) with the same peak memory report.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 8 --layers 2
export FSDP_SHARDING_STRATEGY=FULL_SHARD
fsdp_train plain 2 "$SCRATCH/m" --max_steps 4
SHARDTUNE_PROFILE=1 fsdp_train profiled 2 "$SCRATCH/m" --max_steps 4
for run in plain profiled; do cut -d, -f1-3,5 "$SCRATCH/$run/metrics.jsonl" > "$SCRATCH/$run.losses"; done
cmp "$SCRATCH/plain.losses" "$SCRATCH/profiled.losses" || fail "profiling changed the losses"
cmp "$SCRATCH/plain/adapter_model.safetensors" "$SCRATCH/profiled/adapter_model.safetensors" ||
    fail "profiling changed the adapter"
grep -q "^profile (SHARDTUNE_PROFILE" "$SCRATCH/profiled.log" || fail "no profile table"
for op in matmul attention_fwd attention_bwd adamw lm_head_xent; do
    grep -Eq "^  $op +[1-9][0-9]* " "$SCRATCH/profiled.log" || fail "the profile lacks $op"
done
! grep -q "^profile" "$SCRATCH/plain.log" || fail "an unprofiled run printed a profile"
grep "total" "$SCRATCH/plain.log" > "$SCRATCH/plain.mem"
grep "total" "$SCRATCH/profiled.log" > "$SCRATCH/profiled.mem"
cmp "$SCRATCH/plain.mem" "$SCRATCH/profiled.mem" || fail "profiling changed the memory report"
echo PASS
