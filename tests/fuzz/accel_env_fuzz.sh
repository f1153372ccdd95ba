#!/bin/sh
# accel_env_fuzz.sh: the launcher-environment fuzz target (fuzz_accel_env.c:
# FSDP_* / ACCELERATE_* variables applied, no crash, no undefined behaviour,
# one-line errors, a refusal leaves the config untouched, the result keeps
# every field in range) over accel_env_seeds.sh's inputs, then 20 s of
# mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_accel_env"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_accel_env is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/accel_env_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/accel_env.dict" || fail "the launcher-environment fuzz target failed (above)"
echo PASS
