#!/bin/sh
# Proves: gradient checkpointing changes memory, not numbers.  The same short
# LoRA run (4 steps, B=2 x G=2, clipping, weight decay, LoRA dropout 0.1 so
# that recomputation must regenerate the masks) with
# --gradient_checkpointing True and False logs the same loss and grad_norm
# strings at every step and writes byte-identical adapter_model.safetensors.
# (tests/ref/lora_dropout_matches_peft.sh checks the same against PEFT.)
# Both in fp32 and under --bf16 True (bf16 products and residual stream where
# the CPU has bf16 instructions, else fp32 again).
# The tiny model is written by tests/ref/tiny_model.sh (sh + awk): no Python.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/tiny_model.sh"

write_tiny_model "$SCRATCH/tiny"
# the adapter's own lora_dropout wins over the flag: make it 0.1
sed -i 's/"lora_dropout": 0\.0/"lora_dropout": 0.1/' "$SCRATCH/tiny/adapter/adapter_config.json"
grep -q '"lora_dropout": 0.1' "$SCRATCH/tiny/adapter/adapter_config.json" || fail "lora_dropout not set"
for bf16 in False True; do
for gc in True False; do
    "$SHARDTUNE" train --model_name_or_path "$SCRATCH/tiny/model" \
        --adapter "$SCRATCH/tiny/adapter" --use_peft_lora True \
        --dataset_name "$SCRATCH/tiny/data.jsonl" --output_dir "$SCRATCH/gc_$gc" \
        --max_seq_len 32 --per_device_train_batch_size 2 --gradient_accumulation_steps 2 \
        --learning_rate 1e-2 --lr_scheduler_type cosine --warmup_steps 1 --weight_decay 0.01 \
        --max_grad_norm 0.5 --max_steps 4 --seed 7 --logging_steps 1 --bf16 $bf16 \
        --gradient_checkpointing $gc >"$SCRATCH/gc_$gc.log" 2>&1 \
        || { cat "$SCRATCH/gc_$gc.log"; fail "shardtune train --bf16 $bf16 --gradient_checkpointing $gc"; }
    for key in loss grad_norm; do
        # the value as printed, e.g. "loss": 4.5894628 -> 4.5894628
        sed -n "s/.*\"$key\": *\([^,}]*\).*/\1/p" "$SCRATCH/gc_$gc/metrics.jsonl" \
            >"$SCRATCH/gc_$gc.$key"
    done
done

n=$(wc -l <"$SCRATCH/gc_True.loss")
[ "$n" -eq 4 ] || fail "expected 4 logged losses, found $n in gc_True/metrics.jsonl"
for key in loss grad_norm; do
    if ! cmp -s "$SCRATCH/gc_True.$key" "$SCRATCH/gc_False.$key"; then
        paste "$SCRATCH/gc_True.$key" "$SCRATCH/gc_False.$key"
        fail "--bf16 $bf16: $key differs between --gradient_checkpointing True and False"
    fi
done
echo "--bf16 $bf16:"
cat "$SCRATCH/gc_True.loss"
cmp "$SCRATCH/gc_True/adapter_model.safetensors" "$SCRATCH/gc_False/adapter_model.safetensors" \
    || fail "--bf16 $bf16: adapter_model.safetensors differs between --gradient_checkpointing True and False"
done
echo "PASS"
