#!/bin/sh
# rows_seeds.sh DIR: the seed inputs of the dataset-rows fuzz target
# (fuzz_rows.c: an option byte, then the file), one file each: the first
# lines of tests/data's UltraChat sample, FastChat's ShareGPT array, the
# conversations of tests/chat_template, and hand-made rows of each kind
# (text, messages, conversations, input_ids with labels) and bad rows,
# each under a few option bytes (see fuzz_rows.c: packing, bfd, chatml,
# assistant-only loss, concat token, special tokens, short rows).
set -eu
T="$(cd "$(dirname "$0")/.." && pwd)"
SEEDS=$1
mkdir -p "$SEEDS"
seed() { # NAME OPTIONS (octal byte), the file on stdin
    { printf "\\$2"; cat; } >"$SEEDS/$1"
}
# whole lines of UltraChat, within the 16 KiB that mutated inputs may have
head -c 16000 "$T/data/ultrachat_200k_sample16.jsonl" | sed '$d' | seed ultrachat_chatml 005
head -c 16000 "$T/data/ultrachat_200k_sample16.jsonl" | sed '$d' | seed ultrachat_assistant_bfd 017
# FastChat's array cut after its second conversation
awk '{ if ($0 == "  },") { if (++n == 2) { print "  }"; print "]"; exit } } print }' \
    "$T/data/fastchat_dummy_conversation.json" | seed fastchat_sharegpt 014
seed conversations_chatml 004 <"$T/chat_template/conversations.jsonl"
seed conversations_packed 135 <"$T/chat_template/conversations.jsonl"
printf '{"text": "Hello world"}\n\n{"text": "caf\\u00e9 \\u4e16\\u754c <|endoftext|>"}\n' | seed text 000
printf '{"text": "Hello world"}\n{"text": "a b c d e f g h i j k l m n o p"}\n' | seed text_wrapped_concat 161
printf '[{"text": "one"},\n {"text": "two"}]\n' | seed text_array 003
printf '{"input_ids": [1, 2, 3, 50256], "labels": [-100, 2, 3, 50256]}\n{"input_ids": [7]}\n' | seed input_ids 001
printf '{"input_ids": [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11], "labels": [-100, -100, 3, 4, 5, 6, 7, 8, 9, 10, 11]}\n' |
    seed input_ids_short_bfd 103
printf '{"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"}, {"from": "gpt", "value": "Hello"}]}\n' |
    seed sharegpt_chatml 014
# rows the loader refuses
printf '{"text": 5}\n' | seed bad_text_type 000
printf '{"messages": []}\n' | seed bad_empty_messages 004
printf '{"messages": [{"role": "user"}]}\n' | seed bad_no_content 004
printf '{"conversations": [{"from": "robot", "value": "x"}]}\n' | seed bad_sharegpt_role 004
printf '{"input_ids": [1, 99999999]}\n' | seed bad_id 000
printf '{"input_ids": [1, 2], "labels": [1]}\n' | seed bad_labels 000
printf '[{"text": "a"} {"text": "b"}]\n' | seed bad_array 000
printf '{"text": "a"\n' | seed bad_json 000
printf '{"messages": [{"role": "user", "content": "hi"}]}\n' | seed bad_assistant_only_none 010
