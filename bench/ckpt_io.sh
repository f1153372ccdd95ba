#!/usr/bin/env bash
# bench/ckpt_io.sh: checkpoint write and read (resume) time and size, both
# layouts, on 1, 2 and 4 ranks, for a random model whose LoRA adapters and
# AdamW moments are a few hundred MB (hidden 1024, 4 layers, r 512 on all
# linear layers: about 27M trainable parameters, x3 with the moments).
#   bench/ckpt_io.sh [BUILD_DIR]
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/_build}" && pwd)
work=$(mktemp -d /tmp/shardtune-ckpt-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1 OMP_NUM_THREADS=1
make -C "$build" -s tests/fsdp/make_random_llama shardtune >/dev/null
"$build/tests/fsdp/make_random_llama" --out "$work/m" --hidden 1024 --intermediate 2816 --layers 4 --heads 8 \
    --kv_heads 4 --vocab 1024 --rows 8 --min_len 16 --max_len 16
run() { # run NP LAYOUT OUT [flags]
    np=$1 layout=$2 out=$3
    shift 3
    FSDP_STATE_DICT_TYPE=$layout mpirun -np "$np" "$build/shardtune" train --model_name_or_path "$work/m" \
        --dataset_name "$work/m/data.jsonl" --max_seq_len 16 --output_dir "$out" --per_device_train_batch_size 1 \
        --gradient_accumulation_steps $((4 / np)) --lora_r 512 --lora_alpha 16 --lora_target_modules all-linear \
        --save_steps 1 "$@"
}
printf '%-6s %-20s %-10s %-12s %-12s\n' ranks layout "MiB" "write s" "read s"
for np in 1 2 4; do
    for layout in SHARDED_STATE_DICT FULL_STATE_DICT; do
        out="$work/o.$np.$layout"
        w=$(run "$np" "$layout" "$out" --max_steps 1 2>&1 | sed -n 's/^checkpoint .*: \([0-9.]*\) MiB written in \([0-9.]*\) s/\1 \2/p')
        r=$(run "$np" "$layout" "$out" --max_steps 1 --save_strategy no --resume_from_checkpoint "$out/checkpoint-1.h5" \
            2>&1 | sed -n 's/^resumed from .* in \([0-9.]*\) s/\1/p')
        set -- $w
        printf '%-6s %-20s %-10s %-12s %-12s\n' "$np" "$layout" "$1" "$2" "$r"
    done
done
