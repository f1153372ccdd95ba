#!/bin/sh
# Loss plots (src/plot_*.c):
#  - `shardtune train` writes loss.png (1200x700, the loss line where the
#    documented axis mapping puts it) and loss.svg (XML, <svg>) beside
#    metrics.jsonl, also at a checkpoint save, and leaves no temporary file;
#  - `shardtune plot RUN_DIR` redraws them; `shardtune plot A B --out ...`
#    overlays two runs (each run's colour present); several runs without
#    --out are a usage error;
#  - a dir without metrics.jsonl, and a corrupt line (file:line), fail with
#    one line; NaN values, a single point and a constant loss still plot.
# A build without cairo: train notes it once and `shardtune plot` refuses
# with one line (then the test skips: nothing was drawn to check).
. "$top_srcdir/tests/lib.sh"
need_reference_python
CHECK="$PY $top_srcdir/tests/plot/check_plot.py"

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" > /dev/null
mkdir -p "$SCRATCH/chat"
head -n 6 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/train.jsonl"
tail -n 2 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/test.jsonl"
# train RUN LR STEPS [FLAGS...]
train() {
    run=$1 lr=$2 steps=$3
    shift 3
    "$SHARDTUNE" train --model_name_or_path "$SCRATCH/model" --dataset_name "$SCRATCH/chat" \
        --chat_template_format chatml --packing True --dataset_text_field content --max_seq_len 128 \
        --output_dir "$SCRATCH/$run" --per_device_train_batch_size 4 --learning_rate "$lr" --max_steps "$steps" \
        --logging_steps 1 --eval_strategy steps --eval_steps 2 --lora_r 4 --lora_alpha 8 "$@" \
        > "$SCRATCH/$run.log" 2>&1 || { cat "$SCRATCH/$run.log" >&2; fail "train $run"; }
}
# one_line_error LOG WHAT: the command failed with one line naming WHAT
one_line_error() {
    [ "$(wc -l < "$1")" -eq 1 ] || { cat "$1" >&2; fail "$2: not one line"; }
    grep -q "^shardtune: error: .*$2" "$1" || { cat "$1" >&2; fail "the error does not name $2"; }
}

train run1 1e-2 8 --save_strategy steps --save_steps 4 --warmup_steps 2 --lr_scheduler_type cosine
if grep -q "plots need cairo (libcairo2-dev): none written" "$SCRATCH/run1.log"; then
    [ ! -e "$SCRATCH/run1/loss.png" ] || fail "a build without cairo wrote loss.png"
    if "$SHARDTUNE" plot "$SCRATCH/run1" 2> "$SCRATCH/nocairo.err"; then fail "plot without cairo succeeded"; fi
    one_line_error "$SCRATCH/nocairo.err" "plots need cairo"
    skip_unless_required "shardtune was built without cairo: no plot to check"
fi
grep -q "loss plot: $SCRATCH/run1/loss.png" "$SCRATCH/run1.log" || { cat "$SCRATCH/run1.log"; fail "no loss plot line"; }
ls "$SCRATCH/run1" | grep -q '\.tmp' && fail "a temporary file was left in $SCRATCH/run1"
$CHECK png "$SCRATCH/run1/loss.png" "$SCRATCH/run1/metrics.jsonl" || fail "run1/loss.png"
$CHECK svg "$SCRATCH/run1/loss.svg" || fail "run1/loss.svg"

# shardtune plot of the finished run: the same files again
rm "$SCRATCH/run1/loss.png" "$SCRATCH/run1/loss.svg"
"$SHARDTUNE" plot "$SCRATCH/run1" > /dev/null || fail "shardtune plot run1"
$CHECK png "$SCRATCH/run1/loss.png" "$SCRATCH/run1/metrics.jsonl" || fail "replotted run1/loss.png"
$CHECK svg "$SCRATCH/run1/loss.svg" || fail "replotted run1/loss.svg"

# two runs overlaid
train run2 3e-3 6
"$SHARDTUNE" plot "$SCRATCH/run1" "$SCRATCH/run2" --out "$SCRATCH/cmp.png" --out "$SCRATCH/cmp.svg" > /dev/null \
    || fail "shardtune plot run1 run2"
$CHECK overlay "$SCRATCH/cmp.png" 2 || fail "cmp.png"
$CHECK svg "$SCRATCH/cmp.svg" || fail "cmp.svg"
if "$SHARDTUNE" plot "$SCRATCH/run1" "$SCRATCH/run2" 2> "$SCRATCH/noout.err"; then fail "two runs without --out"; fi
one_line_error "$SCRATCH/noout.err" "--out"

# refusals: no metrics.jsonl; a corrupt line, named by file:line
mkdir -p "$SCRATCH/empty"
if "$SHARDTUNE" plot "$SCRATCH/empty" 2> "$SCRATCH/empty.err"; then fail "plot of a dir without metrics.jsonl"; fi
one_line_error "$SCRATCH/empty.err" "$SCRATCH/empty/metrics.jsonl"
[ ! -e "$SCRATCH/empty/loss.png" ] || fail "a failed plot wrote loss.png"
mkdir -p "$SCRATCH/bad"
{ head -n 4 "$SCRATCH/run1/metrics.jsonl"; echo '{"step": 5, "loss": 3.1'; } > "$SCRATCH/bad/metrics.jsonl"
if "$SHARDTUNE" plot "$SCRATCH/bad" 2> "$SCRATCH/bad.err"; then fail "plot of a corrupt metrics.jsonl"; fi
one_line_error "$SCRATCH/bad.err" "$SCRATCH/bad/metrics.jsonl:5:"

# what a plot must survive: NaN/inf (as printf and Python write them), no
# eval or lr, one point, a constant loss
mkdir -p "$SCRATCH/odd" "$SCRATCH/one" "$SCRATCH/flat"
printf '%s\n' '{"step": 1, "loss": 2.5, "learning_rate": nan}' '{"step": 2, "loss": NaN, "eval_loss": -inf}' \
    '{"step": 3, "loss": 2.0, "note": "nan inside a string"}' '{"unknown": true}' '{"step": 4, "loss": Infinity}' \
    > "$SCRATCH/odd/metrics.jsonl"
echo '{"step": 7, "loss": 1.5, "learning_rate": 0.001}' > "$SCRATCH/one/metrics.jsonl"
for s in 1 2 3 4; do echo "{\"step\": $s, \"loss\": 2.0, \"eval_loss\": 2.0, \"learning_rate\": 0.0}"; done \
    > "$SCRATCH/flat/metrics.jsonl"
for d in odd one flat; do
    "$SHARDTUNE" plot "$SCRATCH/$d" > /dev/null || fail "plot of $d"
    $CHECK png "$SCRATCH/$d/loss.png" "$SCRATCH/$d/metrics.jsonl" || fail "$d/loss.png"
done
echo PASS
