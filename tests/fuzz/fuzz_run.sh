#!/bin/sh
# fuzz_run.sh TARGET CORPUS_DIR SEED_DIR LIMIT [DICT]: runs a libFuzzer
# target over SEED_DIR's inputs, then mutates them into CORPUS_DIR until
# LIMIT: "20s" (seconds) or "10000000" (executions).  Mutated inputs are at
# most 16 KiB (the size cap: a target's time per input grows with it); a
# seed larger than that, which libFuzzer would cut, is first run whole,
# once.  Each input gets at most
# 10 s and the process 4 GiB, so a hang or a runaway allocation is a failure
# like a crash or a sanitizer report.  A failing input is kept as
# CORPUS_DIR/../crash-* (or timeout-*, oom-*) and printed in base64.  Prints
# one line: "fuzz TARGET: N executions in S s, coverage C edges, corpus K
# inputs"; exit 1 on any failure.
set -eu
target=$1 corpus=$2 seeds=$3 limit=$4 dict=${5:-}
mkdir -p "$corpus"
artifacts=$(cd "$corpus/.." && pwd)/
case $limit in
*s) budget="-max_total_time=${limit%s}" ;;
*) budget="-runs=$limit" ;;
esac
log="$artifacts$(basename "$target").log"
rc=0
# strftime_now pinned: a rendering must not depend on the clock
export SHARDTUNE_CHAT_TEMPLATE_NOW="2026-03-07 09:05:00"
big=$(find "$seeds" -type f -size +16384c)
if [ -n "$big" ]; then
    # shellcheck disable=SC2086 # seed names are the seed scripts' own, without blanks
    "$target" -timeout=60 -rss_limit_mb=4096 -malloc_limit_mb=4096 -artifact_prefix="$artifacts" $big \
        >"$log.big" 2>&1 || { rc=$?; cat "$log.big" >>"$log"; }
fi
[ "$rc" != 0 ] ||
    "$target" $budget -timeout=10 -rss_limit_mb=4096 -malloc_limit_mb=4096 -max_len=16384 \
    -print_final_stats=1 -artifact_prefix="$artifacts" ${dict:+-dict="$dict"} "$corpus" "$seeds" >"$log" 2>&1 || rc=$?
if [ "$rc" != 0 ]; then
    grep -a -E 'ERROR|SUMMARY|fuzz_|^    #[0-9] ' "$log" | head -n 30 >&2
    for f in "$artifacts"crash-* "$artifacts"timeout-* "$artifacts"oom-* "$artifacts"leak-*; do
        [ -f "$f" ] && echo "failing input $f (base64): $(base64 -w0 "$f")" >&2
    done
    echo "fuzz $(basename "$target"): FAILED (exit $rc, log $log)" >&2
    exit 1
fi
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log")
cov=$(grep -a -o 'cov: [0-9]*' "$log" | tail -n 1 | cut -d' ' -f2)
echo "fuzz $(basename "$target"): ${execs:-?} executions in ${secs:-?} s, coverage ${cov:-?} edges, corpus $(ls "$corpus" | wc -l) inputs"
