#!/bin/sh
# Proves: training with modules_to_save equals the torch oracle
# (reference_train.py over PEFT's own ModulesToSaveWrapper, AdamW with weight
# decay on the copies as on the LoRA tensors: transformers' Trainer decays
# everything but biases and norms) and is the same on any number of ranks:
#  1. `--modules_to_save embed_tokens,lm_head` from scratch: after a step at
#     learning rate 0 the saved copies equal the base model's tensors bit for
#     bit (PEFT's initialisation); 4 AdamW steps (weight decay, clipping) from
#     that adapter log PEFT's losses and grad norms, and save PEFT's tensors
#     (check_adapter.py: every tensor, LoRA and copies, to rel 1e-5, loaded by
#     PeftModel.from_pretrained);
#  2. 3 ranks FULL_SHARD (global batch kept) and 2 ranks SHARD_GRAD_OP / NO_SHARD
#     give the 1-rank run's losses, grad norms and adapter to rel 1e-5;
#  3. continued training of an adapter PEFT saved with modules_to_save
#     ["lm_head"] (the copy off the base weights) equals the oracle from it;
#  4. a checkpoint of a 2-rank run resumed on 3 ranks continues it: the resumed
#     steps' losses and grad norms, and the final adapter, within 1e-5.
#  5. the CUDA backend's ops (lm_head_xent_dw, embedding_bwd), on the CPU
#     emulation of CUDA, 2 ranks FULL_SHARD over the emulated NCCL: the 1-rank
#     CPU run's losses, grad norms and adapter to rel 1e-4, train_compare.sh's
#     tolerance (measured 8.6e-6, in LoRA B tensors that AdamW moves from 0).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1
REF="$top_srcdir/tests/ref"

"$PY" "$REF/make_saved_module_adapters.py" "$SCRATCH" > "$SCRATCH/make.log" 2>&1 ||
    { cat "$SCRATCH/make.log"; fail "make_saved_module_adapters.py"; }
M="$SCRATCH/model"
COMMON="--dataset_name $SCRATCH/data.jsonl --max_seq_len 32 --per_device_train_batch_size 2
    --weight_decay 0.01 --seed 42 --learning_rate 1e-2 --max_grad_norm 1.0 --logging_steps 1"
FRESH="--lora_r 4 --lora_alpha 8 --lora_dropout 0 --lora_target_modules q_proj,v_proj
    --modules_to_save embed_tokens,lm_head --gradient_checkpointing False"
# train NAME NP [flags]: shardtune on NP ranks into $SCRATCH/NAME
train() {
    _n=$1 _np=$2
    shift 2
    # shellcheck disable=SC2086
    timeout 300 "$MPIRUN" -np "$_np" "$SHARDTUNE" train --model_name_or_path "$M" $COMMON \
        --output_dir "$SCRATCH/$_n" "$@" > "$SCRATCH/$_n.log" 2>&1 || { cat "$SCRATCH/$_n.log"; fail "run $_n"; }
}
# oracle NAME ADAPTER [flags]: reference_train.py from ADAPTER into $SCRATCH/NAME.ref
oracle() {
    _n=$1 _a=$2
    shift 2
    # shellcheck disable=SC2086
    "$PY" "$REF/reference_train.py" --model_name_or_path "$M" --adapter "$_a" $COMMON \
        --output_dir "$SCRATCH/$_n.ref" "$@" > "$SCRATCH/$_n.ref.log" 2>&1 ||
        { cat "$SCRATCH/$_n.ref.log"; fail "reference_train.py $_n"; }
    "$PY" "$REF/compare_metrics.py" "$SCRATCH/$_n/metrics.jsonl" "$SCRATCH/$_n.ref/metrics.jsonl" ||
        fail "$_n: metrics differ from the oracle's"
    "$PY" "$REF/check_adapter.py" --rtol 1e-5 "$M" "$SCRATCH/$_n" "$SCRATCH/$_n.ref" > "$SCRATCH/$_n.check" 2>&1 ||
        { cat "$SCRATCH/$_n.check"; fail "$_n: adapter differs from the oracle's"; }
    grep '^check_adapter' "$SCRATCH/$_n.check"
}

