#!/bin/sh
# check.sh: the GPU check of the CUDA backend, one script for a machine with
# an NVIDIA GPU (aimed at under 8 minutes on an H200):
#   1. the build: ./configure --with-cuda into _build_cuda, or a pack made by
#      tests/gpu/pack.sh on another machine (PACK=dir or PACK=file.tar.xz)
#      where this one lacks the project's libraries;
#   2. tests/gpu/op_check: every op of backend.h, forward and backward,
#      against the CPU backend, fp32 and bf16 GEMMs, outputs NaN-poisoned;
#      the 4-bit dequantization (to_f32 of NF4 / FP4, nested or not) bit for bit;
#   3. tests/gpu/train_compare.sh: 20 LoRA steps on CPU and GPU, losses compared;
#      6 QLoRA steps (4-bit NF4 weights dequantized on the GPU) the same way;
#   4. bench/gpu_lora_step.sh: a training step of a random 1.1B Llama (seq
#      2048, micro-batch 4, LoRA r 8 all-linear, gradient checkpointing):
#      tokens/s, MFU over the torch-measured bf16 matmul peak, peak memory,
#      shardtune and Hugging Face PEFT on the same GPU, and their ratio;
#   5. the same step profiled (SHARDTUNE_PROFILE=1): seconds per backend op;
#   6. the same step as QLoRA (--use_4bit_quantization, NF4 with nested
#      absmax, bnb_4bit_compute_dtype bfloat16): tokens/s and peak memory of
#      5 steps, then 3 steps profiled (to_f32 is where the weights are
#      dequantized, at every gather).
# Logs go to CHECK_OUT (default runs/gpu-check); the last lines are a table.
# PRESET=tiny (bench/make_bench_model.py) makes parts 4 to 6 small, to try
# the script itself; with SHARDTUNE_CUDA_PLUGIN naming the CPU emulation of
# CUDA (tests/cuda_emu) it runs on a machine without a GPU (the Hugging Face
# side then fails on cuda, as it should).
# Exit status: 0 when every part passed.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 # GPU machines often run jobs as root
PRESET=${PRESET:-1b}
case $PRESET in tiny) SEQ=128 ;; *) SEQ=2048 ;; esac
out=${CHECK_OUT:-$top/runs/gpu-check}
mkdir -p "$out"
summary="$out/summary.txt"
: >"$summary"
status=0

# part NAME CMD...: runs CMD with its output in NAME.log; records the result
part() {
    name=$1
    shift
    t0=$(date +%s)
    "$@" >"$out/$name.log" 2>&1
    rc=$?
    case $rc in 0) verdict=pass ;; 77) verdict="SKIPPED (no GPU or no plugin)"; status=1 ;; *) verdict="FAIL (rc $rc)"; status=1 ;; esac
    echo "| $name | $verdict | $(($(date +%s) - t0)) s |" >>"$summary"
    echo "$name: $verdict" >&2
}

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >"$out/gpu.txt" 2>/dev/null ||
    echo "no nvidia-smi" >"$out/gpu.txt"

if [ -n "${PACK:-}" ]; then
    case $PACK in
    *.tar.xz)
        tar -C /tmp -xJf "$PACK" || { echo "check.sh: cannot unpack $PACK" >&2; exit 1; }
        build=/tmp/$(basename "$PACK" .tar.xz) ;;
    *) build=$PACK ;;
    esac
    MPIRUN=$build/mpirun
else
    build=$top/_build_cuda
    MPIRUN=${MPIRUN:-mpirun}
    build_it() {
        mkdir -p "$build" && cd "$top" && autoreconf -fi && cd "$build" &&
            { [ -f Makefile ] || "$top/configure" --with-cuda; } &&
            make -j"$(nproc)" shardtune shardtune-cuda.so tests/gpu/op_check tests/fsdp/make_random_llama tests/io/st_dump
    }
    part build build_it
