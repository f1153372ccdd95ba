#!/bin/sh
# Proves, on an emulated Slurm cluster (slurmctld in head, slurmd in node1..3,
# tests/cluster/cluster_lib.sh):
# - jobs/slurm/train_fsdp.sbatch on 2 nodes x 2 tasks (srun --mpi=pmix)
#   trains as 4 ranks of one mpirun on one node: losses, grad norms and
#   adapter bitwise;
# - the same job pre-empted twice, by `scontrol requeue` (SIGTERM to the
#   tasks, Slurm requeues) and then by `scancel --signal=USR1` (the tasks
#   exit 75, the script requeues), resumes each time from `latest` at the
#   last step it logged (no step done is recomputed) and ends with the
#   uninterrupted adapter, bitwise;
# - a task of the sbatch job SIGKILLed mid-run: the other ranks end within
#   KillWait (30 s, Slurm's default) + 15 s and the job fails, rather than
#   waiting in a collective until the time limit: the script's srun
#   --kill-on-bad-exit ends the step with SIGTERM, which the ranks take as a
#   pre-emption they cannot reach (they wait in a collective), and SIGKILL
#   KillWait later;
# - jobs/pbs/train_fsdp.pbs through Slurm's qsub wrapper (mpirun inside the
#   allocation) trains the same, bitwise;
# - a checkpoint written by 4 ranks on node1 and node2 resumes on node2 and
#   node3 with 2 ranks (the global batch kept): the resumed steps within
#   1e-5 of the uninterrupted run, the adapter within 1e-6 per tensor (the
#   bounds of tests/ckpt/resume_equivalence.sh: another world size sums the
#   gradients in another order).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
. "$top_srcdir/tests/cluster/cluster_lib.sh"
need_reference_python # safetensors, for the adapters resumed on 2 ranks
export OMP_NUM_THREADS=1
cluster_up head node1 node2 node3
cluster_slurm_up node1 node2 node3
cluster_quickstart "$CLUSTER_DIR"
steps=24
flags="--max_steps $steps --save_strategy steps --save_steps 10"
cluster_train ref "$(node_addr node1):4" 4 $flags
# what the batch jobs' ranks need (sbatch passes the environment on)
export OMPI_MCA_btl=tcp,self OMPI_MCA_btl_tcp_if_include=$CLUSTER_NET.0/24 OMPI_MCA_oob_tcp_if_include=$CLUSTER_NET.0/24
export OMPI_MCA_mpi_yield_when_idle=1 OMPI_MCA_plm_rsh_agent=$CLUSTER_DIR/rsh SHARDTUNE=$SHARDTUNE SAVE_STEPS=10
sbatch_job() { # NAME: the sbatch script on 2 nodes x 2 tasks into $CLUSTER_DIR/NAME; prints the job id
    on_node head sbatch --parsable -N 2 --ntasks-per-node 2 --open-mode=append -o "$CLUSTER_DIR/$1.out" \
        "$top_srcdir/jobs/slurm/train_fsdp.sbatch" "$QS_MODEL" "$QS_DATA" "$CLUSTER_DIR/$1" $QS_FLAGS --max_steps $steps
}
same_as_ref() { # NAME
    same_curves 1 "$CLUSTER_DIR/ref" "$CLUSTER_DIR/$1" 0 || { cat "$CLUSTER_DIR/$1.out"; fail "$1: curves differ"; }
    cmp "$CLUSTER_DIR/ref/adapter_model.safetensors" "$CLUSTER_DIR/$1/adapter_model.safetensors" ||
        fail "$1: the adapter differs"
}
finished() { # JOB NAME
    slurm_wait "$1" COMPLETED FAILED CANCELLED TIMEOUT
    [ "$(on_node head squeue -h -j "$1" -t all -o %T)" = COMPLETED ] || { cat "$CLUSTER_DIR/$2.out"; fail "$2: job $1 failed"; }
}

j=$(sbatch_job plain)
finished "$j" plain
grep -q "4 rank(s)" "$CLUSTER_DIR/plain.out" || fail "plain: not 4 ranks"
same_as_ref plain
echo "sbatch, 2 nodes x 2 tasks: bitwise the one-node run"

