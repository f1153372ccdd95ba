#!/bin/sh
# train_model_template.sh: a chat model's own template, end to end, as a
# user runs it -- a Hub-style model directory (a tiny random Llama with
# TinyLlama's tokenizer and chat template) and UltraChat's "messages", no
# --chat_template_format:
#  - train renders the rows with the model's template (TRL's SFTTrainer
#    does): step 1's loss, over one micro-batch of every training row,
#    equals transformers' on apply_chat_template(tokenize=True)'s rows;
#    the adapter directory carries the template (also one given by
#    --chat_template_path, which then renders from the adapter as from
#    the file);
#  - eval with --chat_template_path (SmolLM3's template, {% generation %})
#    and --assistant_only_loss: the loss equals PEFT's on transformers'
#    return_assistant_tokens_mask labels;
#  - generate --chat: greedy tokens equal transformers' generate() on
#    apply_chat_template(add_generation_prompt=True);
#  - refusals: --chat_template_path with --chat_template_format, a missing
#    template file, --assistant_only_loss on a model without a template.
. "$top_srcdir/tests/lib.sh"
need_reference_python
T="$top_srcdir/tests/chat_template"
TL="$top_srcdir/tests/tokenizer/data/tinyllama-chat"
export SHARDTUNE_CHAT_TEMPLATE_NOW="2026-03-07 09:05:00"
export PYTHONPATH="$T:$top_srcdir/tests/tokenizer:$PYTHONPATH"
SEQ=1024

mkdir -p "$SCRATCH/tok" "$SCRATCH/model" "$SCRATCH/chat"
# TinyLlama's tokenizer.json with U+00A0 restored (tests/tokenizer/data/README)
"$PY" -c 'import sys, hf_agreement; hf_agreement.fixed_tinyllama(sys.argv[1], sys.argv[2])' \
    "$TL/tokenizer.json" "$SCRATCH/tok/tokenizer.json"
cp "$TL/tokenizer_config.json" "$SCRATCH/tok/"
"$PY" "$T/model_template_oracle.py" make "$SCRATCH/model" "$SCRATCH/tok" || fail "making the model"
head -n 12 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" >"$SCRATCH/chat/train.jsonl"
tail -n 4 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" >"$SCRATCH/chat/test.jsonl"
cp "$T/templates/smollm3.jinja" "$SCRATCH/smollm3.jinja"

lora="--lora_r 4 --lora_alpha 8 --lora_dropout 0 --lora_target_modules all-linear"
"$SHARDTUNE" train --model_name_or_path "$SCRATCH/model" --dataset_name "$SCRATCH/chat" --max_seq_len $SEQ \
    --output_dir "$SCRATCH/out" --per_device_train_batch_size 12 --learning_rate 1e-2 --max_steps 2 \
    --logging_steps 1 $lora >"$SCRATCH/train.log" 2>&1 || { cat "$SCRATCH/train.log" >&2; fail "train"; }
"$SHARDTUNE" eval --model_name_or_path "$SCRATCH/model" --adapter "$SCRATCH/out" --dataset_name "$SCRATCH/chat" \
    --splits test --max_seq_len $SEQ --chat_template_path "$SCRATCH/smollm3.jinja" --assistant_only_loss True \
    --json >"$SCRATCH/eval.json" || fail "eval"
"$SHARDTUNE" generate --model_name_or_path "$SCRATCH/model" --adapter "$SCRATCH/out" --chat \
    --prompt "Tell me a story." --max_new_tokens 6 --temperature 0 >"$SCRATCH/generate.out" 2>"$SCRATCH/generate.err" ||
    { cat "$SCRATCH/generate.err" >&2; fail "generate --chat"; }
"$PY" "$T/model_template_oracle.py" check "$SCRATCH" $SEQ || fail "shardtune differs from transformers (above)"

