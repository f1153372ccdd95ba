#!/bin/sh
# tokenize_cli.sh: `shardtune tokenize` (through tok_cli, which calls
# tokenize_main as main.c does): one line of ids per TEXT, --decode back,
# --add_special_tokens, and one-line errors with exit 2 for usage and 1 for
# a bad file or text.
. "$top_srcdir/tests/lib.sh"

CLI="$top_builddir/tests/tokenizer/tok_cli"
[ -x "$CLI" ] || fail "$CLI is not built (make check builds it)"
DATA="$top_srcdir/tests/tokenizer/data"

out=$("$CLI" --tokenizer "$DATA/tinyllama-chat" "Hello world" "" "<s>hi</s>") || fail "encode"
[ "$out" = "$(printf '1 15043 3186\n1\n1 1 7251 2')" ] || fail "encode printed: $out"
out=$("$CLI" --tokenizer "$DATA/tinyllama-chat/tokenizer.json" --add_special_tokens False \
    "Hello world") || fail "encode without BOS"
[ "$out" = "15043 3186" ] || fail "encode without BOS printed: $out"
out=$("$CLI" --tokenizer "$DATA/tinyllama-chat" --decode "1 15043 3186" "15043,3186" "") ||
    fail "decode"
[ "$out" = "$(printf '<s> Hello world\nHello world\n')" ] || fail "decode printed: $out"
out=$("$CLI" --tokenizer "$DATA/tinyllama-chat" --decode --skip_special_tokens True "1 15043 3186") ||
    fail "decode skipping special tokens"
[ "$out" = "Hello world" ] || fail "decode skipping special tokens printed: $out"
out=$("$CLI" --tokenizer "$DATA/gpt2" "Hello world<|endoftext|>") || fail "encode GPT-2"
[ "$out" = "15496 995 50256" ] || fail "encode GPT-2 printed: $out"
out=$("$CLI" --tokenizer "$DATA/gpt2/vocab.json" --decode "15496 995 50256") || fail "decode GPT-2"
[ "$out" = "Hello world<|endoftext|>" ] || fail "decode GPT-2 printed: $out"

# expect STATUS FRAGMENT ARGS...: exits STATUS with one stderr line
# "shardtune: error: ..." holding FRAGMENT
expect() {
    want=$1 frag=$2
    shift 2
    set +e
    "$CLI" "$@" >"$SCRATCH/out" 2>"$SCRATCH/err"
    rc=$?
    set -e
    [ "$rc" = "$want" ] || fail "tokenize $*: exit $rc, want $want ($(cat "$SCRATCH/err"))"
    [ "$(wc -l <"$SCRATCH/err")" = 1 ] || fail "tokenize $*: not one error line: $(cat "$SCRATCH/err")"
    grep -q "^shardtune: error: .*$frag" "$SCRATCH/err" ||
        fail "tokenize $*: message lacks '$frag': $(cat "$SCRATCH/err")"
}
expect 2 "tokenizer PATH is required" "Hello"
expect 2 "no TEXT" --tokenizer "$DATA/gpt2"
expect 2 "unknown flag" --tokenizer "$DATA/gpt2" --bogus x
expect 2 "not True or False" --tokenizer "$DATA/gpt2" --add_special_tokens maybe x
expect 2 "needs a value" --tokenizer
expect 2 "not a list of token ids" --tokenizer "$DATA/gpt2" --decode "12 x"
expect 1 "$SCRATCH/none.json" --tokenizer "$SCRATCH/none.json" x
head -c 1000 "$DATA/tinyllama-chat/tokenizer.json" >"$SCRATCH/cut.json"
expect 1 "cut.json: not valid JSON" --tokenizer "$SCRATCH/cut.json" x
expect 1 "not valid UTF-8" --tokenizer "$DATA/gpt2" "$(printf 'ok \377')"
expect 1 "id 99999 is not in the vocabulary" --tokenizer "$DATA/gpt2" --decode "99999"
"$CLI" --help | grep -q "usage: shardtune tokenize" || fail "--help"
echo "ok: tokenize prints ids and text, and refuses bad input with one line"
