#!/bin/sh
# bench/faults.sh [TRIALS [KIND...]]: TRIALS (default 20) trials of each
# KIND of rank death (default: train collective save; tests/faults/kill_lib.sh
# says what each is and checks), each with its own random choices, and a
# tally: trials, promises kept, the slowest end of the other ranks.  A
# broken promise is counted and its log kept (the path is printed); the
# tally is what doc/RELIABILITY.md records.
#   SHARDTUNE_BUILD=_build nice -n 19 bench/faults.sh 20
# SHARDTUNE_FAULT_SEED=N repeats a run's choices.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${SHARDTUNE_BUILD:-$top/_build}" && pwd)
trials=${1:-20}
[ $# -gt 0 ] && shift
[ $# -gt 0 ] || set -- train collective save
top_srcdir=$top top_builddir=$build MPIRUN=${MPIRUN:-mpirun}
export top_srcdir top_builddir MPIRUN
. "$top/tests/lib.sh"
. "$top/tests/fsdp/fsdp_lib.sh"
. "$top/tests/ckpt/ckpt_lib.sh"
. "$top/tests/faults/kill_lib.sh"
keep=$(mktemp -d "${TMPDIR:-/tmp}/shardtune-faults.XXXXXX") # failed trials' logs

seed=${SHARDTUNE_FAULT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "bench/faults.sh: commit $(git -C "$top" rev-parse --short HEAD), $(date -u +%Y-%m-%d), $trials trials per kind, seed $seed, $(getconf _NPROCESSORS_ONLN) CPUs"
kill_setup
echo "uninterrupted run: $REF_MS ms"
i=0
for kind in "$@"; do
    kept=0 worst=0 from_start=0 from_ckpt=0 no_kill=0
    for n in $(seq 1 "$trials"); do
        i=$((i + 1))
        # a subshell per trial: a broken promise (fail) ends it alone
        if line=$(KILL_SEED=$((seed * 1000 + i)) && kill_trial "$kind" "$n" 2>&1 | tail -n 1) &&
            case $line in "trial "*) true ;; *) false ;; esac; then
            case $line in *"no kill"*) no_kill=$((no_kill + 1)); echo "$line"; continue ;; esac
            kept=$((kept + 1))
            secs=$(echo "$line" | sed 's/.*all ranks ended \([0-9.]*\) s.*/\1/')
            worst=$(awk "BEGIN{print ($secs > $worst) ? $secs : $worst}")
            case $line in *"resumed from start"*) from_start=$((from_start + 1)) ;; *) from_ckpt=$((from_ckpt + 1)) ;; esac
        else
            cp "$SCRATCH/$kind.$n.log" "$keep/" 2> /dev/null || true
            echo "BROKEN: $kind.$n: $line (logs in $keep)"
        fi
        echo "$line"
        rm -rf "${SCRATCH:?}/$kind.$n" "$SCRATCH/$kind.$n".*
    done
    echo "tally $kind: $kept/$((trials - no_kill)) promises kept ($no_kill trials ended before their kill); other ranks ended within $worst s at worst (bound $KILL_BOUND s); resumed from a checkpoint $from_ckpt, from the start $from_start"
done
rmdir "$keep" 2> /dev/null || true
