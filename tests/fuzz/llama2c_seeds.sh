#!/bin/sh
# llama2c_seeds.sh DIR: the seed inputs of the llama2.c fuzz target
# (fuzz_llama2c.c: 4-byte little-endian checkpoint length, checkpoint,
# tokenizer).  The shipped stories260K pair is ~1 MB, beyond fuzz_run.sh's
# 16 KiB -max_len (libFuzzer cuts it to a truncated checkpoint), so whole
# models are made small here: a 2-wide, one-layer checkpoint (tied and
# untied) whose weights are stories260K's first floats, with tok512.bin, and
# with tok512.bin's first 259 tokens (the specials and byte tokens); then
# truncated, padded and malformed variants of them.
set -eu
top="$(cd "$(dirname "$0")/../.." && pwd)"
model="$top/assets/model/stories260K.bin" tok="$top/assets/model/tok512.bin"
mkdir -p "$1"
work=$(mktemp -d "${TMPDIR:-/tmp}/llama2c-seeds.XXXXXX")
trap 'rm -rf "$work"' EXIT

le32() { # le32 N...: each N as 4 little-endian bytes
    for v; do
        printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((v & 255)) $((v >> 8 & 255)) $((v >> 16 & 255)) $((v >> 24 & 255)))"
    done
}
# ckpt FILE VOCAB: dim 2, hidden_dim 2, 1 layer, 1 head, 1 kv head, seq_len 4;
# a negative VOCAB is llama2.c's untied lm_head (one more V x 2 matrix)
ckpt() {
    v=${2#-}
    n=$((v * 2 + 42))
    [ "$2" -gt 0 ] || n=$((n + v * 2))
    { le32 2 2 1 1 1 "$2" 4; tail -c +29 "$model" | head -c $((4 * n)); } >"$1"
}
# seed NAME CHECKPOINT TOKENIZER: one input
seed() {
    { le32 "$(wc -c <"$2")"; cat "$2" "$3"; } >"$1/$4"
}
ckpt "$work/tied.bin" 512
ckpt "$work/untied.bin" -512
ckpt "$work/v259.bin" 259
head -c 3628 "$tok" >"$work/tok259.bin" # max_token_length + 259 records of 13, 13, 14, 256 x 14 bytes
seed "$1" "$work/tied.bin" "$tok" tied_512
seed "$1" "$work/untied.bin" "$tok" untied_512
seed "$1" "$work/v259.bin" "$work/tok259.bin" bytes_only_259
seed "$1" "$model" "$tok" stories260K
# malformed: truncated or padded files, a mismatched vocabulary, a header
# that claims a huge model, llama2.c's newer export format
head -c 3000 "$work/tied.bin" >"$work/short.bin"
seed "$1" "$work/short.bin" "$tok" truncated_checkpoint
head -c 5000 "$tok" >"$work/tok_short.bin"
seed "$1" "$work/tied.bin" "$work/tok_short.bin" truncated_tokenizer
{ cat "$tok"; printf 'xx'; } >"$work/tok_long.bin"
seed "$1" "$work/tied.bin" "$work/tok_long.bin" padded_tokenizer
seed "$1" "$work/v259.bin" "$tok" vocab_mismatch
{ le32 4096 11008 32 32 32 32000 2048; head -c 1000 "$work/tied.bin"; } >"$work/huge.bin"
seed "$1" "$work/huge.bin" "$tok" huge_header
le32 $((0x616b3432)) 2 2 2 1 1 1 512 4 >"$work/v2.bin"
seed "$1" "$work/v2.bin" "$tok" export_version_2
# Regression: a byte-fallback token holding a newline made the error two
# lines; now the piece is quoted with control characters escaped.  Token 3's
# 6 bytes start at byte 52 (4 + 13 + 13 + 14 + 8).
{ head -c 52 "$tok"; printf '<0>\n\001X'; tail -c +59 "$tok"; } >"$work/tok_newline.bin"
seed "$1" "$work/tied.bin" "$work/tok_newline.bin" regress_newline_in_piece
