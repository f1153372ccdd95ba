#!/bin/sh
# convert_stories.sh: `shardtune convert llama2c` turns the published
# stories260K checkpoint into a Hugging Face directory that (1) shardtune runs
# to the same logits as an independent numpy forward pass of the llama2.c file,
# (2) transformers' LlamaForCausalLM runs to the same logits (so the HF names
# and the RoPE row permutation are right), (3) whose tokenizer.json encodes as
# llama2.c's SentencePiece BPE does; and that a damaged input fails with one
# error line naming the file and leaves no model.safetensors behind.
. "$top_srcdir/tests/lib.sh"
need_reference_python

CKPT="$ASSETS/model/stories260K.bin"
TOK="$ASSETS/model/tok512.bin"
HERE="$top_srcdir/tests/llama2c"
OUT="$SCRATCH/stories"

"$SHARDTUNE" convert llama2c --checkpoint "$CKPT" --tokenizer "$TOK" --out "$OUT" ||
    fail "convert llama2c of $CKPT"
for f in config.json model.safetensors tokenizer.json tokenizer_config.json; do
    [ -s "$OUT/$f" ] || fail "convert llama2c wrote no $OUT/$f"
done

# Three rows of lengths 5, 12 and 20: "Once upon a time", "Once upon a time,
# there was a little gir", "Tom had a small blue boat. Every m" as tok512 ids;
# model_dump right-pads them to 20.
cat > "$SCRATCH/rows.jsonl" <<'ROWS'
{"input_ids": [1, 403, 407, 261, 378]}
{"input_ids": [1, 403, 407, 261, 378, 432, 383, 286, 261, 376, 298, 315]}
{"input_ids": [1, 274, 287, 381, 261, 262, 423, 388, 268, 421, 425, 411, 268, 414, 294, 426, 410, 459, 363, 284]}
ROWS
"$MODEL_DUMP" --model "$OUT" --data "$SCRATCH/rows.jsonl" --rows 3 --max_seq_len 20 \
    --out "$SCRATCH/logits.safetensors" || fail "model_dump on $OUT"
"$PY" "$HERE/check_llama2c_logits.py" --checkpoint "$CKPT" --data "$SCRATCH/rows.jsonl" \
    --dump "$SCRATCH/logits.safetensors" --hf "$OUT" || fail "logits of the converted model"
"$PY" "$HERE/check_llama2c_tokenizer.py" --tokenizer "$TOK" --converted "$OUT" ||
    fail "converted tokenizer.json"

# Damaged inputs: exit status 1, "shardtune: error:" naming the bad file, and
# no model.safetensors in the output directory.
head -c 500000 "$CKPT" > "$SCRATCH/truncated.bin"
head -c 3000 "$TOK" > "$SCRATCH/truncated_tok.bin"
expect_failure() { # checkpoint tokenizer bad_file
    bad_out="$SCRATCH/bad"
    rm -rf "$bad_out"
    rc=0
    "$SHARDTUNE" convert llama2c --checkpoint "$1" --tokenizer "$2" --out "$bad_out" \
        2> "$SCRATCH/stderr" || rc=$?
    [ "$rc" = 1 ] || fail "convert with bad $3: exit status $rc, expected 1"
    grep -q "shardtune: error:" "$SCRATCH/stderr" || fail "no 'shardtune: error:' line for bad $3"
    grep -qF "$3" "$SCRATCH/stderr" || fail "the error for bad $3 does not name it: $(cat "$SCRATCH/stderr")"
    [ ! -e "$bad_out/model.safetensors" ] || fail "bad $3 left $bad_out/model.safetensors"
    echo "bad $(basename "$3") rejected: $(cat "$SCRATCH/stderr")"
}
expect_failure "$SCRATCH/truncated.bin" "$TOK" "$SCRATCH/truncated.bin"
expect_failure "$TOK" "$TOK" "$TOK"
expect_failure "$CKPT" "$SCRATCH/truncated_tok.bin" "$SCRATCH/truncated_tok.bin"
