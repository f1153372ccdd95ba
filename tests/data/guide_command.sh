#!/bin/sh
# Proves: the PEFT guide's command line (examples/sft/run_peft_fsdp.sh, every
# flag as written, with its accelerate config jobs/configs/fsdp_config.yaml
# verbatim: 8 processes) runs: only the model, data and output paths are
# ours (the shipped stories260K and UltraChat sample).
. "$top_srcdir/tests/lib.sh"

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" > /dev/null
mkdir -p "$SCRATCH/chat"
head -n 12 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/train.jsonl"
tail -n 4 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/test.jsonl"
OMP_NUM_THREADS=1 timeout 600 "$MPIRUN" -np 8 "$SHARDTUNE" train --config_file "$top_srcdir/jobs/configs/fsdp_config.yaml" \
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
--per_device_train_batch_size 8 \
--per_device_eval_batch_size 8 \
--gradient_accumulation_steps 4 \
--gradient_checkpointing True \
--use_reentrant False \
--dataset_text_field "content" \
--use_flash_attn True \
--use_peft_lora True \
--lora_r 8 \
--lora_alpha 16 \
--lora_dropout 0.1 \
--lora_target_modules "all-linear" \
--use_4bit_quantization False > "$SCRATCH/log" 2>&1 || { cat "$SCRATCH/log"; fail "the guide's command failed"; }
grep -q "8 rank(s) = 1 node(s) x 8, FSDP FULL_SHARD" "$SCRATCH/log" || fail "not 8 FULL_SHARD ranks"
grep -q "eval_loss" "$SCRATCH/out/metrics.jsonl" || fail "no evaluation at the epoch's end"
[ -f "$SCRATCH/out/checkpoint-1.h5" ] && [ -f "$SCRATCH/out/adapter_model.safetensors" ] || fail "no checkpoint or adapter"
grep "^note" "$SCRATCH/log" | sort -u
echo PASS
