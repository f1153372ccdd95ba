#!/bin/sh
# Proves: resume across world sizes holds for QLoRA (--use_4bit_quantization,
# nf4 nested; sharded checkpoint layout) and for DoRA (magnitude vectors in the
# checkpoint; both layouts), FULL_SHARD, LoRA dropout on, by the rules of
# tests/ckpt/resume_equivalence.sh: a 2-rank run (global batch of 12
# micro-batches, 8 steps, a checkpoint every 2) resumed from its step-4
# checkpoint
# - on 2 ranks gives bitwise the same losses and a byte-identical adapter;
# - on 3 and on 1 rank(s) gives losses and grad norms of steps 5-8 within
#   1e-5 of the uninterrupted run and a final adapter within 1e-6 per tensor
#   (only the world size of steps 5-8 differs).
# And a 4-bit checkpoint is refused by a run without the 4-bit flag (its
# frozen weights are another base): one line naming the checkpoint, exit 1.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
need_reference_python # numpy and safetensors, for the adapters

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 24 --layers 2
export FSDP_SHARDING_STRATEGY=FULL_SHARD
for kind in 4bit dora; do
    # DoRA at lr 3e-3 (tests/fsdp/fsdp_equivalence.sh says why not 1e-2)
    flags="--use_4bit_quantization True --use_nested_quant True --bnb_4bit_compute_dtype float32"
    [ $kind = dora ] && flags="--use_dora True --learning_rate 3e-3"
    # the 4-bit run's trainable state is laid out as LoRA's: one layout does
    layouts="SHARDED_STATE_DICT FULL_STATE_DICT"
    [ $kind = 4bit ] && layouts=SHARDED_STATE_DICT
    for layout in $layouts; do
        export FSDP_STATE_DICT_TYPE=$layout
        k=$kind.$layout
        # shellcheck disable=SC2086
        ckpt_train "$k.a2" 2 6 $flags
        for run in same:2:6 2to3:3:4 2to1:1:12; do
            d=${run%%:*} np=${run#*:} g=${run##*:}
            np=${np%:*}
            # shellcheck disable=SC2086
            ckpt_train "$k.$d" "$np" "$g" $flags --resume_from_checkpoint "$SCRATCH/$k.a2/checkpoint-4.h5"
        done
        want=sharded
        [ "$layout" = FULL_STATE_DICT ] && want=full
        grep -q "resumed from .* at step 4 ($want layout" "$SCRATCH/$k.same.log" || fail "$k: no resume line"
        [ $kind = 4bit ] && { grep -q "^4-bit: linear weights as nf4" "$SCRATCH/$k.2to3.log" || fail "$k: not 4-bit"; }
        [ "$(losses 5 "$SCRATCH/$k.a2")" = "$(losses 5 "$SCRATCH/$k.same")" ] || fail "$k: same-rank resume is not bitwise"
        cmp "$SCRATCH/$k.a2/adapter_model.safetensors" "$SCRATCH/$k.same/adapter_model.safetensors" ||
            fail "$k: same-rank resume gives another adapter"
        for d in 2to3 2to1; do
            same_curves 5 "$SCRATCH/$k.a2" "$SCRATCH/$k.$d" 1e-5 || fail "$k: $d resume: losses or grad norms differ"
            same_adapter "$SCRATCH/$k.a2" "$SCRATCH/$k.$d" 1e-6 || fail "$k: $d resume: adapter differs"
        done
    done
done
"$PY" -c 'import safetensors.numpy as s, sys; d = s.load_file(sys.argv[1])
assert any(k.endswith("lora_magnitude_vector") for k in d), "no DoRA magnitude in the adapter"' \
    "$SCRATCH/dora.SHARDED_STATE_DICT.2to3/adapter_model.safetensors" || fail "the DoRA adapter has no magnitude"

# a 4-bit checkpoint, resumed on the unquantized base
unset FSDP_STATE_DICT_TYPE
if timeout 300 "$MPIRUN" -np 2 "$SHARDTUNE" train --model_name_or_path "$SCRATCH/m" \
    --dataset_name "$SCRATCH/m/data.jsonl" --max_seq_len 32 --output_dir "$SCRATCH/mismatch" \
    --per_device_train_batch_size 1 --gradient_accumulation_steps 6 --max_steps 8 --lora_r 4 --lora_alpha 8 \
    --lora_dropout 0.1 --lora_target_modules all-linear --seed 3 \
    --resume_from_checkpoint "$SCRATCH/4bit.SHARDED_STATE_DICT.a2/checkpoint-4.h5" > "$SCRATCH/mismatch.log" 2>&1; then
    fail "a 4-bit checkpoint resumed on the 16/32-bit base"
fi
grep "error:.*checkpoint-4.h5" "$SCRATCH/mismatch.log" | head -n 1 || { cat "$SCRATCH/mismatch.log"; fail "no error naming the checkpoint"; }
echo PASS
