#!/bin/sh
# Proves: for N = 1..4 ranks (3 makes the shard padding uneven) and every
# sharding strategy, 20 steps with the same global batch (N ranks x 12/N
# accumulation) give the losses, gradient norms and final adapter of one
# rank with 12 accumulation steps, to relative 1e-5 (LoRA dropout on, so
# the masks must follow the global micro-batch, not the rank).
# HYBRID_SHARD at N = 4 runs as 2 "nodes" x 2 ranks.  A tied-embedding and a
# BF16 model are sharded too.  DoRA (fresh: each magnitude computed from the
# gathered unit, then sharded with the adapter) under every strategy, on the
# fp32 and the BF16 model.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 16 --layers 3
FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train ref 1 "$SCRATCH/m" --gradient_accumulation_steps 12 --max_steps 20
runs=""
for strategy in FULL_SHARD SHARD_GRAD_OP NO_SHARD HYBRID_SHARD; do
    for np in 1 2 3 4; do
        per_node=$np
        [ "$np" = 4 ] && per_node=2
        FSDP_SHARDING_STRATEGY=$strategy SHARDTUNE_RANKS_PER_NODE=$per_node \
            fsdp_train "$strategy.$np" "$np" "$SCRATCH/m" --gradient_accumulation_steps $((12 / np)) --max_steps 20
        runs="$runs $SCRATCH/$strategy.$np"
    done
done
grep -q "shard group 2, replica group 2" "$SCRATCH/HYBRID_SHARD.4.log" || fail "HYBRID_SHARD did not run as 2 x 2"
grep -q "shard group 3, replica group 1" "$SCRATCH/FULL_SHARD.3.log" || fail "FULL_SHARD did not shard over 3"
compare_runs "$SCRATCH/ref" $runs

for kind in tied bf16; do
    if [ $kind = tied ]; then "$MAKE_MODEL" --out "$SCRATCH/$kind" --tied 1 --seed 5
    else "$MAKE_MODEL" --out "$SCRATCH/$kind" --dtype bf16 --seed 6; fi
    FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train $kind.ref 1 "$SCRATCH/$kind" --gradient_accumulation_steps 6 --max_steps 8
    FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train $kind.3 3 "$SCRATCH/$kind" --gradient_accumulation_steps 2 --max_steps 8
    compare_runs "$SCRATCH/$kind.ref" "$SCRATCH/$kind.3"
done

# DoRA at lr 3e-3: at 1e-2 this run is ill-conditioned (PEFT's own fp32 and
# fp64 runs from the same start differ by 1.4e-4 on layer 0's v_proj A after
# 4 steps), so agreement to 1e-5 would be luck; at 3e-3 N ranks agree to 4e-7.
DORA="--use_dora True --max_steps 8 --learning_rate 3e-3"
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train dora.ref 1 "$SCRATCH/m" $DORA --gradient_accumulation_steps 12
runs=""
for run in FULL_SHARD.3 SHARD_GRAD_OP.2 NO_SHARD.2 HYBRID_SHARD.4; do
    strategy=${run%.*} np=${run#*.} per_node=${run#*.}
    [ "$strategy" = HYBRID_SHARD ] && per_node=2
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=$strategy SHARDTUNE_RANKS_PER_NODE=$per_node \
        fsdp_train "dora.$run" "$np" "$SCRATCH/m" $DORA --gradient_accumulation_steps $((12 / np))
    runs="$runs $SCRATCH/dora.$run"
done
compare_runs "$SCRATCH/dora.ref" $runs
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train dora.bf16.ref 1 "$SCRATCH/bf16" $DORA --gradient_accumulation_steps 6
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train dora.bf16.3 3 "$SCRATCH/bf16" $DORA --gradient_accumulation_steps 2
compare_runs "$SCRATCH/dora.bf16.ref" "$SCRATCH/dora.bf16.3"
echo PASS
