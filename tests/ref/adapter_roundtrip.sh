# tests/ref/adapter_roundtrip.sh: sourced after tests/lib.sh by the tests that
# check adapters PEFT saved against PEFT (peft_eval_losses.py reads
# $SCRATCH/results).  Needs $model and $data (shardtune's flags for the base
# model and the rows).

# run NAME CMD...: the command's output in $SCRATCH/NAME.log; fail showing it
run() { _n=$1; shift; "$@" > "$SCRATCH/$_n.log" 2>&1 || { cat "$SCRATCH/$_n.log"; fail "$_n"; }; }
loss_of() { sed -n 's/.*"eval_loss": \([^,]*\),.*/\1/p' "$SCRATCH/$1.log"; }

# roundtrip ADAPTER_DIR: `shardtune eval --adapter`, continued training at
# learning rate 0 (saved to $SCRATCH/resaved_NAME) and `shardtune merge` then
# eval of the merged model; appends to $SCRATCH/results the three losses that
# must each be PEFT's loss of the adapter (the second: of the resaved one).
roundtrip() {
    _a=$1 _f=${1##*/}
    # shellcheck disable=SC2086
    run "eval_$_f" "$SHARDTUNE" eval $model --adapter "$_a" $data --json
    # shellcheck disable=SC2086
    run "train_$_f" "$SHARDTUNE" train $model --adapter "$_a" $data --output_dir "$SCRATCH/resaved_$_f" \
        --learning_rate 0 --max_steps 1 --save_strategy no
    # shellcheck disable=SC2086
    run "merge_$_f" "$SHARDTUNE" merge $model --adapter "$_a" --out "$SCRATCH/merged_$_f"
    # shellcheck disable=SC2086
    run "eval_merged_$_f" "$SHARDTUNE" eval --model_name_or_path "$SCRATCH/merged_$_f" $data --json
    {
        echo "$_f $_a $(loss_of "eval_$_f")"
        echo "$_f:resaved-by-shardtune $SCRATCH/resaved_$_f $(loss_of "eval_$_f")"
        echo "$_f:merged $_a $(loss_of "eval_merged_$_f")"
    } >> "$SCRATCH/results"
}
