#!/bin/sh
# tokenizer_seeds.sh DIR: the seed inputs of the tokenizer fuzz target
# (fuzz_tokenizer.c: A NUL B, B a tokenizer_config.json when it starts with
# '{', else A is vocab.json and B merges.txt), one file each: the shipped
# TinyLlama-chat files (1.8 MB: fuzz_run.sh runs it whole, once) and
# GPT-2's slow files cut to their first 300 entries, and small hand-made
# tokenizer.json files for each part of the format the loader reads: BPE
# with byte fallback and the SentencePiece normalizer, Metaspace, byte-level
# with a Split regex, Digits, WhitespaceSplit, added tokens, the
# post-processors, and a few it refuses.
set -eu
D="$(cd "$(dirname "$0")/../tokenizer/data" && pwd)"
SEEDS=$1
mkdir -p "$SEEDS"
nul() { printf '\000'; }
{ cat "$D/tinyllama-chat/tokenizer.json"; nul; cat "$D/tinyllama-chat/tokenizer_config.json"; } >"$SEEDS/tinyllama.bin"
# GPT-2's vocab.json is one line: its first 300 entries, then the merges of the first 300 lines
{ head -c 4000 "$D/gpt2/vocab.json" | sed 's/, "[^"]*$//; s/$/}/'; nul; head -n 300 "$D/gpt2/merges.txt"; } >"$SEEDS/gpt2_slow.bin"
{ printf '{"a": 0, "b": 1, "ab": 2, "\\u0120": 3, "\\u0120ab": 4, "<|endoftext|>": 5}'; nul
  printf '#version: 0.2\na b\n\\u0120 ab\n'; } >"$SEEDS/slow_tiny.bin"
V='"<unk>": 0, "<s>": 1, "</s>": 2, "<0x0A>": 3, "<0x20>": 4, "<0xC3>": 5, "<0xA9>": 6, "\u2581": 7, "H": 8, "e": 9, "l": 10, "o": 11, "\u2581H": 12, "ll": 13, "llo": 14, "\u2581Hello": 15, "He": 16'
M='"\u2581 H", "l l", "ll o", "H e", "\u2581H e", "\u2581He llo"'
A='{"id": 0, "content": "<unk>", "special": true, "normalized": false, "lstrip": false, "rstrip": false, "single_word": false},
 {"id": 1, "content": "<s>", "special": true, "normalized": false},
 {"id": 2, "content": "</s>", "special": true, "normalized": false},
 {"id": 17, "content": "<|im_start|>", "special": true, "normalized": false, "lstrip": true, "rstrip": true},
 {"id": 18, "content": "world", "special": false, "normalized": true, "single_word": true}'
POST='{"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
 "special_tokens": {"<s>": {"id": "<s>", "ids": [1], "tokens": ["<s>"]}, "</s>": {"id": "</s>", "ids": [2], "tokens": ["</s>"]}}}'
sp_norm='{"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "\u2581"}, {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]}'
sp_dec='{"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]}'
bpe() { # NORMALIZER PRE_TOKENIZER POST_PROCESSOR DECODER MODEL_EXTRA
    printf '{"version": "1.0", "added_tokens": [%s],\n "normalizer": %s, "pre_tokenizer": %s, "post_processor": %s, "decoder": %s,\n' "$A" "$1" "$2" "$3" "$4"
    printf ' "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", %s "vocab": {%s}, "merges": [%s]}}' "$5" "$V" "$M"
}
bpe "$sp_norm" null "$POST" "$sp_dec" '"byte_fallback": true, "fuse_unk": true,' >"$SEEDS/sentencepiece.json"
{ bpe "$sp_norm" null "$POST" "$sp_dec" '"byte_fallback": true, "fuse_unk": true,'; nul
  printf '{"add_bos_token": true, "add_eos_token": true, "bos_token": {"content": "<s>"}, "eos_token": "</s>", "unk_token": "<unk>", "pad_token": null,
 "added_tokens_decoder": {"19": {"content": "<|im_end|>", "special": true}}}'; } >"$SEEDS/sentencepiece_config.bin"
bpe null '{"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "first", "split": false}' null \
    '{"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always"}' '"byte_fallback": true,' >"$SEEDS/metaspace.json"
bpe null '{"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "(?i:'"'"'s|'"'"'t)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false}]}' \
    '{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true}' \
    '{"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true, "use_regex": true}' '"ignore_merges": true,' >"$SEEDS/bytelevel_split.json"
bpe '{"type": "Strip", "strip_left": true, "strip_right": true}' \
    '{"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, {"type": "WhitespaceSplit"}, {"type": "Split", "pattern": {"String": "l"}, "behavior": "MergedWithNext", "invert": true}]}' \
    '{"type": "RobertaProcessing", "cls": ["<s>", 1], "sep": ["</s>", 2]}' null '' >"$SEEDS/digits_whitespace.json"
bpe '{"type": "NFKC"}' null null null '' >"$SEEDS/refused_nfkc.json"
bpe null null null null '"dropout": 0.1,' >"$SEEDS/refused_dropout.json"
printf '{"model": {"type": "WordPiece", "vocab": {}}}' >"$SEEDS/refused_wordpiece.json"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1}, "merges": ["a b"]}}' >"$SEEDS/refused_merge.json"
printf '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": [["a", "b"]]}, "added_tokens": [{"id": 7, "content": "x"}]}' >"$SEEDS/minimal.json"
# found by fuzz_tokenizer (doc/RELIABILITY.md): a JSON error quoting a newline
# (two-line error), a vocabulary whose first key is "" (NULL + 0 in strmap);
# minimal.json and tinyllama.bin caught NULL + 0 and memcpy from NULL on
# empty id lists
echo 'eyJhIjogMCwgImIiOiAxLCAiYWIiOiAyLCAiXHUwMTIwIjogMywgIlx1MDEyCmEgYgpcdTAxMjAgYWIK' | base64 -d >"$SEEDS/regress_newline_error.bin"
echo 'eyIiOiA0LCAiPHxlbmRvZnRleHR8PiI6IDV9ACN2ZXJzaVN0cmlvbjogMC4yCmEgYgpcdTAxMjAgYWIKImVvc190b2tlbiI=' | base64 -d >"$SEEDS/regress_empty_key.bin"
