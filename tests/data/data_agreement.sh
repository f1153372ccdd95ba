#!/bin/sh
# data_agreement.sh: datasets loaded with train's data flags against
# transformers + tokenizers and TRL's packing rules: conversation ids,
# --assistant_only_loss labels from tokenizers' offsets, truncation, split
# directories, wrapped and best-fit-decreasing packing.  See
# data_agreement.py.
. "$top_srcdir/tests/lib.sh"
need_reference_python
"$PY" -c 'import tokenizers' 2>/dev/null || fail "$PY has no tokenizers package"

DATA_DUMP="$top_builddir/tests/data/data_dump"
[ -x "$DATA_DUMP" ] || fail "$DATA_DUMP is not built (make check builds it)"
PYTHONPATH="$top_srcdir/tests/data:$PYTHONPATH" "$PY" "$top_srcdir/tests/data/data_agreement.py" "$DATA_DUMP" \
    "$top_srcdir/tests/data" "$top_srcdir/tests/tokenizer/data" "$SCRATCH" ||
    fail "shardtune's datasets and transformers/tokenizers/TRL disagree"
