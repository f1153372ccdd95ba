#!/bin/sh
# Proves, without a GPU: `shardtune plan` in the CUDA backend's layout
# (--device cuda) equals what the CUDA backend's own code measures, run on
# the CPU emulation of CUDA (tests/cuda_emu): every memory category, the
# total peak and host offload of every rank to the byte, and the bytes sent
# per optimizer step (tests/fsdp/plan_lib.sh).  The cases cover what the CUDA
# layout adds to the CPU's: the bf16 residual stream (--bf16 True; with
# gradient checkpointing every layer's input is kept), the scratch the CUDA
# ops keep (fused bf16 attention: rowsum only; fp32 and `blocked` attention:
# score blocks sized by SHARDTUNE_CUDA_SCRATCH_KIB; the logits chunk of the
# loss; the 4-bit code tables of the dequantization), and NCCL's staging of
# offloaded shards through device buffers.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/fsdp/plan_lib.sh"

emu="$top_builddir/tests/cuda_emu/shardtune-cuda-emu.so"
[ -f "$emu" ] || fail "$emu: not built"
export SHARDTUNE_CUDA_PLUGIN="$emu"

"$MAKE_MODEL" --out "$SCRATCH/small" --hidden 128 --intermediate 256 --layers 3 --vocab 512 --rows 16 \
    --min_len 32 --max_len 32
export FSDP_SHARDING_STRATEGY=FULL_SHARD
# QLoRA as the guide runs it: offloaded shards, nf4 nested, bf16, checkpointing
# (4-bit steps gather a quarter of the bytes, so the one-off collectives
# weigh about 2 % of a step's traffic)
plan_once_max=0.05 FSDP_OFFLOAD_PARAMS=true plan_check qlora.offload 2 "$SCRATCH/small" --device cuda --bf16 True \
    --use_4bit_quantization True --use_nested_quant True --gradient_checkpointing True
# a 16 KiB budget: 4 KiB score blocks need the 16-row floor (1 x 32 keys x 2
# KV heads x 4 bytes x 16 rows: 4 KiB), the loss takes 8-row logits chunks
# (SHARD_GRAD_OP sends less per step: its one-off collectives weigh 0.66 %)
plan_once_max=0.01 SHARDTUNE_CUDA_SCRATCH_KIB=16 FSDP_SHARDING_STRATEGY=SHARD_GRAD_OP plan_check fp32.grad_op 2 "$SCRATCH/small" \
    --device cuda
SHARDTUNE_CUDA_ATTENTION=blocked plan_check bf16.blocked 1 "$SCRATCH/small" --device cuda --bf16 True
echo PASS
