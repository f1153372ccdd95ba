#!/usr/bin/env bash
# mutants.sh: plants each bug of tests/mutants/mutations in a copy of the
# tree, builds it and runs the tests named to catch it; prints which tests
# caught each one and exits non-zero when one survives (or cannot be judged).
#
#   bench/mutants.sh [--quick] [--keep] [ID...]
#     ID...     only these mutations (default: all of them)
#     --quick   the mutations marked "quick: yes" (cheap catchers, for CI)
#     --keep    keep the scratch directory (the copy, the build, every log)
#
# Environment: SHARDTUNE_PYTHON (default: the checkout's .venv) and
# SHARDTUNE_REQUIRE_REFERENCE (default 1: a catcher without its oracle fails
# rather than skips) reach the tests; MUTANTS_DIR (scratch, default a new
# directory in $TMPDIR), MUTANTS_CONFIGURE (default --without-cuda: the CUDA
# kernels are judged through the CPU emulation every build has, nvcc would
# only add minutes per build), MUTANTS_TEST_TIMEOUT (seconds per test run,
# default 1800: a planted bug that hangs counts as caught, never waits
# forever), MUTANTS_JOBS (make -j for builds, default 2).
#
# Tests first run on the unmutated copy: a catcher that does not pass there
# cannot catch anything, and its mutations are reported as BASELINE, not
# CAUGHT.  A mutation that does not build is BUILD-ERROR, one whose original
# text is not in its file exactly once (or whose catcher is not a test) is
# LIST-ERROR; both fail the run like a survivor.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
list="$top/tests/mutants/mutations"
tool() { python3 "$top/tests/mutants/mutations.py" "$@"; }

quick=0 keep=0 ids=()
for a in "$@"; do
    case $a in
    --quick) quick=1 ;;
    --keep) keep=1 ;;
    -*) echo "usage: bench/mutants.sh [--quick] [--keep] [ID...]" >&2; exit 2 ;;
    *) ids+=("$a") ;;
    esac
