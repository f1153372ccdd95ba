#!/bin/sh
# Proves: a run resumed from a checkpoint continues exactly: on the same
# number of ranks the loss curve is bitwise the uninterrupted one's (and the
# final adapter byte-identical); on another number of ranks (4 -> 2, 2 -> 3,
# 1 -> 4, the global batch kept) it matches to rounding (1e-5); for both
# checkpoint layouts (SHARDED_STATE_DICT, FULL_STATE_DICT) and for
# FULL_SHARD and NO_SHARD.  LoRA dropout is on: its masks must continue too.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
for layout in SHARDED_STATE_DICT FULL_STATE_DICT; do
    for strategy in FULL_SHARD NO_SHARD; do
        export FSDP_STATE_DICT_TYPE=$layout FSDP_SHARDING_STRATEGY=$strategy
        k=$layout.$strategy
        ckpt_train "$k.a2" 2 6                      # the uninterrupted reference
        ckpt_train "$k.b4" 4 3                      # only its checkpoint-4 is used
        ckpt_train "$k.c1" 1 12
        ckpt_train "$k.same" 2 6 --resume_from_checkpoint "$SCRATCH/$k.a2/checkpoint-4.h5"
        ckpt_train "$k.4to2" 2 6 --resume_from_checkpoint "$SCRATCH/$k.b4/checkpoint-4.h5"
        ckpt_train "$k.2to3" 3 4 --resume_from_checkpoint "$SCRATCH/$k.a2/checkpoint-4.h5"
        ckpt_train "$k.1to4" 4 3 --resume_from_checkpoint "$SCRATCH/$k.c1/checkpoint-4.h5"
        want=sharded
        [ "$layout" = FULL_STATE_DICT ] && want=full
        grep -q "resumed from .* at step 4 ($want layout" "$SCRATCH/$k.same.log" || fail "$k: no resume line"
        [ "$(losses 5 "$SCRATCH/$k.a2")" = "$(losses 5 "$SCRATCH/$k.same")" ] || fail "$k: same-rank resume is not bitwise"
        cmp "$SCRATCH/$k.a2/adapter_model.safetensors" "$SCRATCH/$k.same/adapter_model.safetensors" ||
            fail "$k: same-rank resume gives another adapter"
        for d in 4to2 2to3 1to4; do
            same_losses 5 "$SCRATCH/$k.a2" "$SCRATCH/$k.$d" 1e-5 || fail "$k: $d resume differs"
        done
    done
done
echo PASS
