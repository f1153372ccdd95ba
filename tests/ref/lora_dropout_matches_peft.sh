#!/bin/sh
# Proves: with LoRA dropout on (0.1, PEFT's guide setting, and 0.05 with
# rsLoRA on a Llama 3 RoPE model), shardtune computes what transformers + peft
# compute when PEFT's dropout drops exactly the inputs shardtune drops (the
# oracle regenerates shardtune's masks from their specification,
# reference_common.install_shardtune_dropout, in place of PEFT's nn.Dropout):
#  1. one forward + backward (model_dump --dropout True): logits, loss, the
#     gradient of every LoRA A and B, and dx (the gradient by the embedding
#     output, which carries every layer's dx through the adapters) to rel
#     1e-5, on 1 rank and on 2 ranks (FULL_SHARD), with and without gradient
#     checkpointing;
#  2. 10 AdamW steps of `shardtune train` (B=2 x G=2, cosine, clipping, weight
#     decay, three epochs' masks): losses, grad norms and the saved adapter to
#     rel 1e-5 of reference_train.py, on 1 rank with and without gradient
#     checkpointing, and on 2 ranks x G=1 (the same global batch);
#  3. gradient checkpointing on and off log the same loss and grad_norm
#     strings and write byte-identical adapters with dropout 0.1 (recomputation
#     regenerates the masks).
. "$top_srcdir/tests/lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
REF="$top_srcdir/tests/ref"
ROWS=4 T=32 SEED=42

"$PY" "$REF/make_tiny_llama.py" --all "$SCRATCH" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "make_tiny_llama.py"; }
# with_dropout SRC DST P: the same PEFT adapter, saved as if lora_dropout were P
with_dropout() {
    cp -r "$1" "$2"
    sed "s/\"lora_dropout\": *0\.0/\"lora_dropout\": $3/" "$1/adapter_config.json" >"$2/adapter_config.json"
    grep -q "\"lora_dropout\": $3" "$2/adapter_config.json" || fail "$2: lora_dropout not set to $3"
}
with_dropout "$SCRATCH/plain/adapter" "$SCRATCH/plain/adapter_d10" 0.1
with_dropout "$SCRATCH/llama3/adapter_rslora" "$SCRATCH/llama3/adapter_rslora_d05" 0.05

# 1. one micro-batch
dump() { # dump NAME NP VARIANT ADAPTER GC
    d="$SCRATCH/$3"
    timeout 300 "$MPIRUN" -np "$2" "$MODEL_DUMP" --model "$d/model" --adapter "$d/$4" \
        --data "$d/data.jsonl" --rows $ROWS --max_seq_len $T --dropout True --seed $SEED \
        --gradient_checkpointing "$5" --out "$SCRATCH/$1.ours.safetensors" >"$SCRATCH/$1.log" 2>&1 \
        || { cat "$SCRATCH/$1.log"; fail "model_dump $1"; }
}
dump d10.np1 1 plain adapter_d10 False
dump d10.np1.gc 1 plain adapter_d10 True
dump d10.np2.gc 2 plain adapter_d10 True
dump d05.np1 1 llama3 adapter_rslora_d05 False
dump d05.np2 2 llama3 adapter_rslora_d05 False
"$PY" "$REF/reference_grads.py" --dropout-seed $SEED \
    "$SCRATCH/plain/model" "$SCRATCH/plain/adapter_d10" "$SCRATCH/plain/data.jsonl" $ROWS $T "$SCRATCH/d10.ref.safetensors" \
    "$SCRATCH/llama3/model" "$SCRATCH/llama3/adapter_rslora_d05" "$SCRATCH/llama3/data.jsonl" $ROWS $T \
    "$SCRATCH/d05.ref.safetensors" >"$SCRATCH/ref.log" 2>&1 \
    || { cat "$SCRATCH/ref.log"; fail "reference_grads.py"; }
