#!/bin/sh
# Proves: `shardtune plan`, which reads only config.json, predicts what a real
# run measures on EVERY rank (every memory category and the total peak to the
# byte, host offload, and the bytes sent per optimizer step per collective;
# see tests/fsdp/plan_lib.sh), on two model sizes, 2 to 4 ranks and two
# strategies (the 3-rank case pads: its units do not divide by 3 x 64
# bytes), with shards offloaded to the host, and with 4-bit weights
# (QLoRA) as --bnb_4bit_quant_type and --use_nested_quant say: NF4 with and
# without nested absmax, FP4.  With SHARDTUNE_TEST_DEVICE=cuda the runs and
# the plans are both in the CUDA backend's layout (the plan follows
# $SHARDTUNE_DEVICE as runs do).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/fsdp/plan_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/small" --hidden 128 --intermediate 256 --layers 3 --vocab 512 --rows 16 \
    --min_len 32 --max_len 32
"$MAKE_MODEL" --out "$SCRATCH/large" --hidden 256 --intermediate 688 --layers 4 --heads 8 --kv_heads 4 \
    --vocab 2048 --rows 16 --min_len 32 --max_len 32
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check small.full 2 "$SCRATCH/small"
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check small.full3 3 "$SCRATCH/small"
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check large.full 4 "$SCRATCH/large"
FSDP_SHARDING_STRATEGY=SHARD_GRAD_OP plan_check large.grad_op 2 "$SCRATCH/large"
FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_OFFLOAD_PARAMS=true plan_check small.offload 2 "$SCRATCH/small"
# 4-bit steps gather a quarter of the bytes; the one-off collectives stay
# (49-77 KB here: loading's checks, the adapter gathered at the end), so they
# weigh more per step
plan_once_max=0.05
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check small.nf4 2 "$SCRATCH/small" --use_4bit_quantization True
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check small.nf4_nested 2 "$SCRATCH/small" --use_4bit_quantization True \
    --use_nested_quant True
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check small.fp4_nested_ckpt 1 "$SCRATCH/small" --use_4bit_quantization True \
    --bnb_4bit_quant_type fp4 --use_nested_quant True --gradient_checkpointing True
# QLoRA as the guide runs it and where 4-bit shards split unevenly: nf4
# nested over 3 ranks (codes and block state cut at padded byte ranges),
# SHARD_GRAD_OP (layers kept gathered, widened, for backward), and the guide's
# configuration (jobs/configs/fsdp_config_qlora.yaml: offloaded shards, with
# gradient checkpointing) on the larger model.
FSDP_SHARDING_STRATEGY=FULL_SHARD plan_check small.nf4_nested3 3 "$SCRATCH/small" --use_4bit_quantization True \
    --use_nested_quant True
FSDP_SHARDING_STRATEGY=SHARD_GRAD_OP plan_check large.nf4_nested_grad_op 2 "$SCRATCH/large" \
    --use_4bit_quantization True --use_nested_quant True
plan_check large.qlora_guide 2 "$SCRATCH/large" --config_file "$top_srcdir/jobs/configs/fsdp_config_qlora.yaml" \
    --use_4bit_quantization True --use_nested_quant True --gradient_checkpointing True
echo PASS
