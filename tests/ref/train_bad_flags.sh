#!/bin/sh
# Proves: `shardtune train` refuses bad command lines cleanly, as DESIGN.md's
# "Errors and output" asks: an unknown flag, a non-number for --learning_rate
# and a non-boolean for --gradient_checkpointing exit 2 with a
# "shardtune: error:" line naming the flag; a model directory that does not
# exist exits nonzero (not by a signal) naming the path; --device tpu is
# refused, as is a --report_to that names no logging integration or none
# beside another; --device cuda where no GPU answers (or no CUDA plugin was
# built) fails with one line; none of them leaves an adapter behind.
# No Python: the valid parts of the command line use tests/ref/tiny_model.sh.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/tiny_model.sh"

write_tiny_model "$SCRATCH/tiny"
M="$SCRATCH/tiny"

# train ARGS: runs shardtune train, keeps stderr in $SCRATCH/err and the status in rc
train() {
    rc=0
    "$SHARDTUNE" train "$@" >"$SCRATCH/out" 2>"$SCRATCH/err" || rc=$?
    echo "shardtune train $* -> exit $rc:"; head -n 3 "$SCRATCH/err"
}

# train_valid_but NAME ARGS: a valid command line (output in out_NAME), then ARGS
train_valid_but() {
    name=$1
    shift
    train --model_name_or_path "$M/model" --adapter "$M/adapter" --use_peft_lora True \
        --dataset_name "$M/data.jsonl" --output_dir "$SCRATCH/out_$name" --max_seq_len 32 \
        --per_device_train_batch_size 2 --max_steps 1 "$@"
}

# expect STATUS WORD...: the last run exited STATUS ("nonzero": any clean
# failure) with every WORD on stderr
expect() {
    want=$1
    shift
    case $want in
        nonzero) if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then
                     fail "exit status $rc, expected a clean failure"
                 fi ;;
        *) [ "$rc" -eq "$want" ] || fail "exit status $rc, expected $want" ;;
    esac
    for w in "$@"; do
        grep -F -e "$w" "$SCRATCH/err" >/dev/null || fail "stderr lacks \"$w\""
    done
}

train --no_such_flag 1
expect 2 "shardtune: error:" "--no_such_flag"

train_valid_but lr --learning_rate abc
expect 2 "shardtune: error:" "--learning_rate"
[ ! -e "$SCRATCH/out_lr/adapter_model.safetensors" ] || fail "an adapter was written after a usage error"

train_valid_but gc --gradient_checkpointing maybe
expect 2 "shardtune: error:" "--gradient_checkpointing"
[ ! -e "$SCRATCH/out_gc/adapter_model.safetensors" ] || fail "an adapter was written after a usage error"

train_valid_but dev --device tpu
expect 2 "shardtune: error:" "--device" "tpu"

train_valid_but rep --report_to tensorboard,neptun
expect 2 "shardtune: error:" "--report_to" "neptun"
train_valid_but rep_none --report_to none,tensorboard
expect 2 "shardtune: error:" "--report_to" "none goes alone"

if [ ! -e /dev/nvidiactl ] && [ ! -e /dev/nvidia0 ]; then
    train_valid_but cuda --device cuda
    expect nonzero "shardtune: error:" "--device cuda"
    [ "$(grep -c . "$SCRATCH/err")" -eq 1 ] || fail "--device cuda without a GPU printed more than one line"
    [ ! -e "$SCRATCH/out_cuda/adapter_model.safetensors" ] || fail "an adapter was written without a GPU"
fi

missing="$SCRATCH/no_such_model_dir"
train --model_name_or_path "$missing" --adapter "$M/adapter" --use_peft_lora True \
    --dataset_name "$M/data.jsonl" --output_dir "$SCRATCH/out_missing" --max_seq_len 32 \
    --max_steps 1
expect nonzero "shardtune: error:" "$missing"
[ ! -e "$SCRATCH/out_missing/adapter_model.safetensors" ] || fail "an adapter was written without a model"
echo "PASS"
