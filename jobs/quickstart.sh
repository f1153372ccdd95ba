#!/usr/bin/env bash
# quickstart.sh: on a fresh Debian 12 machine, install what shardtune needs,
# build it, and run the main job on the shipped default: the tiny pretrained
# Llama stories260K (converted from llama2.c) fine-tuned with LoRA on the
# shipped pre-tokenized stories on two MPI ranks (FSDP, FULL_SHARD), then
# evaluated before and after.
#   ./jobs/quickstart.sh            (as root, or with sudo available)
# SHARDTUNE_SKIP_APT=1 skips the package installation.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

if [ "${SHARDTUNE_SKIP_APT:-0}" != 1 ]; then
    sudo=""
    [ "$(id -u)" = 0 ] || sudo=sudo
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
        build-essential autoconf automake libtool pkg-config ca-certificates \
        libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libopenblas-dev libjansson-dev libpcre2-dev libyaml-dev \
        libcmocka-dev valgrind python3 python3-venv >/dev/null
fi

autoreconf -fi >/dev/null
mkdir -p _build
(cd _build && { [ -f Makefile ] || ../configure -q; } && make -j"$(nproc)" >/dev/null)

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# two ranks, FULL_SHARD (accelerate's default): each holds half of every unit
export OMP_NUM_THREADS=1
run="mpirun -np 2 _build/shardtune"
out=runs/quickstart
mkdir -p "$out"
_build/shardtune convert llama2c --checkpoint assets/model/stories260K.bin --tokenizer assets/model/tok512.bin \
    --out "$out/stories260K"
$run eval --model_name_or_path "$out/stories260K" --dataset_name assets/data/tiny_stories_ids.jsonl \
    --max_seq_len 256
$run train --model_name_or_path "$out/stories260K" --dataset_name assets/data/tiny_stories_ids.jsonl \
    --max_seq_len 256 --output_dir "$out/lora" --per_device_train_batch_size 4 \
    --gradient_accumulation_steps 1 --learning_rate 5e-3 --lr_scheduler_type cosine --warmup_ratio 0.1 \
    --num_train_epochs 4 --logging_steps 5 --use_peft_lora True --lora_r 8 --lora_alpha 16 \
    --lora_dropout 0.05 --lora_target_modules all-linear --gradient_checkpointing True --seed 42
$run eval --model_name_or_path "$out/stories260K" --adapter "$out/lora" \
    --dataset_name assets/data/tiny_stories_ids.jsonl --max_seq_len 256
echo "quickstart: adapter in $out/lora, metrics in $out/lora/metrics.jsonl"
