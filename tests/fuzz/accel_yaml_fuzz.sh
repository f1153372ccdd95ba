#!/bin/sh
# accel_yaml_fuzz.sh: the accelerate-config fuzz target (fuzz_accel_yaml.c:
# load, no crash, no undefined behaviour, no hang, bounded memory, one-line
# errors, a refusal leaves the config untouched, a load keeps every field in
# range) over accel_yaml_seeds.sh's configs, then 20 s of mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_accel_yaml"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_accel_yaml is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/accel_yaml_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/accel_yaml.dict" || fail "the accelerate-config fuzz target failed (above)"
echo PASS