# a template from --chat_template_path goes with the adapter: the adapter
# directory renders as the file does
"$SHARDTUNE" train --model_name_or_path "$SCRATCH/model" --dataset_name "$SCRATCH/chat" --max_seq_len $SEQ \
    --output_dir "$SCRATCH/out2" --per_device_train_batch_size 12 --max_steps 1 $lora \
    --chat_template_path "$SCRATCH/smollm3.jinja" >"$SCRATCH/train2.log" 2>&1 || { cat "$SCRATCH/train2.log" >&2; fail "train 2"; }
"$PY" -c 'import json, sys; assert json.load(open(sys.argv[1]))["chat_template"] == open(sys.argv[2]).read()' \
    "$SCRATCH/out2/tokenizer_config.json" "$SCRATCH/smollm3.jinja" || fail "the adapter lacks --chat_template_path's template"
"$SHARDTUNE" chat-template --model_name_or_path "$SCRATCH/out2" "$SCRATCH/chat/test.jsonl" >"$SCRATCH/saved.txt"
"$SHARDTUNE" chat-template --model_name_or_path "$SCRATCH/model" --chat_template_path "$SCRATCH/smollm3.jinja" \
    "$SCRATCH/chat/test.jsonl" >"$SCRATCH/file.txt"
cmp -s "$SCRATCH/saved.txt" "$SCRATCH/file.txt" || fail "the adapter's saved template renders differently"

# refusals: one line naming the flag or file, exit 1
refused() { # WANT ARGS...
    want=$1
    shift
    rc=0
    "$SHARDTUNE" "$@" >"$SCRATCH/r.out" 2>"$SCRATCH/r.err" || rc=$?
    [ "$rc" = 1 ] || [ "$rc" = 2 ] || fail "$*: exit status $rc: $(cat "$SCRATCH/r.err")"
    [ "$(grep -c . "$SCRATCH/r.err")" = 1 ] || fail "$*: not one line: $(cat "$SCRATCH/r.err")"
    grep -qF -- "$want" "$SCRATCH/r.err" || fail "$*: expected \"$want\", got: $(cat "$SCRATCH/r.err")"
    echo "refused: $(cat "$SCRATCH/r.err")"
}
data="--model_name_or_path $SCRATCH/model --dataset_name $SCRATCH/chat --splits test --max_seq_len $SEQ"
refused "--chat_template_path and --chat_template_format chatml" eval $data \
    --chat_template_path "$SCRATCH/smollm3.jinja" --chat_template_format chatml
refused "--chat_template_path $SCRATCH/none.jinja: cannot open" eval $data --chat_template_path "$SCRATCH/none.jinja"
printf '{%% for m in messages %%}{{ m.content }}\n' >"$SCRATCH/broken.jinja"
refused "--chat_template_path $SCRATCH/broken.jinja: chat template line" eval $data \
    --chat_template_path "$SCRATCH/broken.jinja"
printf '{{ "\377" }}' >"$SCRATCH/latin1.jinja"
refused "--chat_template_path $SCRATCH/latin1.jinja: not UTF-8 text (byte 4)" eval $data \
    --chat_template_path "$SCRATCH/latin1.jinja"
mkdir -p "$SCRATCH/plain"
cp "$SCRATCH/model/config.json" "$SCRATCH/model/model.safetensors" "$SCRATCH/tok/tokenizer.json" "$SCRATCH/plain/"
"$PY" -c 'import json, sys; c = json.load(open(sys.argv[1])); del c["chat_template"]; json.dump(c, open(sys.argv[2], "w"))' \
    "$SCRATCH/tok/tokenizer_config.json" "$SCRATCH/plain/tokenizer_config.json"
refused "--assistant_only_loss needs a chat template" eval --model_name_or_path "$SCRATCH/plain" \
    --dataset_name "$SCRATCH/chat" --splits test --max_seq_len $SEQ --assistant_only_loss True
refused "the model has no chat template" eval --model_name_or_path "$SCRATCH/plain" \
    --dataset_name "$SCRATCH/chat" --splits test --max_seq_len $SEQ
refused "--chat: $SCRATCH/plain has no chat template" generate --model_name_or_path "$SCRATCH/plain" --chat \
    --prompt hi --max_new_tokens 1
echo PASS
