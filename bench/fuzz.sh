#!/bin/sh
# bench/fuzz.sh [LIMIT]: each fuzz target of tests/fuzz from its seeds for
# LIMIT: "600s" (the default) or a number of executions ("10000000"), as
# doc/RELIABILITY.md records them:
#   SHARDTUNE_BUILD=_build bench/fuzz.sh
# Needs a build configured with fuzzing (clang-14, libclang-rt-14-dev).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=${SHARDTUNE_BUILD:-$top/_build}
runs=${1:-600s}
work=$(mktemp -d "${TMPDIR:-/tmp}/shardtune-fuzz.XXXXXX")
echo "bench/fuzz.sh: commit $(git -C "$top" rev-parse --short HEAD), $(date -u +%Y-%m-%d), $runs per target"
"$top/tests/fuzz/jinja_seeds.sh" "$work/jinja-seeds"
"$top/tests/fuzz/fuzz_run.sh" "$build/tests/fuzz/fuzz_jinja" "$work/jinja/corpus" "$work/jinja-seeds" "$runs" \
    "$top/tests/fuzz/jinja.dict"
for t in accel_yaml accel_env llama2c; do
    "$top/tests/fuzz/${t}_seeds.sh" "$work/$t-seeds"
    "$top/tests/fuzz/fuzz_run.sh" "$build/tests/fuzz/fuzz_$t" "$work/$t/corpus" "$work/$t-seeds" "$runs" \
        "$top/tests/fuzz/$t.dict"
done
rm -rf "$work"
