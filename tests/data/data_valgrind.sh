#!/bin/sh
# data_valgrind.sh: the data unit tests under valgrind (the refusals free
# half-read datasets; packing indexes many arrays): no leak, no invalid
# read.  Skipped without valgrind (a failure under
# SHARDTUNE_REQUIRE_REFERENCE=1: tests/lib.sh need_tool).
. "$top_srcdir/tests/lib.sh"

need_tool valgrind "to check for leaks and invalid reads"
bin="$top_builddir/tests/data/test_data"
[ -x "$bin" ] || fail "$bin is not built (make check builds it)"
valgrind -q --error-exitcode=1 --leak-check=full "$bin" >"$SCRATCH/log" 2>&1 ||
    { cat "$SCRATCH/log" >&2; fail "test_data under valgrind"; }
echo "ok: test_data is valgrind-clean"