fi
export MPIRUN
# the CUDA plugin of this build (or the one named, e.g. the CPU emulation)
if [ -n "${PACK:-}" ]; then plugin=$build/.real/shardtune-cuda.so; else plugin=$build/shardtune-cuda.so; fi
export SHARDTUNE_CUDA_PLUGIN="${SHARDTUNE_CUDA_PLUGIN:-$plugin}"

part op_check "$build/tests/gpu/op_check"
part train_compare env top_srcdir="$top" top_builddir="$build" sh "$top/tests/gpu/train_compare.sh"
bench_dir=${BENCH_DIR:-/tmp/shardtune-bench-$PRESET}
part bench env SHARDTUNE="$build/shardtune" SHARDTUNE_PYTHON="${SHARDTUNE_PYTHON:-python3}" PRESET="$PRESET" \
    SEQ="$SEQ" BENCH_DIR="$bench_dir" bash "$top/bench/gpu_lora_step.sh"
cp "$bench_dir/shardtune.log" "$out/bench-shardtune.log" 2>/dev/null
# step_run OUT STEPS PROFILE [flags...]: the bench's step (bf16, LoRA r 8 on all
# linear layers, checkpointing), STEPS steps into OUT; PROFILE 1 times every op
step_run() {
    step_out=$1 steps=$2 profile=$3
    shift 3
    SHARDTUNE_PROFILE=$profile "$build/shardtune" train --device cuda --bf16 True \
        --model_name_or_path "$bench_dir/model" --dataset_name "$bench_dir/data.jsonl" --max_seq_len "$SEQ" \
        --per_device_train_batch_size 4 --max_steps "$steps" --logging_steps 1 --lora_r 8 --lora_alpha 16 \
        --lora_dropout 0 --lora_target_modules all-linear --gradient_checkpointing True \
        --lr_scheduler_type constant --output_dir "$step_out" "$@"
}
# where a step's time goes: 3 steps of the same run, every op timed (SHARDTUNE_PROFILE)
profile_run() { step_run /tmp/shardtune-profile 3 1; }
part profile profile_run
# QLoRA: the same step on 4-bit weights, timed, then profiled
qlora_flags="--use_4bit_quantization True --bnb_4bit_quant_type nf4 --use_nested_quant True --bnb_4bit_compute_dtype bfloat16"
# shellcheck disable=SC2086
qlora_run() { step_run /tmp/shardtune-qlora 5 0 $qlora_flags; }
# shellcheck disable=SC2086
qlora_profile_run() { step_run /tmp/shardtune-qlora-profile 3 1 $qlora_flags; }
part qlora qlora_run
part qlora_profile qlora_profile_run

echo
echo "GPU: $(cat "$out/gpu.txt")"
grep -E "FAIL|NON-FINITE" "$out/op_check.log" | head -20
echo
echo "| part | result | time |"
echo "| --- | --- | --- |"
cat "$summary"
echo
awk '/^profile/ { on = 1; print; next } on && /^  / { print; next } { on = 0 }' "$out/profile.log"
echo
tail -n 6 "$out/bench.log"
echo
# QLoRA's step after two warm-up steps (the LoRA step's tokens/s is in the table above)
python3 - /tmp/shardtune-qlora <<'PY' || echo "QLoRA step: no metrics (see $out/qlora.log)"
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl") if l.strip()]
r0 = json.load(open(sys.argv[1] + "/summary.json"))["ranks"][0]
tps = [r["tokens_per_second"] for r in rows[2:]]
print(f"QLoRA step (nf4, nested absmax): {statistics.median(tps):.0f} tokens/s (median of {len(tps)}), "
      f"peak device memory {r0['peak_total_bytes'] / 2**30:.2f} GiB, allocator "
      f"{r0.get('allocator_peak_bytes', 0) / 2**30:.2f} GiB")
PY
awk '/^profile/ { on = 1; print; next } on && /^  / { print; next } { on = 0 }' "$out/qlora_profile.log"
exit $status
