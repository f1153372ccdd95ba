# tests/fsdp/fsdp_lib.sh: sourced by the multi-rank tests after tests/lib.sh.
MAKE_MODEL="$top_builddir/tests/fsdp/make_random_llama"
ST_DUMP="$top_builddir/tests/io/st_dump"
export OMP_NUM_THREADS=1   # ranks share two cores

# fsdp_run NAME NP MODEL_DIR [shardtune flags...]: a short LoRA run into
# $SCRATCH/NAME, its output in $SCRATCH/NAME.log; returns its status (124:
# it ran past 300 s).  The environment chooses the strategy (FSDP_* variables).
fsdp_run() {
    name=$1 np=$2 model=$3
    shift 3
    timeout 300 "$MPIRUN" -np "$np" "$SHARDTUNE" train --model_name_or_path "$model" \
        --dataset_name "$model/data.jsonl" --max_seq_len 32 --output_dir "$SCRATCH/$name" \
        --per_device_train_batch_size 1 --learning_rate 1e-2 --lr_scheduler_type cosine \
        --warmup_steps 2 --logging_steps 1 --lora_r 4 --lora_alpha 8 --lora_dropout 0.1 \
        --lora_target_modules all-linear --seed 3 "$@" > "$SCRATCH/$name.log" 2>&1
}

# fsdp_train NAME NP MODEL_DIR [flags...]: fsdp_run, which must succeed.
fsdp_train() {
    fsdp_run "$@" || { cat "$SCRATCH/$1.log" >&2; fail "run $1 (np $2) failed"; }
}

# fsdp_train_fails NAME NP MODEL_DIR [flags...]: fsdp_run, which must end
# with an error: neither succeed nor hang.
fsdp_train_fails() {
    if fsdp_run "$@"; then fail "run $1 succeeded"; else status=$?; fi
    [ "$status" -ne 124 ] || fail "run $1 hung"
}

compare_runs() {
    python3 "$top_srcdir/tests/fsdp/compare_runs.py" --st_dump "$ST_DUMP" "$@"
}