status=0
for run in d10.np1 d10.np1.gc d10.np2.gc d05.np1 d05.np2; do
    echo "== $run"
    "$PY" "$REF/compare_tensors.py" "$SCRATCH/$run.ours.safetensors" "$SCRATCH/${run%%.*}.ref.safetensors" \
        --rtol 1e-5 >"$SCRATCH/$run.cmp" || { cat "$SCRATCH/$run.cmp"; status=1; }
    tail -n 1 "$SCRATCH/$run.cmp"
done
[ $status = 0 ] || fail "model_dump with dropout differs from transformers + peft with shardtune's masks"

# 2. training; 3. checkpointing bitwise
TRAIN_FLAGS="--max_seq_len 32 --per_device_train_batch_size 2 --learning_rate 1e-2 --lr_scheduler_type cosine \
    --warmup_steps 2 --weight_decay 0.01 --max_grad_norm 1.5 --max_steps 10 --seed $SEED"
train() { # train NAME NP G GC
    # shellcheck disable=SC2086
    timeout 300 "$MPIRUN" -np "$2" "$SHARDTUNE" train --model_name_or_path "$SCRATCH/plain/model" \
        --adapter "$SCRATCH/plain/adapter_d10" --dataset_name "$SCRATCH/plain/data.jsonl" \
        --output_dir "$SCRATCH/$1" --use_peft_lora True --logging_steps 1 $TRAIN_FLAGS \
        --gradient_accumulation_steps "$3" --gradient_checkpointing "$4" >"$SCRATCH/$1.log" 2>&1 \
        || { cat "$SCRATCH/$1.log"; fail "shardtune train $1"; }
}
train np1 1 2 False
train np1.gc 1 2 True
train np2.gc 2 1 True
# shellcheck disable=SC2086
"$PY" "$REF/reference_train.py" --model_name_or_path "$SCRATCH/plain/model" \
    --adapter "$SCRATCH/plain/adapter_d10" --dataset_name "$SCRATCH/plain/data.jsonl" \
    --output_dir "$SCRATCH/train.ref" $TRAIN_FLAGS --gradient_accumulation_steps 2 \
    >"$SCRATCH/train.ref.log" 2>&1 || { cat "$SCRATCH/train.ref.log"; fail "reference_train.py"; }
tail -n 1 "$SCRATCH/train.ref.log"
for run in np1 np1.gc np2.gc; do
    echo "== train $run"
    "$PY" "$REF/compare_metrics.py" "$SCRATCH/$run/metrics.jsonl" "$SCRATCH/train.ref/metrics.jsonl" \
        >"$SCRATCH/$run.metrics" || { cat "$SCRATCH/$run.metrics"; status=1; }
    "$PY" "$REF/check_adapter.py" --rtol 1e-5 "$SCRATCH/plain/model" "$SCRATCH/$run" "$SCRATCH/train.ref" \
        >"$SCRATCH/$run.adapter" 2>&1 || { cat "$SCRATCH/$run.adapter"; status=1; }
    grep -E '^check_adapter' "$SCRATCH/$run.adapter" || true
done
[ $status = 0 ] || fail "shardtune train with dropout differs from the torch reference"

for key in loss grad_norm; do
    for run in np1 np1.gc; do
        # the values as printed, e.g. "loss": 4.5894628 -> 4.5894628
        sed -n "s/.*\"$key\": *\([^,}]*\).*/\1/p" "$SCRATCH/$run/metrics.jsonl" >"$SCRATCH/$run.$key"
    done
    [ "$(wc -l <"$SCRATCH/np1.$key")" -eq 10 ] || fail "expected 10 logged values of $key"
    cmp -s "$SCRATCH/np1.$key" "$SCRATCH/np1.gc.$key" || {
        paste "$SCRATCH/np1.$key" "$SCRATCH/np1.gc.$key"
        fail "$key differs between --gradient_checkpointing False and True with dropout 0.1"
    }
done
cmp "$SCRATCH/np1/adapter_model.safetensors" "$SCRATCH/np1.gc/adapter_model.safetensors" \
    || fail "adapter_model.safetensors differs between --gradient_checkpointing False and True with dropout 0.1"
echo "PASS"
