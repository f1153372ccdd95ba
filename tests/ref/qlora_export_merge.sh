#!/bin/sh
# Proves, for QLoRA and QDoRA runs (nf4 nested), against transformers + peft +
# bitsandbytes 0.50.2 on the CPU (tests/ref/qlora_common.py):
#  1. the adapter a 2-rank 4-bit run saves (LoRA on q, v, down; DoRA on all), and the one `shardtune export`
#     (3 ranks) writes from its HDF5 checkpoint, load with
#     PeftModel.from_pretrained on the 4-bit base (BitsAndBytesConfig, same
#     quant type and nesting, compute float32) without any warning about keys,
#     and PEFT's eval loss there equals `shardtune eval` with the same 4-bit
#     flags to rel 1e-5;
#  2. `shardtune merge` with the 4-bit flags (2 ranks, several files; 1 rank
#     for DoRA and for fp4 plain) writes every linear weight as what PEFT's
#     Linear4bit.merge computes before quantizing again (dequantize_bnb_weight +
#     get_delta_weight, DoRA's merge_safe), rounded to the file's bf16: at most
#     one bf16 ulp from that fp32 sum and in all but 0.1 % of the values its
#     rounding; a linear weight without an adapter as its dequantized 4-bit
#     weight (rounded); every other tensor is the base file's; and transformers' eval
#     loss of the merged directory equals `shardtune eval` on it to rel 1e-5.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/qlora_lib.sh"
D="$SCRATCH/q"
NF4N="--bnb_4bit_quant_type nf4 --use_nested_quant True"

"$PY" "$REF/qdora_reference.py" make "$D" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "qdora_reference.py make"; }

# eval_loss FILE: eval_loss of the JSON line `shardtune eval --json` prints last
eval_loss() {
    tail -n 1 "$1" | "$PY" -c 'import json, sys; print(repr(json.load(sys.stdin)["eval_loss"]))'
}

# 1. adapters of 4-bit runs, saved and exported; eval
for kind in lora dora; do
    dora=False targets=q_proj,v_proj,down_proj
    [ $kind = dora ] && dora=True targets=all-linear
    # shellcheck disable=SC2086
    FSDP_SHARDING_STRATEGY=FULL_SHARD timeout 300 "$MPIRUN" -np 2 "$SHARDTUNE" train \
        --model_name_or_path "$D/model" --dataset_name "$D/data.jsonl" --output_dir "$SCRATCH/$kind" \
        --max_seq_len 32 --per_device_train_batch_size 2 --learning_rate 1e-2 --max_steps 4 --save_steps 4 \
        --logging_steps 1 --lora_r 4 --lora_alpha 8 --lora_dropout 0.1 --lora_target_modules $targets \
        --use_dora $dora $QFLAGS $NF4N >"$SCRATCH/$kind.train.log" 2>&1 \
        || { cat "$SCRATCH/$kind.train.log"; fail "train ($kind, 4-bit)"; }
    timeout 300 "$MPIRUN" -np 3 "$SHARDTUNE" export "$SCRATCH/$kind/checkpoint-4.h5" \
        --out "$SCRATCH/$kind.exported" >"$SCRATCH/$kind.export.log" 2>&1 \
        || { cat "$SCRATCH/$kind.export.log"; fail "export ($kind)"; }
done
grep -q '"use_dora": true' "$SCRATCH/dora.exported/adapter_config.json" || fail "the exported QDoRA adapter lacks use_dora"
: >"$SCRATCH/losses.txt"
for adapter in lora lora.exported dora dora.exported; do
    # shellcheck disable=SC2086
    "$SHARDTUNE" eval --model_name_or_path "$D/model" --adapter "$SCRATCH/$adapter" --dataset_name "$D/data.jsonl" \
        --max_seq_len 4096 --json $QFLAGS $NF4N >"$SCRATCH/$adapter.eval.json" 2>"$SCRATCH/$adapter.eval.log" \
        || { cat "$SCRATCH/$adapter.eval.log"; fail "eval $adapter (4-bit)"; }
    loss=$(eval_loss "$SCRATCH/$adapter.eval.json")
    echo "eval_4bit_$adapter $SCRATCH/$adapter $loss" >>"$SCRATCH/losses.txt"
done
"$PY" "$REF/qdora_reference.py" eval "$D/model" nf4 True "$D/data.jsonl" "$SCRATCH/losses.txt" \
    >"$SCRATCH/peft_eval.log" 2>&1 || { cat "$SCRATCH/peft_eval.log"; fail "4-bit eval losses differ from PEFT's"; }
grep '^eval_4bit' "$SCRATCH/peft_eval.log"

# 2. merge with the 4-bit flags
merge() { # merge NAME NP ADAPTER QUANT_TYPE NESTED [flags]
    name=$1 np=$2 adapter=$3 qt=$4 nested=$5
    shift 5
    # shellcheck disable=SC2086
    timeout 300 "$MPIRUN" -np "$np" "$SHARDTUNE" merge --model_name_or_path "$D/model" --adapter "$adapter" \
        --out "$SCRATCH/$name" $QFLAGS --bnb_4bit_quant_type "$qt" --use_nested_quant "$nested" "$@" \
        >"$SCRATCH/$name.log" 2>&1 || { cat "$SCRATCH/$name.log"; fail "merge $name"; }
    "$PY" "$REF/qdora_reference.py" merge "$D/model" "$qt" "$nested" "$adapter" "$SCRATCH/$name" \
        >"$SCRATCH/$name.check" 2>&1 || { cat "$SCRATCH/$name.check"; fail "merge $name differs from PEFT's"; }
    grep '^merge' "$SCRATCH/$name.check"
    "$SHARDTUNE" eval --model_name_or_path "$SCRATCH/$name" --dataset_name "$D/data.jsonl" --max_seq_len 4096 \
        --json >"$SCRATCH/$name.eval.json" 2>"$SCRATCH/$name.eval.log" || { cat "$SCRATCH/$name.eval.log"; fail "eval $name"; }
    loss=$(eval_loss "$SCRATCH/$name.eval.json")
    "$PY" "$REF/qdora_reference.py" loss "$SCRATCH/$name" "$D/data.jsonl" "$loss" >"$SCRATCH/$name.loss" 2>&1 \
        || { cat "$SCRATCH/$name.loss"; fail "the merged model's eval loss ($name)"; }
    grep '^merged' "$SCRATCH/$name.loss"
}
merge merged.lora 2 "$SCRATCH/lora" nf4 True --max_shard_size 200KB
[ -f "$SCRATCH/merged.lora/model.safetensors.index.json" ] || fail "no index for a sharded merge"
merge merged.dora 1 "$SCRATCH/dora" nf4 True
merge merged.fp4 1 "$D/adapter_dora" fp4 False
echo PASS
