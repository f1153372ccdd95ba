#!/bin/sh
# tokenizer_valgrind.sh: the tokenizer unit tests under valgrind, so that every
# refusal path (most of them free a half-built tokenizer) is proven free of
# leaks and invalid reads.  Skipped without valgrind (a failure under
# SHARDTUNE_REQUIRE_REFERENCE=1: tests/lib.sh need_tool).
. "$top_srcdir/tests/lib.sh"

need_tool valgrind "to check for leaks and invalid reads"
bin="$top_builddir/tests/tokenizer/test_tokenizer"
[ -x "$bin" ] || fail "$bin is not built (make check builds it)"
valgrind -q --error-exitcode=1 --leak-check=full "$bin" >"$SCRATCH/log" 2>&1 ||
    { cat "$SCRATCH/log" >&2; fail "test_tokenizer under valgrind"; }
echo "ok: test_tokenizer is valgrind-clean"
