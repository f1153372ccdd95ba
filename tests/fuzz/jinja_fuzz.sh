#!/bin/sh
# jinja_fuzz.sh: the chat-template fuzz target (fuzz_jinja.c: parse, render,
# no crash, no undefined behaviour, no hang, bounded memory, one-line
# errors) over seeds made of every template of tests/chat_template -- the
# real models', the feature templates and the refused ones -- then 20 s of
# mutations.  bench/fuzz.sh runs it for millions of inputs.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_jinja"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_jinja is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/jinja_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/jinja.dict" || fail "the chat-template fuzz target failed (above)"
echo PASS
