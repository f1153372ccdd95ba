#!/bin/sh
# stories_tokenizer.sh: the tokenizer.json that `shardtune convert llama2c`
# writes for stories260K (tok512.bin) is read by our tokenizer exactly as by
# Hugging Face `tokenizers`: the same ids (with and without BOS) and decoded
# text on 400 varied strings, and plain text round-trips.  (That the file
# encodes as llama2.c does is tests/llama2c/convert_stories.sh's job.)
. "$top_srcdir/tests/lib.sh"
need_reference_python
"$PY" -c 'import tokenizers' 2>/dev/null || fail "$PY has no tokenizers package"

TOK_BATCH="$top_builddir/tests/tokenizer/tok_batch"
[ -x "$TOK_BATCH" ] || fail "$TOK_BATCH is not built (make check builds it)"
"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/stories" >/dev/null ||
    fail "convert llama2c"
"$PY" "$top_srcdir/tests/tokenizer/hf_agreement.py" "$TOK_BATCH" "$top_srcdir/tests/tokenizer/data" \
    "$SCRATCH" stories "$SCRATCH/stories/tokenizer.json" ||
    fail "shardtune and tokenizers disagree on the converted stories260K tokenizer"
