#!/bin/sh
# Proves (QLoRA, issue 10 deliverables 1-4): with --use_4bit_quantization the
# seven linear weights of every layer are kept as 4-bit codes + block state,
# quantized on load from a bf16 directory, and one forward + backward of
# tests/model_dump (logits, loss, every LoRA gradient, dx) equals
# transformers + peft on a base that bitsandbytes 0.50.2 quantized on the CPU
# (BitsAndBytesConfig, compute dtype float32, quant storage bfloat16) to rel
# 1e-5, for nf4 plain, nf4 nested and fp4 plain (tests/ref/qlora_common.py says
# how the nested case uses the exact-nearest nested codes, as doc/design.md
# specifies), on 1 rank and on 2 ranks FULL_SHARD (bit for bit equal), with
# both loading paths (rank 0 broadcasts; cpu_ram_efficient_loading);
# then 4 AdamW steps of `shardtune train` (nf4 nested, 1 and 2 ranks) equal
# tests/ref/reference_train.py on the 4-bit base (losses, grad norms and the
# saved adapter to rel 1e-5); and prints the all-gather bytes of a 4-bit run
# against the same run on the bf16 weights.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/qlora_lib.sh"
D="$SCRATCH/q"
ROWS=4 T=32

"$PY" "$REF/qlora_reference.py" make "$D" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "qlora_reference.py make"; }

