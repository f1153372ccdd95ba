#!/bin/sh
# safetensors_valgrind.sh: the safetensors and config.json unit tests under
# valgrind, so that every refusal path (most of them free half-built state)
# is proven free of leaks and invalid reads.  Skipped without valgrind (a failure under
# SHARDTUNE_REQUIRE_REFERENCE=1: tests/lib.sh need_tool).
. "$top_srcdir/tests/lib.sh"

need_tool valgrind "to check for leaks and invalid reads"
for t in test_safetensors test_hf_config; do
    bin="$top_builddir/tests/io/$t"
    [ -x "$bin" ] || fail "$bin is not built (make check builds it)"
    valgrind -q --error-exitcode=1 --leak-check=full "$bin" >"$SCRATCH/$t.log" 2>&1 ||
        { cat "$SCRATCH/$t.log" >&2; fail "$t under valgrind"; }
done
echo "ok: test_safetensors and test_hf_config are valgrind-clean"
