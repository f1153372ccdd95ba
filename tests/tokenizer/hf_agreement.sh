#!/bin/sh
# hf_agreement.sh: shardtune's tokenizer and Hugging Face `tokenizers` (PyPI)
# give the same ids and the same decoded text on 2,500 seeded varied strings
# (CJK, accents, emoji, whitespace runs, tabs/newlines, digits, contractions,
# code, chat markup) for: the TinyLlama-chat tokenizer.json (with and without
# BOS; also its Metaspace pre-tokenizer form), GPT-2's vocab.json + merges.txt,
# a Llama-3-style Split + ByteLevel tokenizer.json made with `tokenizers`, and
# one exercising the other Split behaviors and Digits; encode -> decode is the
# identity wherever `tokenizers` has it.  See hf_agreement.py.
. "$top_srcdir/tests/lib.sh"
need_reference_python
"$PY" -c 'import tokenizers' 2>/dev/null || fail "$PY has no tokenizers package"

TOK_BATCH="$top_builddir/tests/tokenizer/tok_batch"
[ -x "$TOK_BATCH" ] || fail "$TOK_BATCH is not built (make check builds it)"
"$PY" "$top_srcdir/tests/tokenizer/hf_agreement.py" "$TOK_BATCH" "$top_srcdir/tests/tokenizer/data" \
    "$SCRATCH" all || fail "shardtune and tokenizers disagree"
