#!/bin/sh
# Proves QDoRA (--use_dora with --use_4bit_quantization, or a use_dora
# adapter on a 4-bit run) computes what peft 0.21 computes on a base that
# bitsandbytes 0.50.2 quantized on the CPU (tests/ref/qlora_common.py), where
# DoRA's row norm is that of the dequantized weight + s B A:
#  1. one forward + backward (model_dump) with a PEFT DoRA adapter (A, B
#     nonzero, m not a row norm): logits, loss, dx and the gradients of every
#     A, B and magnitude to rel 1e-5 of qlora_reference.py, nf4 nested and fp4
#     plain; 2 ranks FULL_SHARD (both loading paths) equal 1 rank bit for bit;
#  2. 4 AdamW steps of `shardtune train` from that adapter with dropout 0.1 and
#     weight decay (nf4 nested), 1 and 2 ranks: losses, grad norms and the saved
#     A, B, m to rel 1e-5 of reference_train.py on the 4-bit base;
#  3. a fresh adapter (no --adapter; learning rate 0): B is 0 and m is PEFT's
#     initial magnitude on the 4-bit base (the row norms of the dequantized
#     weights, get_peft_model(use_dora=True)) to 1e-6, on 1 rank and on 2 ranks
#     FULL_SHARD (m computed on gathered 4-bit units).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/qlora_lib.sh"
D="$SCRATCH/q"
ROWS=4 T=32

"$PY" "$REF/qdora_reference.py" make "$D" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "qdora_reference.py make"; }
grep -q '"use_dora": true' "$D/adapter_dora/adapter_config.json" || fail "no DoRA adapter was written"
status=0

# 1. one micro-batch
dump() { # dump NAME NP QUANT_TYPE NESTED [env...]
    name=$1 np=$2 qt=$3 nested=$4
    shift 4
    # shellcheck disable=SC2086
    env FSDP_SHARDING_STRATEGY=FULL_SHARD "$@" timeout 300 "$MPIRUN" -np "$np" "$MODEL_DUMP" --model "$D/model" \
        --adapter "$D/adapter_dora" --data "$D/data.jsonl" --rows $ROWS --max_seq_len $T $QFLAGS \
        --bnb_4bit_quant_type "$qt" --use_nested_quant "$nested" --out "$SCRATCH/$name.safetensors" \
        >"$SCRATCH/$name.log" 2>&1 || { cat "$SCRATCH/$name.log"; fail "model_dump $name"; }
}
dump nf4.np1 1 nf4 True
dump nf4.np2 2 nf4 True FSDP_CPU_RAM_EFFICIENT_LOADING=False
dump nf4.np2.efficient 2 nf4 True FSDP_CPU_RAM_EFFICIENT_LOADING=True
dump fp4.np1 1 fp4 False
"$PY" "$REF/qlora_reference.py" grads \
    nf4 True "$D/model" "$D/adapter_dora" "$D/data.jsonl" $ROWS $T "$SCRATCH/nf4.ref.safetensors" \
    fp4 False "$D/model" "$D/adapter_dora" "$D/data.jsonl" $ROWS $T "$SCRATCH/fp4.ref.safetensors" \
    >"$SCRATCH/ref.log" 2>&1 || { cat "$SCRATCH/ref.log"; fail "qlora_reference.py grads"; }
grep '^qlora_' "$SCRATCH/ref.log"
[ "$(grep -c 'lora tensors=42' "$SCRATCH/ref.log")" = 2 ] || fail "the reference did not see A, B and m of 14 layers"
for qt in nf4 fp4; do
    echo "== $qt: 1 rank against bitsandbytes + peft (DoRA)"
    "$PY" "$REF/compare_tensors.py" "$SCRATCH/$qt.np1.safetensors" "$SCRATCH/$qt.ref.safetensors" --rtol 1e-5 \
        >"$SCRATCH/$qt.cmp" || { cat "$SCRATCH/$qt.cmp"; status=1; }
    tail -n 1 "$SCRATCH/$qt.cmp"
