#!/bin/sh
# rows_fuzz.sh: the dataset-rows fuzz target (fuzz_rows.c: dataset_load of
# any .jsonl / .json file under packing, chatml, assistant-only loss and
# the other options; no crash, no undefined behaviour, no hang, bounded
# memory, one-line errors, rows of valid ids and labels) over seeds made of
# tests/data's and tests/chat_template's rows and bad rows, then 20 s of
# mutations.  bench/fuzz.sh runs it for millions of inputs.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_rows"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_rows is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/rows_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/rows.dict" || fail "the dataset-rows fuzz target failed (above)"
echo PASS
