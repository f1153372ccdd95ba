#!/bin/sh
# peft_config_fuzz.sh: the adapter_config.json fuzz target
# (fuzz_peft_config.c: peft_adapter_read_config, then lora_resolve and
# lora_resolve_saved for a 4-layer model; no crash, no undefined behaviour,
# no hang, one-line errors) over peft_config_seeds.sh's configs, then 20 s
# of mutations.
. "$top_srcdir/tests/lib.sh"
FUZZ="$top_builddir/tests/fuzz/fuzz_peft_config"
[ -x "$FUZZ" ] || skip_unless_required "tests/fuzz/fuzz_peft_config is not built (configure found no clang with libFuzzer)"
"$top_srcdir/tests/fuzz/peft_config_seeds.sh" "$SCRATCH/seeds"
"$top_srcdir/tests/fuzz/fuzz_run.sh" "$FUZZ" "$SCRATCH/run/corpus" "$SCRATCH/seeds" "${FUZZ_SECONDS:-20}s" \
    "$top_srcdir/tests/fuzz/peft_config.dict" || fail "the adapter_config.json fuzz target failed (above)"
echo PASS
