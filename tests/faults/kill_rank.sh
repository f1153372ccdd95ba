#!/bin/sh
# Proves, by 3 trials of each kind (tests/faults/kill_lib.sh): a rank
# SIGKILLed at a random moment of training, as a collective starts, or in
# the middle of a checkpoint write ends the whole run within 30 s (mpirun
# takes the other ranks down; nothing hangs, nothing is left running); the
# newest complete checkpoint loads, and the resumed run's losses and adapter
# are the uninterrupted run's, bitwise.  The choices are random; the seed is
# printed (SHARDTUNE_FAULT_SEED=N repeats them).  bench/faults.sh runs 20
# or more trials of each kind.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
. "$top_srcdir/tests/faults/kill_lib.sh"
need_tool pgrep "to find the ranks"

seed=${SHARDTUNE_FAULT_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
echo "seed $seed (SHARDTUNE_FAULT_SEED=$seed repeats these trials)"
KILL_SEED=$seed
kill_setup
for kind in train collective save; do
    for n in 1 2 3; do
        kill_trial "$kind" "$n"
    done
done
echo PASS
