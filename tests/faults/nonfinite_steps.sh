#!/bin/sh
# Proves, on 2 ranks, with a NaN put into the last rank's gradients by the
# test hook SHARDTUNE_FAULT_NAN_STEPS (src/fault_inject.h):
# - a non-finite step is skipped whole: the checkpoint after it holds
#   bitwise the parameters, AdamW moments and adam_step of the one before it
#   (h5py reads both); it is logged (a line, and a metrics.jsonl record with
#   "skipped_step" and no "loss");
# - what follows a skip is exactly "that batch never happened": the steps
#   after it equal (bitwise losses, byte-identical adapter) a run resumed
#   from the uninterrupted run's checkpoint of the step before, whose data
#   position h5py moved past the bad batch;
# - --max_bad_steps N bad steps in a row stop the run: exit 1, one error
#   line, no adapter written, `latest` naming a checkpoint of the last good
#   state (bitwise the uninterrupted run's at that step, also when a save
#   fell on a bad step); resumed without the fault, the run's losses and
#   adapter equal the uninterrupted run's.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
H5PY=/usr/bin/python3
"$H5PY" -c 'import h5py, numpy' 2> /dev/null ||
    skip_unless_required "no h5py and numpy under /usr/bin/python3 (Debian's python3-h5py, python3-numpy)"
state() { "$H5PY" "$top_srcdir/tests/faults/ckpt_state.py" "$@"; }

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
ckpt_train ref 2 6 --save_steps 1                       # uninterrupted, a checkpoint every step

# one bad step (3) in a run that goes on
SHARDTUNE_FAULT_NAN_STEPS=3 ckpt_train skip 2 6 --save_steps 1
grep -q "step 3: loss .*, grad norm nan: not finite, step skipped" "$SCRATCH/skip.log" || fail "no skip line"
grep -q '"step": 3, .*"skipped_step": true' "$SCRATCH/skip/metrics.jsonl" || fail "no skipped_step record"
[ "$(losses 1 "$SCRATCH/skip" | cut -d' ' -f1 | tr '\n' ' ')" = "1 2 4 5 6 7 8 " ] || fail "logged losses: $(losses 1 "$SCRATCH/skip")"
state same "$SCRATCH/skip/checkpoint-2.h5" "$SCRATCH/skip/checkpoint-3.h5" || fail "the skipped step changed the state"
state same "$SCRATCH/ref/checkpoint-2.h5" "$SCRATCH/skip/checkpoint-2.h5" || fail "steps before the fault differ"
state differ "$SCRATCH/skip/checkpoint-3.h5" "$SCRATCH/skip/checkpoint-4.h5" || fail "training did not go on after the skip"
# the reference of "batch 3 never happened": ref's step-2 state at data position 3
mkdir "$SCRATCH/nobatch3"
state advance "$SCRATCH/ref/checkpoint-2.h5" "$SCRATCH/nobatch3.h5" 3
ckpt_train nobatch3 2 6 --save_steps 1 --resume_from_checkpoint "$SCRATCH/nobatch3.h5"
[ "$(losses 4 "$SCRATCH/skip")" = "$(losses 4 "$SCRATCH/nobatch3")" ] || fail "steps after the skip differ"
cmp "$SCRATCH/skip/adapter_model.safetensors" "$SCRATCH/nobatch3/adapter_model.safetensors" ||
    fail "the adapter after a skip differs"
echo "skip: steps 4-8 and adapter equal the run resumed past batch 3"

# three in a row stop the run; the save at step 4 falls on a bad step
SHARDTUNE_FAULT_NAN_STEPS=3,4,5 ckpt_train_fails stop 2 6 --save_steps 4
one_error stop "step 5: loss .*, grad norm nan: 3 non-finite steps in a row (--max_bad_steps 3): training diverged (lower --learning_rate?); the last good state, step 2, is in .*/stop/checkpoint-2.h5$"
[ "$(cat "$SCRATCH/stop/latest")" = checkpoint-2.h5 ] || fail "latest is $(cat "$SCRATCH/stop/latest")"
[ ! -e "$SCRATCH/stop/adapter_model.safetensors" ] || fail "a stopped run wrote an adapter"
state same "$SCRATCH/ref/checkpoint-2.h5" "$SCRATCH/stop/checkpoint-2.h5" || fail "the saved last good state"
state same "$SCRATCH/ref/checkpoint-2.h5" "$SCRATCH/stop/checkpoint-4.h5" || fail "the save on bad step 4"
ckpt_train stop 2 6 --save_steps 4 --resume_from_checkpoint latest
grep -q "resumed from .*checkpoint-2.h5 at step 2" "$SCRATCH/stop.log" || fail "did not resume from checkpoint-2"
[ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/stop")" ] || fail "the resumed curve differs"
cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/stop/adapter_model.safetensors" || fail "adapters differ"

# --max_bad_steps 1 right after a save of the same state: that checkpoint is kept, not written again
SHARDTUNE_FAULT_NAN_STEPS=3 ckpt_train_fails one 2 6 --max_bad_steps 1
one_error one "step 3: .*1 non-finite steps in a row (--max_bad_steps 1).* step 2, is in .*/one/checkpoint-2.h5$"
[ "$(grep -c "checkpoint .*/checkpoint-2.h5: .* written" "$SCRATCH/one.log")" = 1 ] || fail "checkpoint-2 written twice"
state same "$SCRATCH/ref/checkpoint-2.h5" "$SCRATCH/one/checkpoint-2.h5" || fail "the kept checkpoint"
echo PASS
