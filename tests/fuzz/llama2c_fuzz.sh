#!/bin/sh
# llama2c_fuzz.sh: the llama2.c fuzz target (fuzz_llama2c.c: checkpoint and
# tokenizer converted, no crash, no undefined behaviour, no hang, memory
# bounded by the files' sizes, one-line errors, no output left by a failure)
# over llama2c_seeds.sh's models, then 20 s of mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_llama2c"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_llama2c is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/llama2c_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/llama2c.dict" || fail "the llama2.c fuzz target failed (above)"
echo PASS