cases="nf4:False nf4:True fp4:False"
set --
for c in $cases; do
    qt=${c%:*} nested=${c#*:}
    # shellcheck disable=SC2086
    "$MODEL_DUMP" --model "$D/model" --adapter "$D/adapter" --data "$D/data.jsonl" --rows $ROWS \
        --max_seq_len $T --out "$SCRATCH/$qt.$nested.ours1.safetensors" $QFLAGS \
        --bnb_4bit_quant_type "$qt" --use_nested_quant "$nested" >"$SCRATCH/$qt.$nested.log" 2>&1 \
        || { cat "$SCRATCH/$qt.$nested.log"; fail "model_dump $qt nested=$nested"; }
    grep -q "^4-bit: linear weights as $qt" "$SCRATCH/$qt.$nested.log" || fail "no 4-bit line for $qt"
    for loading in False True; do
        # shellcheck disable=SC2086
        FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_CPU_RAM_EFFICIENT_LOADING=$loading timeout 300 \
            "$MPIRUN" -np 2 "$MODEL_DUMP" --model "$D/model" --adapter "$D/adapter" \
            --data "$D/data.jsonl" --rows $ROWS --max_seq_len $T \
            --out "$SCRATCH/$qt.$nested.ours2.$loading.safetensors" $QFLAGS \
            --bnb_4bit_quant_type "$qt" --use_nested_quant "$nested" >"$SCRATCH/$qt.$nested.2.log" 2>&1 \
            || { cat "$SCRATCH/$qt.$nested.2.log"; fail "model_dump -np 2 $qt nested=$nested"; }
    done
    set -- "$@" "$qt" "$nested" "$D/model" "$D/adapter" "$D/data.jsonl" $ROWS $T "$SCRATCH/$qt.$nested.ref.safetensors"
done
"$PY" "$REF/qlora_reference.py" grads "$@" >"$SCRATCH/ref.log" 2>&1 \
    || { cat "$SCRATCH/ref.log"; fail "qlora_reference.py grads"; }
grep '^qlora_' "$SCRATCH/ref.log"

status=0
for c in $cases; do
    qt=${c%:*} nested=${c#*:} o="$SCRATCH/${c%:*}.${c#*:}"
    echo "== $qt nested=$nested: 1 rank against bitsandbytes + peft"
    "$PY" "$REF/compare_tensors.py" "$o.ours1.safetensors" "$o.ref.safetensors" --rtol 1e-5 \
        || { echo "FAIL: $qt nested=$nested differs from bitsandbytes + peft"; status=1; }
    for loading in False True; do
        echo "== $qt nested=$nested: 2 ranks FULL_SHARD (cpu_ram_efficient_loading $loading) against 1 rank"
        "$PY" "$REF/compare_tensors.py" "$o.ours2.$loading.safetensors" "$o.ours1.safetensors" --rtol 0 \
            >"$SCRATCH/cmp.log" || { cat "$SCRATCH/cmp.log"; echo "FAIL: $qt nested=$nested: 2 ranks differ"; status=1; }
        tail -1 "$SCRATCH/cmp.log"
    done
done
[ $status = 0 ] || fail "4-bit model_dump differs"

# A few AdamW steps against the torch loop on the 4-bit base.
TFLAGS="--max_seq_len 32 --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --learning_rate 1e-2
 --lr_scheduler_type linear --warmup_steps 1 --max_grad_norm 1.0 --weight_decay 0.01 --max_steps 4 --seed 42
 --logging_steps 1 --bnb_4bit_quant_type nf4 --use_nested_quant True"
: >"$SCRATCH/runs.txt"
for np in 1 2; do
    # 2 ranks take G = 1 each: the same global batch
    G=$((2 / np))
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=FULL_SHARD timeout 300 "$MPIRUN" -np $np "$SHARDTUNE" train \
        --model_name_or_path "$D/model" --adapter "$D/adapter" --dataset_name "$D/data.jsonl" \
        --output_dir "$SCRATCH/train$np" $TFLAGS $QFLAGS --gradient_accumulation_steps $G \
        --use_peft_lora True --gradient_checkpointing False --save_strategy no >"$SCRATCH/train$np.log" 2>&1 \
        || { cat "$SCRATCH/train$np.log"; fail "shardtune train -np $np (4-bit)"; }
done
# shellcheck disable=SC2086
for arg in --model_name_or_path "$D/model" --adapter "$D/adapter" --dataset_name "$D/data.jsonl" \
    --output_dir "$SCRATCH/train.ref" $TFLAGS $QFLAGS; do printf "'%s' " "$arg"; done >"$SCRATCH/runs.txt"
echo >>"$SCRATCH/runs.txt"
"$PY" "$REF/reference_train.py" --runs "$SCRATCH/runs.txt" >"$SCRATCH/reftrain.log" 2>&1 \
    || { cat "$SCRATCH/reftrain.log"; fail "reference_train.py (4-bit)"; }
for np in 1 2; do
    echo "== train, $np rank(s), nf4 nested: metrics and adapter against reference_train.py"
    "$PY" "$REF/compare_metrics.py" "$SCRATCH/train$np/metrics.jsonl" "$SCRATCH/train.ref/metrics.jsonl" \
        || { echo "FAIL: train -np $np metrics"; status=1; }
    "$PY" "$REF/check_adapter.py" --rtol 1e-5 "$D/model" "$SCRATCH/train$np" "$SCRATCH/train.ref" \
        >"$SCRATCH/check$np.log" 2>&1 || status=1
    grep -E '^(check_adapter|FAIL)' "$SCRATCH/check$np.log" || cat "$SCRATCH/check$np.log"
done
[ $status = 0 ] || fail "4-bit training differs from the reference"

# All-gather traffic: the same 2-rank run on the bf16 weights.
# shellcheck disable=SC2086
FSDP_SHARDING_STRATEGY=FULL_SHARD timeout 300 "$MPIRUN" -np 2 "$SHARDTUNE" train \
    --model_name_or_path "$D/model" --adapter "$D/adapter" --dataset_name "$D/data.jsonl" \
    --output_dir "$SCRATCH/train_bf16" $TFLAGS --gradient_accumulation_steps 1 \
    --use_peft_lora True --gradient_checkpointing False --save_strategy no >"$SCRATCH/train_bf16.log" 2>&1 \
    || { cat "$SCRATCH/train_bf16.log"; fail "shardtune train -np 2 (bf16)"; }
"$PY" - "$SCRATCH/train2/summary.json" "$SCRATCH/train_bf16/summary.json" "$SCRATCH/train2.log" <<'PYEOF' || fail "all-gather bytes"
import json, re, sys
def gathered(p):
    return json.load(open(p))["ranks"][0]["bytes_sent"]["all_gather"]
q, b = gathered(sys.argv[1]), gathered(sys.argv[2])
m = re.search(r"frozen weights ([0-9.]+) MiB \(([0-9.]+) MiB as loaded\)", open(sys.argv[3]).read())
print(f"all-gather bytes sent per rank, 4 steps: nf4 nested {q}, bf16 {b}: {q / b:.3f}x "
      f"(adapters included); frozen weights {m.group(1)} MiB 4-bit vs {m.group(2)} MiB bf16: "
      f"{float(m.group(1)) / float(m.group(2)):.3f}x")
if not q < 0.5 * b:
    sys.exit("the 4-bit all-gather is not smaller than half of bf16's")
PYEOF
echo PASS
