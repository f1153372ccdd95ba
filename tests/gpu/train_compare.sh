#!/bin/sh
# Proves: 20 LoRA steps of a small random Llama on the GPU give the CPU
# backend's losses: fp32 compute to relative 1e-4 (losses, gradient norms
# and the final adapter), bf16 GEMMs to 3e-2 (losses), with gradient
# checkpointing and LoRA dropout on (the masks are the same bits on both).
# With two GPUs or more, FULL_SHARD runs on 2 ranks (NCCL), with the shards
# on the device and offloaded to pinned host memory, match too.
# QLoRA (--use_4bit_quantization, NF4 with nested absmax): the GPU
# dequantizes the gathered 4-bit weights itself; 6 steps give the CPU
# backend's losses, gradient norms and adapter to 1e-4 (fp32), on 1 rank
# and, with two GPUs, 2 ranks FULL_SHARD (the 4-bit bytes gathered by NCCL);
# with bf16 GEMMs (--bf16, bnb_4bit_compute_dtype bfloat16) losses to 3e-2.
# Skipped (77) where no GPU answers.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 16 --layers 3 --dtype bf16
common="--gradient_accumulation_steps 2 --max_steps 20 --gradient_checkpointing True"
if ! "$SHARDTUNE" train --device cuda --model_name_or_path "$SCRATCH/m" --dataset_name "$SCRATCH/m/data.jsonl" \
        --output_dir "$SCRATCH/probe" --max_steps 1 > "$SCRATCH/probe.log" 2>&1; then
    if grep -q "no GPU answers\|built without CUDA" "$SCRATCH/probe.log"; then
        echo "SKIP: $(tail -n 1 "$SCRATCH/probe.log")"
        exit 77
    fi
    cat "$SCRATCH/probe.log" >&2
    fail "a one-step GPU run failed"
fi
fsdp_train cpu 1 "$SCRATCH/m" --device cpu $common
fsdp_train gpu 1 "$SCRATCH/m" --device cuda $common
fsdp_train gpu_bf16 1 "$SCRATCH/m" --device cuda --bf16 True $common
for run in gpu gpu_bf16; do
    grep -q '"backend": "cuda' "$SCRATCH/$run/summary.json" || fail "$run did not run on the CUDA backend"
done
compare_runs --rtol 1e-4 "$SCRATCH/cpu" "$SCRATCH/gpu"
compare_runs --rtol 3e-2 --keys loss --metrics_only "$SCRATCH/cpu" "$SCRATCH/gpu_bf16"
qlora="--use_4bit_quantization True --bnb_4bit_quant_type nf4 --use_nested_quant True --gradient_checkpointing True"
fsdp_train cpu_q4 1 "$SCRATCH/m" --device cpu --gradient_accumulation_steps 2 --max_steps 6 $qlora
fsdp_train gpu_q4 1 "$SCRATCH/m" --device cuda --gradient_accumulation_steps 2 --max_steps 6 $qlora
fsdp_train gpu_q4_bf16 1 "$SCRATCH/m" --device cuda --gradient_accumulation_steps 2 --max_steps 6 $qlora \
    --bf16 True --bnb_4bit_compute_dtype bfloat16
for run in cpu_q4 gpu_q4 gpu_q4_bf16; do
    grep -q "^4-bit: linear weights as nf4 with nested absmax" "$SCRATCH/$run.log" || fail "$run did not run in 4-bit"
done
for run in gpu_q4 gpu_q4_bf16; do
    grep -q '"backend": "cuda' "$SCRATCH/$run/summary.json" || fail "$run did not run on the CUDA backend"
done
compare_runs --rtol 1e-4 "$SCRATCH/cpu_q4" "$SCRATCH/gpu_q4"
compare_runs --rtol 3e-2 --keys loss --metrics_only "$SCRATCH/cpu_q4" "$SCRATCH/gpu_q4_bf16"
# SHARDTUNE_TEST_GPUS: how many GPUs to assume (the emulation sets 2)
gpus=${SHARDTUNE_TEST_GPUS:-$(nvidia-smi -L 2>/dev/null | grep -c '^GPU' || true)}
if [ "${gpus:-0}" -ge 2 ]; then
    FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train gpu2 2 "$SCRATCH/m" --device cuda --gradient_accumulation_steps 1 \
        --max_steps 20 --gradient_checkpointing True
    # shards in pinned host memory: gathers and reduce-scatters staged through the device
    FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_OFFLOAD_PARAMS=true fsdp_train gpu2_offload 2 "$SCRATCH/m" \
        --device cuda --gradient_accumulation_steps 1 --max_steps 20 --gradient_checkpointing True
    compare_runs --rtol 1e-4 "$SCRATCH/cpu" "$SCRATCH/gpu2" "$SCRATCH/gpu2_offload"
    FSDP_SHARDING_STRATEGY=FULL_SHARD fsdp_train gpu2_q4 2 "$SCRATCH/m" --device cuda --gradient_accumulation_steps 1 \
        --max_steps 6 $qlora
    compare_runs --rtol 1e-4 "$SCRATCH/cpu_q4" "$SCRATCH/gpu2_q4"
else
    echo "one GPU: the 2-rank NCCL runs are left out"
fi
echo PASS
