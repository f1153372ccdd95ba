#!/bin/sh
# accel_env_seeds.sh DIR: the seed inputs of the environment fuzz target
# (fuzz_accel_env.c: first byte odd = a data-parallel config, then
# NAME=VALUE lines): what accelerate's launcher exports for the shipped
# configs, each variable's accepted spellings, and the refused values.
set -eu
mkdir -p "$1"
DIR=$1
w() { name=$1; shift; printf '%s\n' "$@" >"$DIR/$name"; }
w launch_fsdp F ACCELERATE_USE_FSDP=true FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_BACKWARD_PREFETCH=BACKWARD_PRE \
    FSDP_STATE_DICT_TYPE=SHARDED_STATE_DICT FSDP_FORWARD_PREFETCH=false FSDP_OFFLOAD_PARAMS=false \
    FSDP_CPU_RAM_EFFICIENT_LOADING=true FSDP_SYNC_MODULE_STATES=true FSDP_USE_ORIG_PARAMS=false \
    FSDP_ACTIVATION_CHECKPOINTING=true ACCELERATE_MIXED_PRECISION=bf16
w numeric F FSDP_SHARDING_STRATEGY=4 FSDP_BACKWARD_PREFETCH=2 FSDP_STATE_DICT_TYPE=1 FSDP_OFFLOAD_PARAMS=1 \
    FSDP_CPU_RAM_EFFICIENT_LOADING=0 FSDP_SYNC_MODULE_STATES=0
w fsdp_on_over_dp 'G' ACCELERATE_USE_FSDP=yes FSDP_SHARDING_STRATEGY=shard_grad_op ACCELERATE_MIXED_PRECISION=FP16
w fsdp_off F ACCELERATE_USE_FSDP=off FSDP_SHARDING_STRATEGY=NO_SHARD FSDP_BACKWARD_PREFETCH=NO_PREFETCH
w refused_zero2 F FSDP_SHARDING_STRATEGY=HYBRID_SHARD_ZERO2
w refused_local F FSDP_STATE_DICT_TYPE=LOCAL_STATE_DICT
w refused_fp8 F ACCELERATE_MIXED_PRECISION=fp8
w refused_bool F FSDP_USE_ORIG_PARAMS=maybe
w empty_values G ACCELERATE_USE_FSDP= FSDP_SHARDING_STRATEGY= OTHER=1
