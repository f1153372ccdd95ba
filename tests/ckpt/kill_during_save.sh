#!/bin/sh
# Proves: a rank killed (SIGKILL) in the middle of writing a checkpoint
# leaves the previous checkpoint intact and `latest` pointing at it; the
# restarted job (--resume_from_checkpoint latest) continues from it, and its
# losses equal an uninterrupted run's.  `shardtune export` of a checkpoint
# (on another number of ranks) writes the adapter training wrote.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
ckpt_train ref 2 6
SHARDTUNE_FAULT_KILL_SAVE=4 ckpt_train_fails crash 2 6
[ "$(cat "$SCRATCH/crash/latest")" = "checkpoint-2.h5" ] || fail "latest is $(cat "$SCRATCH/crash/latest")"
[ ! -e "$SCRATCH/crash/checkpoint-4.h5" ] || fail "a half-written checkpoint took the real name"
echo "after the kill: $(ls "$SCRATCH/crash" | tr '\n' ' ')"
ckpt_train crash 2 6 --resume_from_checkpoint latest
grep -q "resumed from .*checkpoint-2.h5 at step 2" "$SCRATCH/crash.log" || fail "did not resume from checkpoint-2"
[ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/crash")" ] || fail "the resumed curve differs"
cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/crash/adapter_model.safetensors" || fail "adapters differ"
# export: the adapter of the last checkpoint, on another number of ranks, is the one training wrote
"$MPIRUN" -np 3 "$SHARDTUNE" export "$SCRATCH/ref/checkpoint-8.h5" --out "$SCRATCH/exported" > /dev/null ||
    fail "export failed"
cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/exported/adapter_model.safetensors" || fail "export differs"
echo PASS