done
if [ ${#ids[@]} = 0 ]; then
    if [ $quick = 1 ]; then mapfile -t ids < <(tool ids "$list" --quick); else mapfile -t ids < <(tool ids "$list"); fi
fi
for id in "${ids[@]}"; do tool field "$list" "$id" file > /dev/null; done # unknown ids stop here

export SHARDTUNE_REQUIRE_REFERENCE="${SHARDTUNE_REQUIRE_REFERENCE:-1}"
[ -n "${SHARDTUNE_PYTHON:-}" ] || [ ! -x "$top/.venv/bin/python" ] || export SHARDTUNE_PYTHON="$top/.venv/bin/python"
jobs=${MUTANTS_JOBS:-2}
timeout_s=${MUTANTS_TEST_TIMEOUT:-1800}
work=${MUTANTS_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/shardtune-mutants.XXXXXX")}
mkdir -p "$work"
[ $keep = 1 ] || trap 'rm -rf "$work"' EXIT
src="$work/src" build="$work/build" logs="$work/logs"
rm -rf "$src" "$build" "$logs"
mkdir -p "$src" "$build" "$logs"
start=$(date +%s)
say() { echo "mutants: [$(( $(date +%s) - start ))s] $*" >&2; }

# One copy of the tree as git sees it (tracked and untracked files, nothing
# ignored: no build, no venv, no runs), one configured build of it: each
# mutation changes one file, so make rebuilds only what depends on it.
say "copying $top to $src"
git -C "$top" ls-files -co --exclude-standard -z | (cd "$top" && tar --null -T - -cf -) | tar -C "$src" -xf -
(cd "$src" && autoreconf -fi > "$logs/autoreconf.log" 2>&1) || { cat "$logs/autoreconf.log" >&2; exit 1; }
# shellcheck disable=SC2086
(cd "$build" && "$src/configure" ${MUTANTS_CONFIGURE---without-cuda} > "$logs/configure.log" 2>&1) \
    || { tail -n 20 "$logs/configure.log" >&2; exit 1; }

# build: the program and every check program; 0 when it built
build() { make -C "$build" -j"$jobs" check TESTS= > "$1" 2>&1; }

# run_tests LOGDIR TEST...: runs them; prints "TEST RESULT" lines (PASS, FAIL,
# SKIP, ERROR, or NONE when no result was written)
run_tests() {
    local dir=$1 t trs
    shift
    for t in "$@"; do rm -f "$build/${t%.sh}.log" "$build/${t%.sh}.trs"; done
    make -C "$build" check TESTS="$*" LOG_COMPILER="timeout -k 30 $timeout_s" \
        SH_LOG_COMPILER="timeout -k 30 $timeout_s \$(SHELL)" > "$dir/make-check.log" 2>&1 || true
    for t in "$@"; do
        trs="$build/${t%.sh}.trs"
        cp "$build/${t%.sh}.log" "$dir/$(basename "${t%.sh}").log" 2>/dev/null || true
        echo "$t $(sed -n 's/^:test-result: //p' "$trs" 2>/dev/null | head -n 1 | grep . || echo NONE)"
    done
}

say "building the unmutated copy"
build "$logs/build.log" || { tail -n 30 "$logs/build.log" >&2; exit 1; }
tool tests "$build/Makefile" > "$work/suite"

# the catchers of the chosen mutations, each once, on the unmutated build
all=()
for id in "${ids[@]}"; do
    for t in $(tool field "$list" "$id" catch); do
        grep -qxF "$t" "$work/suite" && all+=("$t")
    done
done
mapfile -t all < <(printf '%s\n' "${all[@]}" | awk 'NF && !seen[$0]++')
say "baseline: ${#all[@]} catcher tests on the unmutated copy"
mkdir -p "$logs/baseline"
run_tests "$logs/baseline" "${all[@]}" > "$work/baseline"
cat "$work/baseline" >&2

rows=() failed=0
for id in "${ids[@]}"; do
    t0=$(date +%s)
    file=$(tool field "$list" "$id" file)
    what=$(tool field "$list" "$id" what)
    read -r -a catchers <<< "$(tool field "$list" "$id" catch)"
    dir="$logs/$id"
    mkdir -p "$dir"
    verdicts=() runnable=()
    for t in "${catchers[@]}"; do
        if ! grep -qxF "$t" "$work/suite"; then verdicts+=("$t: not a test")
        elif ! grep -qxF "$t PASS" "$work/baseline"; then verdicts+=("$t: $(awk -v t="$t" '$1 == t {print $2}' "$work/baseline") unmutated")
        else runnable+=("$t"); fi
    done
    result='' how=''
    if [ ${#runnable[@]} = 0 ]; then
        case "${verdicts[*]}" in *"not a test"*) result=LIST-ERROR ;; *) result=BASELINE ;; esac
    else
        say "$id: planting in $file"
        cp "$src/$file" "$work/saved"
        if ! tool apply "$list" "$id" "$src" 2> "$dir/apply.log"; then
            result=LIST-ERROR
        elif ! build "$dir/build.log"; then
            result=BUILD-ERROR
        else
            say "$id: running ${runnable[*]}"
            results=$(run_tests "$dir" "${runnable[@]}")
            while read -r t r; do verdicts+=("$t $r"); done <<< "$results"
            # how the first failing catcher failed: its first FAIL line or
            # failed cmocka case, else automake's exit status line
            how=$(for t in $(awk '$2 == "FAIL" || $2 == "ERROR" {print $1}' <<< "$results"); do
                l="$dir/$(basename "${t%.sh}").log"
                grep -v '(exit status: ' "$l" | grep -m1 -E '^FAIL:? |\[  FAILED  \] ' || grep -m1 'exit status' "$l" || true
            done | head -n 1 | sed 's|/[^ ]*/shardtune-test\.[^/ ]*/||g' | cut -c1-140 | tr '|' '/')
            # a failed or erroring test caught it; no result at all is the harness's trouble
            if grep -qE ' (FAIL|ERROR)$' <<< "$results"; then result=CAUGHT
            elif grep -q ' NONE$' <<< "$results"; then result=NO-RESULT
            else result=SURVIVED; fi
        fi
        cp "$work/saved" "$src/$file" # the next build recompiles it unmutated
    fi
    [ $result = CAUGHT ] || failed=1
    secs=$(( $(date +%s) - t0 ))
    say "$id: $result (${secs}s)"
    rows+=("| $id | $what | $(IFS=';'; echo "${verdicts[*]}" | sed 's/;/, /g') | $result | ${how:-} | $secs |")
done

echo "| mutation | planted bug | catchers (result under the mutation) | verdict | how it was caught | seconds |"
echo "|---|---|---|---|---|---|"
printf '%s\n' "${rows[@]}"
echo
echo "mutants: ${#ids[@]} mutations, $(printf '%s\n' "${rows[@]}" | grep -c '| CAUGHT |' || true) caught, $(( $(date +%s) - start )) s in all$([ $keep = 1 ] && echo ", logs in $logs")"
exit $failed
