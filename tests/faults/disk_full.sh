#!/bin/sh
# Proves, on 2 ranks writing into a small tmpfs: a file system that is full
# when a checkpoint save begins, or that fills in the middle of one
# (SHARDTUNE_FAULT_FILL_DISK, src/fault_inject.h: rank 0 takes every free
# block after the first dataset is written), fails the save with one error
# line naming the file and the cause, within the time limit (no hang), and
# loses nothing: no .tmp or other partial file is left, `latest` still names
# the previous checkpoint, which loads, and the run resumed from it gives
# the uninterrupted run's losses and adapter.  With --save_on_error
# continue the run goes on past the failed save, its losses and adapter the
# uninterrupted run's, and the next saves succeed.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
ckpt_train ref 2 6

# a file system of its own, so that filling it harms nothing else
DISK="$SCRATCH/disk"
mkdir "$DISK"
mount -t tmpfs -o size=4m tmpfs "$DISK" 2> /dev/null ||
    skip_unless_required "cannot mount a tmpfs (the test needs root)"
trap 'umount "$DISK" 2> /dev/null; rm -rf "$SCRATCH"' EXIT
fresh_disk() { rm -rf "${DISK:?}"/*; }
# runs write into $DISK/NAME, their logs beside the scratch runs
on_disk() { mkdir "$DISK/$1" && ln -sfn "$DISK/$1" "$SCRATCH/$1"; }
nothing_partial() { # no temporary file, no checkpoint of the failed save
    left=$(ls -a "$DISK/$1" | grep -e '\.tmp' -e reserve -e fill -e 'checkpoint-4' || true)
    [ -z "$left" ] || fail "$1: left behind: $left"
    echo "$1: $(ls "$DISK/$1" | tr '\n' ' ')"
}
resumes_exactly() { # NAME: resumed from latest, the uninterrupted run's losses and adapter
    ckpt_train "$1" 2 6 --resume_from_checkpoint latest
    grep -q "resumed from .*checkpoint-2.h5 at step 2" "$SCRATCH/$1.log" || fail "$1: did not resume from checkpoint-2"
    [ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/$1")" ] || fail "$1: the resumed curve differs"
    cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/$1/adapter_model.safetensors" || fail "$1: adapters differ"
}

# full before the save of step 4: the space check refuses it, nothing is written
fresh_disk
on_disk before
ckpt_train before 2 6 --max_steps 2
free_kb=$(df -k --output=avail "$DISK" | tail -n 1)
dd if=/dev/zero of="$DISK/filler" bs=1k count=$((free_kb - 48)) 2> /dev/null
ckpt_train_fails before 2 6 --resume_from_checkpoint latest
one_error before ".*/before/checkpoint-4.h5: cannot save: No space left on device (reserving .* MiB for it); nothing written, earlier checkpoints and latest are untouched$"
[ "$(cat "$DISK/before/latest")" = checkpoint-2.h5 ] || fail "before: latest is $(cat "$DISK/before/latest")"
nothing_partial before
rm "$DISK/filler"
resumes_exactly before

# fills during the save of step 4 (the default: the run stops)
fresh_disk
on_disk during
SHARDTUNE_FAULT_FILL_DISK=4 ckpt_train_fails during 2 6
one_error during ".*/during/checkpoint-4.h5.tmp: writing the checkpoint failed (rank 0: writing a dataset: .*); removed, earlier checkpoints and latest are untouched$"
grep -q "No space left on device" "$SCRATCH/during.errors" || echo "note: the system's message did not reach the error"
[ "$(cat "$DISK/during/latest")" = checkpoint-2.h5 ] || fail "during: latest is $(cat "$DISK/during/latest")"
[ ! -e "$DISK/during/adapter_model.safetensors" ] || fail "during: a stopped run wrote an adapter"
nothing_partial during
resumes_exactly during

# --save_on_error continue: the failed save is reported, training goes on
fresh_disk
on_disk cont
SHARDTUNE_FAULT_FILL_DISK=4 ckpt_train cont 2 6 --save_on_error continue
grep -q "checkpoint-4.h5.tmp: writing the checkpoint failed .*; training goes on (--save_on_error continue)" \
    "$SCRATCH/cont.log" || fail "cont: no line for the failed save"
[ ! -e "$DISK/cont/checkpoint-4.h5" ] || fail "cont: checkpoint-4 exists"
[ "$(cat "$DISK/cont/latest")" = checkpoint-8.h5 ] || fail "cont: latest is $(cat "$DISK/cont/latest")"
nothing_partial cont
[ "$(losses 1 "$SCRATCH/ref")" = "$(losses 1 "$SCRATCH/cont")" ] || fail "cont: the curve differs"
cmp "$SCRATCH/ref/adapter_model.safetensors" "$SCRATCH/cont/adapter_model.safetensors" || fail "cont: adapters differ"
echo PASS
