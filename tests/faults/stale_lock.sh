#!/bin/sh
# Proves: a run killed in the middle of a checkpoint save (a rank SIGKILLed,
# SHARDTUNE_FAULT_KILL_SAVE) leaves OUTPUT_DIR/shardtune.lock naming its
# pid and host, and the unfinished checkpoint .tmp; the next run recognises
# that its owner is gone (no flock held on it), says so in one line, clears
# it with the .tmp, resumes, and ends with the uninterrupted run's losses
# and adapter, the lock removed.  A lock whose owner is alive (held here by
# flock(1), as a running shardtune holds it) is refused in one line naming
# that owner, within seconds, the lock left as it was; once the owner is
# gone the next run clears it.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
need_tool flock "to hold a lock as a live run does"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
ckpt_train ref 2 6
[ ! -e "$SCRATCH/ref/shardtune.lock" ] || fail "a finished run left its lock"

SHARDTUNE_FAULT_KILL_SAVE=4 ckpt_train_fails crash 2 6
grep -q "^pid [0-9]* host $(hostname) since " "$SCRATCH/crash/shardtune.lock" ||
    fail "no lock naming its owner after the kill: $(cat "$SCRATCH/crash/shardtune.lock" 2>&1)"
[ -e "$SCRATCH/crash/checkpoint-4.h5.tmp" ] || fail "the kill left no unfinished checkpoint"
dead=$(cat "$SCRATCH/crash/shardtune.lock")
echo "left by the kill: $dead; $(ls "$SCRATCH/crash" | tr '\n' ' ')"
ckpt_train crash 2 6 --resume_from_checkpoint latest --save_steps 3
[ "$(grep -c "shardtune.lock: stale lock" "$SCRATCH/crash.log")" = 1 ] || fail "no line for the stale lock"
set -- $dead # pid PID host HOST since TIME
grep "shardtune.lock: stale lock of pid $2 on $4 (since $6), whose run is gone: cleared, with the unfinished checkpoint .tmp file(s) it left" \
    "$SCRATCH/crash.log" || fail "the stale lock line"
[ ! -e "$SCRATCH/crash/checkpoint-4.h5.tmp" ] || fail "the unfinished checkpoint is still there"
[ ! -e "$SCRATCH/crash/shardtune.lock" ] || fail "the resumed run left its lock"
[ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/crash")" ] || fail "the resumed curve differs"
cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/crash/adapter_model.safetensors" || fail "adapters differ"

# a live owner: refused, quickly, the lock untouched
mkdir "$SCRATCH/live"
echo "pid 4242 host $(hostname) since 2026-01-01T00:00:00" > "$SCRATCH/live/shardtune.lock"
# the subshell becomes sleep, holding the flock on its descriptor 9
( exec 9<> "$SCRATCH/live/shardtune.lock"; flock -x 9; exec sleep 120 ) &
holder=$!
sleep 1
t0=$(date +%s)
ckpt_train_fails live 2 6
one_error live ".*/live/shardtune.lock: another run (pid 4242 on $(hostname), since 2026-01-01T00:00:00) is training into this --output_dir: wait for it to end, or give another --output_dir$"
[ $(( $(date +%s) - t0 )) -le 60 ] || fail "the refusal took over 60 s"
[ "$(cat "$SCRATCH/live/shardtune.lock")" = "pid 4242 host $(hostname) since 2026-01-01T00:00:00" ] ||
    fail "the refused run changed the lock"
[ ! -e "$SCRATCH/live/metrics.jsonl" ] || fail "the refused run wrote metrics.jsonl"
kill "$holder"
wait "$holder" 2> /dev/null || true
ckpt_train live 2 6
grep -q "shardtune.lock: stale lock of pid 4242 on $(hostname) (since 2026-01-01T00:00:00), whose run is gone: cleared$" \
    "$SCRATCH/live.log" || fail "the lock of the ended owner was not cleared"
echo PASS