# interrupted: scontrol requeue, then scancel --signal=USR1
j=$(sbatch_job pre)
n0=0
for how in requeue usr1; do
    wait_for_step "$CLUSTER_DIR/pre" $((n0 + 4))
    if [ $how = requeue ]; then on_node head scontrol requeue "$j"; else on_node head scancel --signal=USR1 "$j"; fi
    slurm_wait "$j" PENDING
    n=$(last_step "$CLUSTER_DIR/pre")
    [ "$(cat "$CLUSTER_DIR/pre/latest")" = "checkpoint-$n.h5" ] || fail "$how: latest is not the last step logged ($n)"
    echo "$how: stopped after step $n with checkpoint-$n.h5; requeued"
    slurm_wait "$j" RUNNING COMPLETED
    n0=$n
done
finished "$j" pre
for n in $(grep -o 'resumed from [^ ]* at step [0-9]*' "$CLUSTER_DIR/pre.out" | sed 's/.*checkpoint-\([0-9]*\)\.h5 at step \([0-9]*\)/\1=\2/'); do
    echo "resumed: checkpoint=step $n"
done
[ "$(grep -c 'resumed from' "$CLUSTER_DIR/pre.out")" = 2 ] || { cat "$CLUSTER_DIR/pre.out"; fail "pre: not resumed twice"; }
grep -q "stopping after step .*SIGUSR1 reached 4 of 4" "$CLUSTER_DIR/pre.out" || fail "pre: no SIGUSR1 stop line"
grep -q "requeueing job $j" "$CLUSTER_DIR/pre.out" || fail "pre: the script did not requeue"
same_as_ref pre
echo "requeued and pre-empted: resumed at the steps logged, bitwise the uninterrupted run"

# a task killed: the step ends, no rank is left waiting
j=$(sbatch_job killed)
wait_for_step "$CLUSTER_DIR/killed" 3
ranks="^$SHARDTUNE train .*--output_dir $CLUSTER_DIR/killed "
victim=$(pgrep -f -- "$ranks" | head -1)
[ -n "$victim" ] || fail "killed: no rank found"
t0=$(date +%s)
kill -9 "$victim"
while pgrep -f -- "$ranks" > /dev/null; do
    [ $(($(date +%s) - t0)) -lt 45 ] || { pgrep -af -- "$ranks"; fail "killed: ranks still running 45 s after one was killed"; }
    sleep 0.2
done
echo "a rank SIGKILLed after step $(last_step "$CLUSTER_DIR/killed"): every rank ended within $(($(date +%s) - t0)) s"
slurm_wait "$j" FAILED COMPLETED CANCELLED
[ "$(on_node head squeue -h -j "$j" -t all -o %T)" = FAILED ] || fail "killed: job $j did not fail"

# PBS through Slurm's qsub wrapper
printf '%s\n' $QS_FLAGS --max_steps $steps > "$CLUSTER_DIR/pbs.flags"
j=$(on_node head qsub -V -l nodes=2:ppn=2 -o "$CLUSTER_DIR/pbs.out" \
    -v "MODEL=$QS_MODEL,DATA=$QS_DATA,OUT=$CLUSTER_DIR/pbs,FLAGS_FILE=$CLUSTER_DIR/pbs.flags" \
    "$top_srcdir/jobs/pbs/train_fsdp.pbs")
finished "$j" pbs
same_as_ref pbs
echo "qsub (Slurm's wrapper), 2 nodes x 2 ranks: bitwise the one-node run"

# the plain job's checkpoint-20 (ranks on node1 and node2) on node2 and node3, 2 ranks
two="$(node_addr node2):1,$(node_addr node3):1"
cluster_train moved "$two" 2 $flags --gradient_accumulation_steps 2 \
    --resume_from_checkpoint "$CLUSTER_DIR/plain/checkpoint-20.h5"
grep -q "resumed from .*checkpoint-20.h5 at step 20 (sharded layout, written by 4 rank(s))" "$CLUSTER_DIR/moved.log" ||
    fail "moved: no resume line"
same_curves 21 "$CLUSTER_DIR/ref" "$CLUSTER_DIR/moved" 1e-5 || fail "moved: curves differ"
same_adapter "$CLUSTER_DIR/ref" "$CLUSTER_DIR/moved" 1e-6 || fail "moved: adapter differs"
echo PASS
