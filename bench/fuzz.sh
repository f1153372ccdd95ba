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
for name in jinja tokenizer rows; do
    "$top/tests/fuzz/${name}_seeds.sh" "$work/$name-seeds"
    "$top/tests/fuzz/fuzz_run.sh" "$build/tests/fuzz/fuzz_$name" "$work/$name/corpus" "$work/$name-seeds" "$runs" \
        "$top/tests/fuzz/$name.dict"
done
rm -rf "$work"
