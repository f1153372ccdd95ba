#!/bin/sh
# Proves: pre-emption loses nothing (src/preempt.h), on 2 ranks of one mpirun.
# - SIGUSR1 to ONE rank stops both after the same step (the log says it
#   reached 1 of 2 ranks): exit status 75, checkpoint-N written and `latest`
#   on it, N the last step metrics.jsonl logged;
# - the same after SIGTERM to every rank (what slurmd sends on `scontrol
#   requeue`, `scancel` and the time limit) and after SIGUSR1 to mpirun
#   (Open MPI forwards it to the ranks);
# - each resumed run starts at the step its checkpoint holds, so it
#   recomputes no step done before the signal, and the run resumed twice
#   ends with the uninterrupted run's losses at every step and its adapter
#   byte for byte;
# - with SHARDTUNE_JOB_END_TIME 20 s ahead, --save_before_time_limit (auto)
#   stops the run by itself with a checkpoint (75), before that time;
# - --save_before_time_limit True without an end time, or a bad value, is
#   refused in one line.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"

# 96 rows and 96 micro-batches per step: ~40 ms steps, so that a signal sent
# at step 3 arrives long before step 60
"$MAKE_MODEL" --out "$SCRATCH/m" --rows 96 --layers 2
flags="--gradient_accumulation_steps 48 --max_steps 60 --save_steps 1000"
unset SLURM_JOB_ID SLURM_JOB_END_TIME SHARDTUNE_JOB_END_TIME
fsdp_train ref 2 "$SCRATCH/m" $flags

# stopped_at TAG WHY: the run into $SCRATCH/pre ended with status 75 (in
# $status) after the log line WHY, and its checkpoint holds the last step logged
stopped_at() {
    cp "$SCRATCH/pre.log" "$SCRATCH/$1.log"
    [ "$status" = 75 ] || { cat "$SCRATCH/$1.log"; fail "$1: exit status $status, not 75"; }
    n=$(last_step "$SCRATCH/pre")
    grep -q "stopping after step $n of 60: $2" "$SCRATCH/$1.log" || { cat "$SCRATCH/$1.log"; fail "$1: no stop line at step $n"; }
    [ "$(cat "$SCRATCH/pre/latest")" = "checkpoint-$n.h5" ] || fail "$1: latest is $(cat "$SCRATCH/pre/latest"), step $n was logged"
    echo "$1: stopped after step $n: $(grep -o 'stopping after.*' "$SCRATCH/$1.log")"
}

# 1: SIGUSR1 to rank 1 alone
status=0
fsdp_run pre 2 "$SCRATCH/m" $flags &
job=$!
wait_for_step "$SCRATCH/pre" 3
kill -USR1 "$(rank_pid "$SCRATCH/pre" 1)"
wait $job || status=$?
stopped_at usr1_one_rank "SIGUSR1 reached 1 of 2 rank(s)"
n1=$n

# 2: resumed; SIGTERM to both ranks
status=0
fsdp_run pre 2 "$SCRATCH/m" $flags --resume_from_checkpoint latest &
job=$!
wait_for_step "$SCRATCH/pre" $((n1 + 3))
kill -TERM "$(rank_pid "$SCRATCH/pre" 0)" "$(rank_pid "$SCRATCH/pre" 1)"
wait $job || status=$?
stopped_at term_all_ranks "SIGTERM reached 2 of 2 rank(s)"
grep -q "resumed from .*/checkpoint-$n1.h5 at step $n1 " "$SCRATCH/term_all_ranks.log" || fail "run 2 did not resume at step $n1"
n2=$n

# 3: resumed; SIGUSR1 to mpirun
status=0
fsdp_run pre 2 "$SCRATCH/m" $flags --resume_from_checkpoint latest &
job=$!
wait_for_step "$SCRATCH/pre" $((n2 + 3))
kill -USR1 "$(pgrep -f -- "--output_dir $SCRATCH/pre " | while read -r p; do
    [ "$(cat "/proc/$p/comm")" = shardtune ] || echo "$p"; done | grep -vx "$job" | tail -n 1)" # mpirun, not timeout
wait $job || status=$?
stopped_at usr1_mpirun "SIGUSR1 reached 2 of 2 rank(s)"
grep -q "resumed from .*/checkpoint-$n2.h5 at step $n2 " "$SCRATCH/usr1_mpirun.log" || fail "run 3 did not resume at step $n2"
n3=$n

# 4: resumed to the end
fsdp_train pre 2 "$SCRATCH/m" $flags --resume_from_checkpoint latest
grep -q "resumed from .*/checkpoint-$n3.h5 at step $n3 " "$SCRATCH/pre.log" || fail "run 4 did not resume at step $n3"
[ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/pre")" ] || fail "the interrupted runs' losses differ"
cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/pre/adapter_model.safetensors" || fail "adapters differ"
echo "stopped after steps $n1, $n2, $n3 and resumed: losses and adapter bitwise the uninterrupted run's"

# the time limit
end=$(( $(date +%s) + 20 ))
status=0
SHARDTUNE_JOB_END_TIME=$end fsdp_run limit 2 "$SCRATCH/m" --gradient_accumulation_steps 48 --max_steps 100000 \
    --save_steps 1000 || status=$?
[ "$status" = 75 ] || { cat "$SCRATCH/limit.log"; fail "time limit: exit status $status, not 75"; }
[ "$(date +%s)" -lt "$end" ] || fail "time limit: the run ended after the job's end time"
n=$(last_step "$SCRATCH/limit")
[ "$(cat "$SCRATCH/limit/latest")" = "checkpoint-$n.h5" ] || fail "time limit: latest is not step $n's"
grep -o "stopping after step $n of 100000: the job's time limit.*" "$SCRATCH/limit.log" || fail "time limit: no stop line"

# refusals
status=0
fsdp_run bad1 1 "$SCRATCH/m" --max_steps 2 --save_before_time_limit True || status=$?
[ "$status" = 1 ] && grep -q "error: --save_before_time_limit True: no job end time is known" "$SCRATCH/bad1.log" ||
    { cat "$SCRATCH/bad1.log"; fail "True without an end time: status $status"; }
status=0
fsdp_run bad2 1 "$SCRATCH/m" --max_steps 2 --save_before_time_limit sometimes || status=$?
[ "$status" = 2 ] && grep -q "error: --save_before_time_limit: 'sometimes' is not one of True, False, auto" \
    "$SCRATCH/bad2.log" || { cat "$SCRATCH/bad2.log"; fail "a bad value: status $status"; }
echo PASS
