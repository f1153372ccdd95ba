#!/bin/sh
# safetensors_index_fuzz.sh: the sharded-directory fuzz target
# (fuzz_safetensors_index.c: safetensors_open_dir on an index and a shard,
# with the checks of the single-file target) over safetensors_seeds.sh's
# index inputs, then 20 s of mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_safetensors_index"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_safetensors_index is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/safetensors_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds/index" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/safetensors.dict" || fail "the safetensors index fuzz target failed (above)"
echo PASS
