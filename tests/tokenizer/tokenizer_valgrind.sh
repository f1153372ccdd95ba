#!/bin/sh
# tokenizer_valgrind.sh: the tokenizer unit tests under valgrind, so that every
# refusal path (most of them free a half-built tokenizer) is proven free of
# leaks and invalid reads.  Skipped without valgrind.
. "$top_srcdir/tests/lib.sh"

command -v valgrind >/dev/null 2>&1 || { echo "SKIP: valgrind is not on PATH"; exit 77; }
bin="$top_builddir/tests/tokenizer/test_tokenizer"
[ -x "$bin" ] || fail "$bin is not built (make check builds it)"
valgrind -q --error-exitcode=1 --leak-check=full "$bin" >"$SCRATCH/log" 2>&1 ||
    { cat "$SCRATCH/log" >&2; fail "test_tokenizer under valgrind"; }
echo "ok: test_tokenizer is valgrind-clean"