done
for run in nf4.np2 nf4.np2.efficient; do
    echo "== $run: 2 ranks FULL_SHARD against 1 rank"
    "$PY" "$REF/compare_tensors.py" "$SCRATCH/$run.safetensors" "$SCRATCH/nf4.np1.safetensors" --rtol 0 \
        >"$SCRATCH/$run.cmp" || { cat "$SCRATCH/$run.cmp"; status=1; }
    tail -n 1 "$SCRATCH/$run.cmp"
done
[ $status = 0 ] || fail "QDoRA model_dump differs"

# 2. training from the PEFT DoRA adapter, dropout 0.1
cp -r "$D/adapter_dora" "$D/adapter_dora_d10"
sed "s/\"lora_dropout\": *0\.0/\"lora_dropout\": 0.1/" "$D/adapter_dora/adapter_config.json" \
    >"$D/adapter_dora_d10/adapter_config.json"
grep -q '"lora_dropout": 0.1' "$D/adapter_dora_d10/adapter_config.json" || fail "lora_dropout not set to 0.1"
TFLAGS="--max_seq_len 32 --per_device_train_batch_size 2 --learning_rate 1e-2 --lr_scheduler_type linear
 --warmup_steps 1 --max_grad_norm 1.0 --weight_decay 0.01 --max_steps 4 --seed 42 --logging_steps 1
 --bnb_4bit_quant_type nf4 --use_nested_quant True"
train() { # train NAME NP [flags]
    name=$1 np=$2
    shift 2
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=FULL_SHARD timeout 300 "$MPIRUN" -np "$np" "$SHARDTUNE" train \
        --model_name_or_path "$D/model" --dataset_name "$D/data.jsonl" --output_dir "$SCRATCH/$name" \
        $TFLAGS $QFLAGS --save_strategy no "$@" >"$SCRATCH/$name.log" 2>&1 \
        || { cat "$SCRATCH/$name.log"; fail "shardtune train $name"; }
}
train train1 1 --adapter "$D/adapter_dora_d10" --gradient_accumulation_steps 2
train train2 2 --adapter "$D/adapter_dora_d10" --gradient_accumulation_steps 1
# shellcheck disable=SC2086
"$PY" "$REF/reference_train.py" --model_name_or_path "$D/model" --adapter "$D/adapter_dora_d10" \
    --dataset_name "$D/data.jsonl" --output_dir "$SCRATCH/train.ref" $TFLAGS $QFLAGS --gradient_accumulation_steps 2 \
    >"$SCRATCH/train.ref.log" 2>&1 || { cat "$SCRATCH/train.ref.log"; fail "reference_train.py (QDoRA)"; }
for np in 1 2; do
    echo "== train, $np rank(s), QDoRA nf4 nested: metrics and adapter against reference_train.py"
    check_run "$SCRATCH/train$np" "$SCRATCH/train.ref" "$D/model" || status=1
done
grep -q '"use_dora": true' "$SCRATCH/train1/adapter_config.json" || fail "the saved adapter_config.json lacks use_dora"
[ $status = 0 ] || fail "QDoRA training differs from the torch reference"

# 3. a fresh adapter: PEFT's initial magnitude on the 4-bit base
FRESH="--use_dora True --lora_r 4 --lora_alpha 8 --lora_dropout 0 --lora_target_modules all-linear
 --learning_rate 0 --max_steps 1"
# shellcheck disable=SC2086
train fresh1 1 $FRESH
# shellcheck disable=SC2086
train fresh2 2 $FRESH
"$PY" "$REF/qdora_reference.py" init "$D/model" nf4 True 4 8 "$SCRATCH/fresh1" "$SCRATCH/fresh2" \
    >"$SCRATCH/init.log" 2>&1 || { cat "$SCRATCH/init.log"; fail "a fresh QDoRA adapter is not PEFT's initialisation"; }
grep '^init' "$SCRATCH/init.log"
echo PASS
