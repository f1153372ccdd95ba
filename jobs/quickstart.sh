#!/usr/bin/env bash
# quickstart.sh: on a fresh Debian 12 machine, install what shardtune needs,
# build it, and run the main job on the shipped default: the tiny pretrained
# Llama stories260K (converted from llama2.c) fine-tuned with LoRA on the
# shipped UltraChat sample, chatml and packing as in the PEFT guide, on two
# MPI ranks (FSDP, FULL_SHARD); then a sample from the tuned model.
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
        libopenmpi-dev openmpi-bin libhdf5-openmpi-dev libdnnl-dev libjansson-dev libpcre2-dev libyaml-dev \
        libprotobuf-c-dev protobuf-c-compiler libisal-dev \
        libcmocka-dev libcairo2-dev valgrind clang-14 libclang-rt-14-dev man-db python3 python3-venv python3-h5py python3-numpy procps \
        slurm-wlm slurm-wlm-torque munge iproute2 >/dev/null
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
# the PEFT guide's recipe on the shipped chat sample: chatml tokens added (the
# vocabulary grows to a multiple of 8), conversations rendered and packed
# into 256-token blocks, LoRA on every linear layer, evaluated on the test split
mkdir -p "$out/chat"
head -n 14 assets/data/ultrachat_200k_sample16.jsonl > "$out/chat/train.jsonl"
tail -n 2 assets/data/ultrachat_200k_sample16.jsonl > "$out/chat/test.jsonl"
data="--dataset_name $out/chat --splits train,test --chat_template_format chatml --packing True \
    --dataset_text_field content --add_special_tokens False --append_concat_token False --max_seq_len 256"
$run train --model_name_or_path "$out/stories260K" $data --output_dir "$out/lora" \
    --per_device_train_batch_size 4 --gradient_accumulation_steps 1 --learning_rate 5e-3 \
    --lr_scheduler_type cosine --warmup_ratio 0.1 --num_train_epochs 3 --logging_steps 10 \
    --eval_strategy epoch --use_peft_lora True --lora_r 8 --lora_alpha 16 --lora_dropout 0.05 \
    --lora_target_modules all-linear --gradient_checkpointing True --seed 42
$run generate --model_name_or_path "$out/stories260K" --adapter "$out/lora" --chat \
    --prompt "Write a short story about a brave little cat." --max_new_tokens 80 --temperature 0.8 --top_p 0.9
echo "quickstart: adapter in $out/lora, metrics in $out/lora/metrics.jsonl"
