#!/bin/sh
# safetensors_fuzz.sh: the .safetensors fuzz target (fuzz_safetensors.c:
# safetensors_open on any file; no crash, no read outside the mapping, no
# undefined behaviour, no hang, bounded memory, one-line errors, accepted
# tensors inside the file) over safetensors_seeds.sh's files, then 20 s of
# mutations.  bench/fuzz.sh runs it for millions of inputs.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_safetensors"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_safetensors is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/safetensors_seeds.sh" "$SCRATCH/seeds" "$SHARDTUNE"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds/file" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/safetensors.dict" || fail "the safetensors fuzz target failed (above)"
echo PASS