# 1. from scratch
# shellcheck disable=SC2086
train init 1 $FRESH --learning_rate 0 --max_steps 1 --save_strategy no
"$PY" - "$M" "$SCRATCH/init" <<'PY' || fail "the fresh copies are not the base model's tensors"
import sys
from safetensors.torch import load_file
base, saved = load_file(sys.argv[1] + "/model.safetensors"), load_file(sys.argv[2] + "/adapter_model.safetensors")
for ours, theirs in (("base_model.model.model.embed_tokens.weight", "model.embed_tokens.weight"),
                     ("base_model.model.lm_head.weight", "lm_head.weight")):
    assert saved[ours].equal(base[theirs]), ours
print("fresh copies: equal to the base tensors")
PY
# shellcheck disable=SC2086
train fresh 1 $FRESH --gradient_accumulation_steps 2 --max_steps 4 --save_strategy no
oracle fresh "$SCRATCH/init" --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 4

# 2. ranks and strategies: 6 micro-batches per step, 3 steps
# shellcheck disable=SC2086
train one 1 $FRESH --gradient_accumulation_steps 6 --per_device_train_batch_size 1 --max_steps 3 --save_strategy no
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=FULL_SHARD train full3 3 $FRESH --gradient_accumulation_steps 2 \
    --per_device_train_batch_size 1 --max_steps 3 --save_strategy no
for s in SHARD_GRAD_OP NO_SHARD; do
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=$s train "$s.2" 2 $FRESH --gradient_accumulation_steps 3 \
        --per_device_train_batch_size 1 --max_steps 3 --save_strategy no
done
compare_runs "$SCRATCH/one" "$SCRATCH/full3" "$SCRATCH/SHARD_GRAD_OP.2" "$SCRATCH/NO_SHARD.2" ||
    fail "N ranks differ from 1 rank"

# 3. continued training of PEFT's adapter
train peft_head 1 --adapter "$SCRATCH/ok_head" --gradient_accumulation_steps 2 --max_steps 4 --save_strategy no
oracle peft_head "$SCRATCH/ok_head" --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --max_steps 4

# 4. checkpoint on 2 ranks, resumed on 3 (per-rank batch 1, 6 micro-batches per step)
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=FULL_SHARD train ck2 2 $FRESH --per_device_train_batch_size 1 \
    --gradient_accumulation_steps 3 --max_steps 4 --save_strategy steps --save_steps 2
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=FULL_SHARD train ck3 3 $FRESH --per_device_train_batch_size 1 \
    --gradient_accumulation_steps 2 --max_steps 4 --save_strategy steps --save_steps 2 \
    --resume_from_checkpoint "$SCRATCH/ck2/checkpoint-2.h5"
grep -q "resumed from .* at step 2" "$SCRATCH/ck3.log" || { cat "$SCRATCH/ck3.log"; fail "no resume line"; }
same_curves 3 "$SCRATCH/ck2" "$SCRATCH/ck3" 1e-5 || fail "resumed steps differ"
same_adapter "$SCRATCH/ck2" "$SCRATCH/ck3" 1e-5 || fail "resumed adapter differs"

# 5. the CUDA ops, emulated
emu="$top_builddir/tests/cuda_emu/shardtune-cuda-emu.so"
[ -f "$emu" ] || fail "$emu is missing (make check builds it)"
# shellcheck disable=SC2086
SHARDTUNE_CUDA_PLUGIN="$emu" FSDP_SHARDING_STRATEGY=FULL_SHARD train cuda2 2 $FRESH --device cuda \
    --gradient_accumulation_steps 3 --per_device_train_batch_size 1 --max_steps 3 --save_strategy no
compare_runs --rtol 1e-4 "$SCRATCH/one" "$SCRATCH/cuda2" || fail "the CUDA backend (emulated) differs from the CPU"
echo PASS
