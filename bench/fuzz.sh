#!/bin/sh
# bench/fuzz.sh [LIMIT [TARGET...]]: fuzz targets of tests/fuzz from their
# seeds for LIMIT: "600s" (the default) or a number of executions
# ("10000000"), as doc/RELIABILITY.md records them.  TARGETs (default: all):
# jinja safetensors safetensors_index hf_config peft_config tokenizer rows
# accel_yaml accel_env llama2c checkpoint.
#   SHARDTUNE_BUILD=_build nice -n 19 bench/fuzz.sh 120s hf_config
# Needs a build configured with fuzzing (clang-14, libclang-rt-14-dev).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${SHARDTUNE_BUILD:-$top/_build}" && pwd)
runs=${1:-600s}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- jinja safetensors safetensors_index hf_config peft_config tokenizer rows accel_yaml accel_env llama2c \
    checkpoint
work=$(mktemp -d "${TMPDIR:-/tmp}/shardtune-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "bench/fuzz.sh: commit $(git -C "$top" rev-parse --short HEAD), $(date -u +%Y-%m-%d), $runs per target"
fz="$top/tests/fuzz"
for t in "$@"; do
    # each target's seeds (a script) and the part of them it reads
    case $t in
    jinja) "$fz/jinja_seeds.sh" "$work/$t-seeds"; seeds="$work/$t-seeds" dict=jinja ;;
    safetensors) "$fz/safetensors_seeds.sh" "$work/$t-seeds" "$build/shardtune"; seeds="$work/$t-seeds/file" dict=safetensors ;;
    safetensors_index) "$fz/safetensors_seeds.sh" "$work/$t-seeds"; seeds="$work/$t-seeds/index" dict=safetensors ;;
    hf_config) "$fz/hf_config_seeds.sh" "$work/$t-seeds" "$build/shardtune"; seeds="$work/$t-seeds" dict=hf_config ;;
    peft_config) "$fz/peft_config_seeds.sh" "$work/$t-seeds"; seeds="$work/$t-seeds" dict=peft_config ;;
    tokenizer | rows | accel_yaml | accel_env | llama2c) "$fz/${t}_seeds.sh" "$work/$t-seeds"; seeds="$work/$t-seeds" dict=$t ;;
    checkpoint) "$fz/checkpoint_seeds.sh" "$work/$t-seeds"; seeds="$work/$t-seeds" dict= ;;
    *) echo "bench/fuzz.sh: unknown target '$t'" >&2; exit 2 ;;
    esac
    "$fz/fuzz_run.sh" "$build/tests/fuzz/fuzz_$t" "$work/$t/corpus" "$seeds" "$runs" ${dict:+"$fz/$dict.dict"}
done
