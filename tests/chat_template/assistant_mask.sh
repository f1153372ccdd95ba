#!/bin/sh
# assistant_mask.sh: conversations rendered by a model's own chat template
# become the token ids `tokenizers` gives for transformers' rendered text,
# and --assistant_only_loss trains on exactly transformers'
# return_assistant_tokens_mask where the template has {% generation %}
# blocks (SmolLM3's; a small Zephyr-like one), else on the assistant
# replies found in the text (TinyLlama's own template, Qwen2.5's, Phi-4's
# through --chat_template_path); named templates ("default", and
# "tool_use" for rows with tools); with both shipped tokenizers (TinyLlama's
# SentencePiece-BPE and GPT-2's byte-level BPE), on the UltraChat and
# ShareGPT samples and the hand-made conversations.
. "$top_srcdir/tests/lib.sh"
need_reference_python
T="$top_srcdir/tests/chat_template"
export SHARDTUNE_CHAT_TEMPLATE_NOW="2026-03-07 09:05:00"

# tokenizer directories: TinyLlama's with its own template; TinyLlama's with
# SmolLM3's template as chat_template.jinja; GPT-2's slow files with its
# special tokens named in a tokenizer_config.json
TL="$top_srcdir/tests/tokenizer/data/tinyllama-chat"
mkdir -p "$SCRATCH/tinyllama" "$SCRATCH/smollm3" "$SCRATCH/gpt2"
# (U+00A0 restored in TinyLlama's tokenizer.json, tests/tokenizer/data/README,
# so that `tokenizers` loads it)
PYTHONPATH="$top_srcdir/tests/tokenizer:$PYTHONPATH" "$PY" -c \
    'import sys, hf_agreement; hf_agreement.fixed_tinyllama(sys.argv[1], sys.argv[2])' \
    "$TL/tokenizer.json" "$SCRATCH/tinyllama/tokenizer.json"
cp "$TL/tokenizer_config.json" "$SCRATCH/tinyllama/"
cp "$SCRATCH/tinyllama/tokenizer.json" "$SCRATCH/smollm3/"
"$PY" -c 'import json, sys; c = json.load(open(sys.argv[1])); del c["chat_template"]; json.dump(c, open(sys.argv[2], "w"))' \
    "$TL/tokenizer_config.json" "$SCRATCH/smollm3/tokenizer_config.json"
cp "$T/templates/smollm3.jinja" "$SCRATCH/smollm3/chat_template.jinja"
cp "$top_srcdir/tests/tokenizer/data/gpt2/vocab.json" "$top_srcdir/tests/tokenizer/data/gpt2/merges.txt" "$SCRATCH/gpt2/"
printf '{"tokenizer_class": "GPT2Tokenizer", "bos_token": "<|endoftext|>", "eos_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}\n' \
    >"$SCRATCH/gpt2/tokenizer_config.json"

# named templates: a tokenizer_config.json list, and the files transformers
# saves (chat_template.jinja + additional_chat_templates/tool_use.jinja):
# "default" is the Zephyr-like one, "tool_use" Qwen2.5's
mkdir -p "$SCRATCH/list" "$SCRATCH/files/additional_chat_templates"
cp "$SCRATCH/tinyllama/tokenizer.json" "$SCRATCH/list/"
cp "$SCRATCH/tinyllama/tokenizer.json" "$SCRATCH/smollm3/tokenizer_config.json" "$SCRATCH/files/"
cp "$T/generation_zephyr.jinja" "$SCRATCH/files/chat_template.jinja"
cp "$T/templates/qwen2.5.jinja" "$SCRATCH/files/additional_chat_templates/tool_use.jinja"
"$PY" -c 'import json, sys
c = json.load(open(sys.argv[1]))
c["chat_template"] = [{"name": "default", "template": open(sys.argv[2]).read()},
                      {"name": "tool_use", "template": open(sys.argv[3]).read()}]
json.dump(c, open(sys.argv[4], "w"))' "$SCRATCH/smollm3/tokenizer_config.json" "$T/generation_zephyr.jinja" \
    "$T/templates/qwen2.5.jinja" "$SCRATCH/list/tokenizer_config.json"

"$PY" "$T/assistant_mask_check.py" "$top_builddir/tests/data/data_dump" "$SCRATCH" \
    "smollm3:$SCRATCH/smollm3" \
    "generation-zephyr-gpt2:$SCRATCH/gpt2:$T/generation_zephyr.jinja" \
    "tinyllama:$SCRATCH/tinyllama" \
    "qwen2.5-gpt2:$SCRATCH/gpt2:$T/templates/qwen2.5.jinja" \
    "phi-4-tinyllama:$SCRATCH/tinyllama:$T/templates/phi-4.jinja" \
    "named-list:$SCRATCH/list" "named-files:$SCRATCH/files" \
    -- "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" "$top_srcdir/tests/data/fastchat_dummy_conversation.json" \
    "$T/conversations.jsonl" "$T/tool_rows.jsonl" || fail "shardtune's rows differ from transformers' (above)"
echo PASS
