#!/bin/sh
# hf_config_fuzz.sh: the config.json fuzz target (fuzz_hf_config.c:
# llama_config_load; no crash, no undefined behaviour, no hang, one-line
# errors, accepted configs in the ranges the model code relies on) over
# hf_config_seeds.sh's configs, then 20 s of mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_hf_config"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_hf_config is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/hf_config_seeds.sh" "$SCRATCH/seeds" "$SHARDTUNE"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/hf_config.dict" || fail "the config.json fuzz target failed (above)"
echo PASS
