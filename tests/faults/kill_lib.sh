# tests/faults/kill_lib.sh: sourced after tests/lib.sh, fsdp_lib.sh and
# ckpt_lib.sh by tests/faults/kill_rank.sh (a few trials) and bench/faults.sh
# (many).  A trial SIGKILLs one rank of a 3-rank run (8 steps, a checkpoint
# every 2) and checks what follows:
# - every other rank has ended within KILL_BOUND seconds of the kill (mpirun
#   has returned and no process of the run is left);
# - the newest complete checkpoint (`latest`) loads, and the run resumed from
#   it (or started again, when the kill came before the first save) has the
#   uninterrupted run's losses, bitwise, and its adapter, byte for byte.
# Kinds: train (an outside SIGKILL of a random rank at a random moment of
# the training loop, measured on the uninterrupted run),
# collective (a random rank dies as its Nth collective starts,
# SHARDTUNE_FAULT_KILL_COLLECTIVE), save (a random rank dies in a random
# save after a random dataset, SHARDTUNE_FAULT_KILL_SAVE).
KILL_BOUND=30

# rnd N: R becomes a pseudo-random number in [0, N) (a 31-bit LCG on
# KILL_SEED, which the caller sets: /bin/sh has no $RANDOM)
rnd() {
    KILL_SEED=$(( (KILL_SEED * 1103515245 + 12345) % 2147483648 ))
    R=$(( (KILL_SEED / 65536) % $1 ))
}
KILL_NP=3 KILL_G=4

# kill_setup: the model and the uninterrupted run ($SCRATCH/ref), its
# duration in ms in REF_MS, that of its training loop in REF_TRAIN_MS.
kill_setup() {
    "$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
    t0=$(date +%s%N)
    ckpt_train ref "$KILL_NP" "$KILL_G"
    REF_MS=$(( ($(date +%s%N) - t0) / 1000000 ))
    REF_TRAIN_MS=$(sed -n 's/^trained [0-9]* steps in \([0-9.]*\) s$/\1/p' "$SCRATCH/ref.log" | awk '{printf "%d", $1 * 1000}')
    [ "${REF_TRAIN_MS:-0}" -gt 0 ] || REF_TRAIN_MS=300
}

# pids of the run marked TRIAL (SHARDTUNE_TRIAL in their environment);
# with RANK, that rank's only
trial_pids() {
    for p in $(pgrep -f "shardtune train" || true); do
        env=$(tr '\0' '\n' < "/proc/$p/environ" 2> /dev/null) || continue
        echo "$env" | grep -qx "SHARDTUNE_TRIAL=$1" || continue
        [ -z "${2:-}" ] || echo "$env" | grep -qx "OMPI_COMM_WORLD_RANK=$2" || continue
        echo "$p"
    done
}

# kill_trial KIND N: trial N of KIND, with random choices from rnd.  Prints one line: kind, what was killed, the
# seconds until every rank had ended, where the run resumed.  Fails (the
# test) on any broken promise.
kill_trial() {
    kind=$1 n=$2 name=$1.$2
    rnd "$KILL_NP"
    rank=$R
    export SHARDTUNE_TRIAL=$name
    what=""
    case $kind in
    train)
        rnd $((REF_TRAIN_MS * 9 / 10 + 1)) # a moment of the training loop (its saves included)
        delay_ms=$R
        what="rank $rank ${delay_ms} ms after the first step"
        fsdp_run "$name" "$KILL_NP" "$SCRATCH/m" --gradient_accumulation_steps "$KILL_G" --max_steps 8 --save_steps 2 &
        runner=$!
        waited=0 # until the first step is logged (at most 60 s)
        while ! grep -q "^step 1/" "$SCRATCH/$name.log" 2> /dev/null && [ "$waited" -lt 1200 ]; do
            sleep 0.05
            waited=$((waited + 1))
        done
        sleep "$(awk "BEGIN{print $delay_ms / 1000}")"
        victim=$(trial_pids "$name" "$rank")
        t_kill=$(date +%s.%N)
        [ -n "$victim" ] && kill -KILL $victim 2> /dev/null || what="$what (no kill: the run had ended)"
        if wait "$runner"; then status=0; else status=$?; fi
        ;;
    collective)
        rnd 400
        nth=$((1 + R))
        what="rank $rank at its collective $nth"
        if SHARDTUNE_FAULT_KILL_COLLECTIVE=$rank:$nth fsdp_run "$name" "$KILL_NP" "$SCRATCH/m" \
            --gradient_accumulation_steps "$KILL_G" --max_steps 8 --save_steps 2; then status=0; else status=$?; fi
        ;;
    save)
        rnd 4
        step=$((2 + 2 * R))
        rnd 6
        nth=$((1 + R))
        what="rank $rank in the save of step $step after dataset $nth"
        if SHARDTUNE_FAULT_KILL_SAVE=$step:$rank:$nth fsdp_run "$name" "$KILL_NP" "$SCRATCH/m" \
            --gradient_accumulation_steps "$KILL_G" --max_steps 8 --save_steps 2; then status=0; else status=$?; fi
        ;;
    esac
    t_end=$(date +%s.%N)
    [ "$status" -ne 124 ] || fail "$name ($what): the run hung"
    if [ "$kind" != train ]; then
        t_kill=$(sed -n 's/^fault: rank .* SIGKILLs itself .* at //p' "$SCRATCH/$name.log")
        [ -n "$t_kill" ] || { cat "$SCRATCH/$name.log" >&2; fail "$name ($what): the hook did not fire"; }
    fi
    case $what in *"had ended"*) ;; *) [ "$status" -ne 0 ] || fail "$name ($what): the killed run succeeded" ;; esac
    left=$(trial_pids "$name")
    [ -z "$left" ] || fail "$name ($what): processes left after mpirun returned: $left"
    secs=$(awk "BEGIN{printf \"%.2f\", $t_end - $t_kill}")
    awk "BEGIN{exit !($secs <= $KILL_BOUND)}" || fail "$name ($what): the other ranks took $secs s to end"
    unset SHARDTUNE_TRIAL
    from=start
    if [ -e "$SCRATCH/$name/latest" ]; then
        from=$(cat "$SCRATCH/$name/latest")
        ckpt_train "$name" "$KILL_NP" "$KILL_G" --resume_from_checkpoint latest
    else
        ckpt_train "$name" "$KILL_NP" "$KILL_G"
    fi
    [ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/$name")" ] || fail "$name ($what): the resumed curve differs"
    cmp -s "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/$name/adapter_model.safetensors" ||
        fail "$name ($what): the adapter differs"
    echo "trial $name: killed $what; all ranks ended ${secs} s after the kill; resumed from $from: losses and adapter equal"
}
