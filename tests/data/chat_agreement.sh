#!/bin/sh
# chat_agreement.sh: chatml and zephyr rendering equals transformers'
# apply_chat_template with PEFT's templates (16 UltraChat rows, 50 ShareGPT
# conversations), the added special tokens get PEFT's ids, the rendered text
# encodes to tokenizers' ids, and tokenizer_encode_offsets equals
# tokenizers' offsets on 640 strings for eight tokenizer kinds.  See
# chat_agreement.py.
. "$top_srcdir/tests/lib.sh"
need_reference_python
"$PY" -c 'import tokenizers' 2>/dev/null || fail "$PY has no tokenizers package"

CHAT_DUMP="$top_builddir/tests/data/chat_dump"
[ -x "$CHAT_DUMP" ] || fail "$CHAT_DUMP is not built (make check builds it)"
"$PY" "$top_srcdir/tests/data/chat_agreement.py" "$CHAT_DUMP" "$top_srcdir/tests/data" \
    "$top_srcdir/tests/tokenizer/data" "$SCRATCH" || fail "shardtune and transformers/tokenizers disagree"
