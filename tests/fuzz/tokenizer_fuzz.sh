#!/bin/sh
# tokenizer_fuzz.sh: the tokenizer fuzz target (fuzz_tokenizer.c: load
# tokenizer.json [+ tokenizer_config.json] or vocab.json + merges.txt,
# encode and decode; no crash, no undefined behaviour, no hang, bounded
# memory, one-line errors, ids in the vocabulary) over seeds made of
# tests/tokenizer's files (TinyLlama-chat whole, once) and hand-made ones,
# then 20 s of mutations.  bench/fuzz.sh runs it for millions of inputs.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_tokenizer"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_tokenizer is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/tokenizer_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/tokenizer.dict" || fail "the tokenizer fuzz target failed (above)"
echo PASS
