#!/bin/sh
# Proves: the PEFT guide's QLoRA command line (examples/sft/run_peft_qlora_fsdp.sh,
# every flag as written, with its accelerate config jobs/configs/fsdp_config_qlora.yaml
# verbatim: 2 processes, FULL_SHARD, offload_params) runs: only the model, data
# and output paths are ours (the shipped stories260K and UltraChat sample, as
# tests/data/guide_command.sh does for the LoRA command).  The run
# - prints the 4-bit line (nf4 with nested absmax) and logs finite losses;
# - evaluates at the epoch's end and saves a checkpoint and an adapter;
# - that adapter loads with PeftModel.from_pretrained on the base that
#   transformers + bitsandbytes quantize (nf4 nested, compute float32, as
#   shardtune's CPU computes) and gives the eval_loss the run logged on the
#   packed test split to 1e-5, lower than the 4-bit base's own loss there
#   (tests/ref/qlora_adapter_eval.py): the run trained, and its output is
#   what a PEFT user gets.
# The command's --bf16 True computes in bf16 on a CPU with AVX512-BF16; the
# eval is held to PEFT's fp32 one at 1e-5 here, so the run takes the fp32
# path (SHARDTUNE_CPU_BF16=0, as on CPUs without bf16).  bf16 itself is held
# to transformers' bf16 autocast by tests/cpu_bf16/train_matches_autocast.sh.
. "$top_srcdir/tests/lib.sh"
need_reference_python
"$PY" -c 'import bitsandbytes' 2>/dev/null || skip_unless_required "no bitsandbytes in $PY"
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
DATA_DUMP="$top_builddir/tests/data/data_dump"

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" > /dev/null
mkdir -p "$SCRATCH/chat"
head -n 12 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/train.jsonl"
tail -n 4 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/test.jsonl"
export SHARDTUNE_CPU_BF16=0
OMP_NUM_THREADS=1 timeout 600 "$MPIRUN" -np 2 "$SHARDTUNE" train --config_file "$top_srcdir/jobs/configs/fsdp_config_qlora.yaml" \
--seed 100 \
--model_name_or_path "$SCRATCH/model" \
--dataset_name "$SCRATCH/chat" \
--chat_template_format "chatml" \
--add_special_tokens False \
--append_concat_token False \
--splits "train,test" \
--max_length 2048 \
--num_train_epochs 1 \
--logging_steps 5 \
--log_level "info" \
--logging_strategy "steps" \
--eval_strategy "epoch" \
--save_strategy "epoch" \
--push_to_hub \
--hub_private_repo True \
--hub_strategy "every_save" \
--bf16 True \
--packing True \
--learning_rate 1e-4 \
--lr_scheduler_type "cosine" \
--weight_decay 1e-4 \
--warmup_ratio 0.0 \
--max_grad_norm 1.0 \
--output_dir "$SCRATCH/out" \
--per_device_train_batch_size 2 \
--per_device_eval_batch_size 2 \
--gradient_accumulation_steps 2 \
--gradient_checkpointing True \
--use_reentrant True \
--dataset_text_field "content" \
--use_flash_attn True \
--use_peft_lora True \
--lora_r 8 \
--lora_alpha 16 \
--lora_dropout 0.1 \
--lora_target_modules "all-linear" \
--use_4bit_quantization True \
--use_nested_quant True \
--bnb_4bit_compute_dtype "bfloat16" \
--bnb_4bit_quant_storage_dtype "bfloat16" > "$SCRATCH/log" 2>&1 || { cat "$SCRATCH/log"; fail "the guide's QLoRA command failed"; }
grep -q "2 rank(s) = 1 node(s) x 2, FSDP FULL_SHARD.*offload_params on" "$SCRATCH/log" || fail "not 2 FULL_SHARD ranks with offload"
grep "^4-bit: linear weights as nf4 with nested absmax, blocks of 64" "$SCRATCH/log" || fail "no 4-bit line"
[ -f "$SCRATCH/out/checkpoint-3.h5" ] && [ -f "$SCRATCH/out/adapter_model.safetensors" ] || fail "no checkpoint or adapter"
"$PY" - "$SCRATCH/out/metrics.jsonl" > "$SCRATCH/metrics.txt" <<'PY' || { cat "$SCRATCH/metrics.txt"; fail "metrics"; }
import json, math, sys
m = [json.loads(l) for l in open(sys.argv[1])]
train, ev = [r for r in m if "loss" in r], [r for r in m if "eval_loss" in r]
assert train and all(math.isfinite(r["loss"]) and math.isfinite(r["grad_norm"]) for r in train), train
assert len(ev) == 1 and ev[0]["epoch"] == 1 and math.isfinite(ev[0]["eval_loss"]), ev
print(ev[0]["eval_loss"])
PY
# the packed test split as the run evaluated it (wrapped blocks, no segments)
"$DATA_DUMP" --tokenizer "$SCRATCH/out/tokenizer.json" --split 1 --out "$SCRATCH/test_rows.jsonl" \
    --dataset_name "$SCRATCH/chat" --splits "train,test" --chat_template_format chatml --add_special_tokens False \
    --append_concat_token False --dataset_text_field content --max_length 2048 --packing True || fail "data_dump"
"$PY" "$top_srcdir/tests/ref/qlora_adapter_eval.py" "$SCRATCH/model" "$SCRATCH/out" "$SCRATCH/test_rows.jsonl" \
    "$(cat "$SCRATCH/metrics.txt")" > "$SCRATCH/peft.log" 2>&1 || { cat "$SCRATCH/peft.log"; fail "the adapter in PEFT on the 4-bit base"; }
grep -E "^(qlora_common|qlora_adapter_eval):" "$SCRATCH/peft.log"
grep "^note" "$SCRATCH/log" | sort -u
echo PASS
