#!/bin/sh
# Proves, for a chat fine-tune (chatml tokens added, vocabulary resized):
#  - the new embedding rows are the mean of the old ones (as transformers'
#    resize_token_embeddings initialises them), and the adapter carries the
#    resized embedding layers under PEFT's keys;
#  - PeftModel.from_pretrained on transformers' model, resized to the
#    adapter's vocabulary, gives the logits shardtune gives for the same
#    tokens (with the saved embeddings and LoRA weights);
#  - the eval_loss logged by --eval_strategy equals `shardtune eval` of the
#    final adapter on the test split (after the last step).
. "$top_srcdir/tests/lib.sh"
need_reference_python

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" > /dev/null
mkdir -p "$SCRATCH/chat"
head -n 6 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/train.jsonl"
tail -n 2 "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" > "$SCRATCH/chat/test.jsonl"
data="--dataset_name $SCRATCH/chat --chat_template_format chatml --packing True --dataset_text_field content \
    --max_seq_len 128"
"$SHARDTUNE" train --model_name_or_path "$SCRATCH/model" $data --output_dir "$SCRATCH/lora" \
    --per_device_train_batch_size 4 --learning_rate 1e-2 --max_steps 6 --logging_steps 1 \
    --eval_strategy steps --eval_steps 3 --lora_r 4 --lora_alpha 8 --lora_dropout 0 \
    --lora_target_modules all-linear > "$SCRATCH/train.log" 2>&1 || { cat "$SCRATCH/train.log" >&2; fail "train"; }
"$SHARDTUNE" eval --model_name_or_path "$SCRATCH/model" --adapter "$SCRATCH/lora" $data --splits test \
    --json > "$SCRATCH/eval.json" || fail "eval"
# a few token rows of the chat data, through our model, for the logits
printf '{"input_ids": [1, 515, 516, 300, 13, 400, 514, 13, 517, 290, 291]}\n' > "$SCRATCH/ids.jsonl"
"$MODEL_DUMP" --model "$SCRATCH/model" --adapter "$SCRATCH/lora" --data "$SCRATCH/ids.jsonl" --rows 1 \
    --max_seq_len 32 --out "$SCRATCH/ours.safetensors" || fail "model_dump"

"$PY" - "$SCRATCH" <<'PY'
import json, sys, torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
d = sys.argv[1]
saved = load_file(f"{d}/lora/adapter_model.safetensors")
emb = saved["base_model.model.model.embed_tokens.weight"]
base = LlamaForCausalLM.from_pretrained(f"{d}/model", torch_dtype=torch.float32)
old = base.get_input_embeddings().weight.detach()
assert emb.shape[0] == 520 and emb.shape[0] % 8 == 0, emb.shape  # 512 + 5 chatml tokens -> 520
assert torch.equal(emb[:512], old), "the old rows changed"
mean = old.mean(0)
err = ((emb[512:] - mean).abs().max() / mean.abs().max()).item()
print(f"new rows vs mean of old rows: max rel {err:.2e}")
assert err < 1e-6, "new embedding rows are not the mean"
base.resize_token_embeddings(emb.shape[0])
model = PeftModel.from_pretrained(base, f"{d}/lora").eval()
assert torch.equal(model.get_input_embeddings().weight.detach(), emb), "PEFT did not load the saved embeddings"
ids = torch.tensor([[1, 515, 516, 300, 13, 400, 514, 13, 517, 290, 291]])
with torch.no_grad():
    ref = model(input_ids=ids).logits[0]
ours = load_file(f"{d}/ours.safetensors")["logits"][0, : ids.shape[1]]
rel = ((ours - ref).norm() / ref.norm()).item()
print(f"logits, shardtune vs PeftModel.from_pretrained: rel {rel:.2e}")
assert rel <= 1e-5
m = [json.loads(l) for l in open(f"{d}/lora/metrics.jsonl")]
evals = [x for x in m if "eval_loss" in x]
assert [x["step"] for x in evals] == [3, 6], evals
final = json.load(open(f"{d}/eval.json"))["eval_loss"]
assert abs(evals[-1]["eval_loss"] - final) <= 1e-6 * abs(final), (evals[-1], final)
print(f"eval_loss at the last step {evals[-1]['eval_loss']:.6f} = shardtune eval {final:.6f}")
PY
echo PASS
