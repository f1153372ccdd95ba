#!/bin/sh
# Proves, for QLoRA (--use_4bit_quantization, nf4 with nested absmax unless
# said): N ranks equal one rank under every sharding strategy.  The same
# global batch (N ranks x 12/N accumulation, LoRA dropout on) gives the
# losses, gradient norms and final adapter of one NO_SHARD rank with 12
# accumulation steps, to relative 1e-5 (tests/fsdp/compare_runs.py), at
# 1 to 4 ranks (3 makes the shard padding uneven and splits 4-bit tensors'
# codes and block state at arbitrary bytes; HYBRID_SHARD at 4 runs as 2
# "nodes" x 2 ranks); FULL_SHARD at 3 also with both loading paths (rank 0
# broadcasts / every rank loads: cpu_ram_efficient_loading), with plain nf4
# and fp4 absmax, and on a bf16 model (quantized from bf16).  The 4-bit
# codes depend on the whole tensor only, so every world size computes with
# the same dequantized weights.  The tiny models' linear weights have
# in_features 64 or 96, whole blocks of 64 per tensor (no partial block).
# QDoRA (--use_dora on the 4-bit weights) under every strategy too.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

Q="--use_4bit_quantization True --bnb_4bit_compute_dtype float32 --max_steps 6"
"$MAKE_MODEL" --out "$SCRATCH/m" --rows 16 --layers 2
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train ref 1 "$SCRATCH/m" $Q --use_nested_quant True --gradient_accumulation_steps 12
grep -q "^4-bit: linear weights as nf4 with nested absmax" "$SCRATCH/ref.log" || fail "the reference run is not 4-bit"
runs=""
for strategy in FULL_SHARD SHARD_GRAD_OP NO_SHARD HYBRID_SHARD; do
    for np in 1 2 3 4; do
        per_node=$np
        [ "$np" = 4 ] && per_node=2
        # shellcheck disable=SC2086
        FSDP_SHARDING_STRATEGY=$strategy SHARDTUNE_RANKS_PER_NODE=$per_node FSDP_CPU_RAM_EFFICIENT_LOADING=false \
            fsdp_train "$strategy.$np" "$np" "$SCRATCH/m" $Q --use_nested_quant True --gradient_accumulation_steps $((12 / np))
        runs="$runs $SCRATCH/$strategy.$np"
    done
done
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_CPU_RAM_EFFICIENT_LOADING=true \
    fsdp_train FULL_SHARD.3.efficient 3 "$SCRATCH/m" $Q --use_nested_quant True --gradient_accumulation_steps 4
for run in $runs; do grep -q "^4-bit: linear weights as nf4 with nested absmax" "$run.log" || fail "$run: not 4-bit"; done
grep -q "shard group 2, replica group 2" "$SCRATCH/HYBRID_SHARD.4.log" || fail "HYBRID_SHARD did not run as 2 x 2"
grep -q "shard group 3, replica group 1" "$SCRATCH/FULL_SHARD.3.log" || fail "FULL_SHARD did not shard over 3"
grep -q "cpu_ram_efficient_loading on" "$SCRATCH/FULL_SHARD.3.efficient.log" || fail "the efficient-loading run did not load so"
compare_runs "$SCRATCH/ref" $runs "$SCRATCH/FULL_SHARD.3.efficient"

# plain absmax (nf4, fp4) and a bf16 base, each 1 rank against 3 FULL_SHARD
"$MAKE_MODEL" --out "$SCRATCH/bf16" --dtype bf16 --seed 6
for kind in nf4 fp4 bf16; do
    model="$SCRATCH/m" qflags="--bnb_4bit_quant_type $kind --use_nested_quant False"
    [ $kind = bf16 ] && model="$SCRATCH/bf16" qflags="--use_nested_quant True"
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train $kind.ref 1 "$model" $Q $qflags --gradient_accumulation_steps 6
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train $kind.3 3 "$model" $Q $qflags --gradient_accumulation_steps 2
    grep -q "^4-bit: linear weights as" "$SCRATCH/$kind.3.log" || fail "$kind: not 4-bit"
    compare_runs "$SCRATCH/$kind.ref" "$SCRATCH/$kind.3"
done

# QDoRA (DoRA on the 4-bit weights, fresh: m from the gathered, dequantized
# unit) under every strategy, at lr 3e-3 as tests/fsdp/fsdp_equivalence.sh's DoRA
QDORA="--use_nested_quant True --use_dora True --learning_rate 3e-3"
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=NO_SHARD fsdp_train qdora.ref 1 "$SCRATCH/m" $Q $QDORA --gradient_accumulation_steps 12
runs=""
for run in FULL_SHARD.3 SHARD_GRAD_OP.2 NO_SHARD.2 HYBRID_SHARD.4; do
    strategy=${run%.*} np=${run#*.} per_node=${run#*.}
    [ "$strategy" = HYBRID_SHARD ] && per_node=2
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=$strategy SHARDTUNE_RANKS_PER_NODE=$per_node \
        fsdp_train "qdora.$run" "$np" "$SCRATCH/m" $Q $QDORA --gradient_accumulation_steps $((12 / np))
    runs="$runs $SCRATCH/qdora.$run"
done
compare_runs "$SCRATCH/qdora.ref" $runs
echo PASS
