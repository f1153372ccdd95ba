#!/bin/sh
# Proves, for `train --report_to tensorboard` (tests/ref/tensorboard_check.py):
#  - TensorBoard's own reader (EventAccumulator) finds under transformers'
#    tags exactly the numbers of metrics.jsonl, as float32, step for step:
#    training logs every step (a learning rate of 0 in warmup included),
#    evaluations every 2;
#  - after --resume_from_checkpoint (a second events file in the same
#    directory), what TensorBoard shows is again metrics.jsonl: the first
#    run's steps after the checkpoint are dropped;
#  - both CRC32C of a record are right: TensorBoard's record reader reads
#    the file, and refuses a record with a byte flipped in its data or length;
#  - --report_to none (the default) writes no events file; --report_to wandb
#    runs, with one note.
. "$top_srcdir/tests/lib.sh"
need_reference_python
"$PY" -c 'import tensorboard' 2>/dev/null || skip_unless_required "no tensorboard in $PY (tests/requirements.txt)"

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" > /dev/null
mkdir -p "$SCRATCH/chat"
head -n 6 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/train.jsonl"
tail -n 2 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/test.jsonl"
out="$SCRATCH/out"
# train [FLAGS]: six steps, logged every step, evaluated every 2, saved every 3
train() {
    "$SHARDTUNE" train --model_name_or_path "$SCRATCH/model" --dataset_name "$SCRATCH/chat" \
        --chat_template_format chatml --packing True --dataset_text_field content --max_seq_len 128 \
        --per_device_train_batch_size 4 --learning_rate 1e-2 --warmup_steps 1 --max_steps 6 --logging_steps 1 \
        --eval_strategy steps --eval_steps 2 --save_strategy steps --save_steps 3 --lora_r 4 --lora_alpha 8 \
        --lora_dropout 0 "$@" > "$SCRATCH/train.log" 2>&1 || { cat "$SCRATCH/train.log" >&2; fail "train $*"; }
}

train --output_dir "$out" --report_to tensorboard
"$PY" "$top_srcdir/tests/ref/tensorboard_check.py" match "$out" || fail "events differ from metrics.jsonl"
"$PY" "$top_srcdir/tests/ref/tensorboard_check.py" crc "$(ls "$out"/runs/events.out.tfevents.* | head -n 1)" \
    || fail "TensorBoard's CRC32C check"

sleep 1 # a later second: the resumed run's file sorts after the first
train --output_dir "$out" --report_to tensorboard --resume_from_checkpoint "$out/checkpoint-3.h5"
[ "$(ls "$out"/runs | grep -c tfevents)" -eq 2 ] || fail "the resumed run did not add an events file"
"$PY" "$top_srcdir/tests/ref/tensorboard_check.py" match "$out" || fail "events differ from metrics.jsonl after resume"

train --output_dir "$SCRATCH/none"
[ ! -e "$SCRATCH/none/runs" ] || fail "--report_to none wrote $SCRATCH/none/runs"
train --output_dir "$SCRATCH/wandb" --report_to wandb --save_strategy no
[ ! -e "$SCRATCH/wandb/runs" ] || fail "--report_to wandb wrote $SCRATCH/wandb/runs"
[ "$(grep -c '^note: --report_to wandb' "$SCRATCH/train.log")" -eq 1 ] || fail "no one note for --report_to wandb"
grep '^note: --report_to' "$SCRATCH/train.log"
echo PASS
