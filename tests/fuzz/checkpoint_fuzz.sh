#!/bin/sh
# checkpoint_fuzz.sh: the checkpoint validation fuzz target
# (fuzz_checkpoint.c: ckpt_load and ckpt_read_config on checkpoints
# described by the input and written with HDF5; no crash, no undefined
# behaviour, no hang, one-line errors, nothing wrong accepted, nothing right
# refused, loaded values exactly the file's) over checkpoint_seeds.sh's
# inputs, then 20 s of mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_checkpoint"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_checkpoint is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/checkpoint_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" ||
    fail "the checkpoint fuzz target failed (above)"
echo PASS
