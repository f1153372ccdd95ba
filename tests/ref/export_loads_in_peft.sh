#!/bin/sh
# Proves: the adapter `shardtune export` writes from a checkpoint (2 ranks
# trained it, 3 export it) loads with PeftModel.from_pretrained on
# transformers' model without any warning (no missing or unexpected keys),
# and its eval loss there equals `shardtune eval --adapter` to 1e-5.
. "$top_srcdir/tests/lib.sh"
need_reference_python

"$PY" "$top_srcdir/tests/ref/make_tiny_llama.py" "$SCRATCH/tiny" > /dev/null 2>&1 || fail "make_tiny_llama"
export OMP_NUM_THREADS=1
"$MPIRUN" -np 2 "$SHARDTUNE" train --model_name_or_path "$SCRATCH/tiny/model" --dataset_name "$SCRATCH/tiny/data.jsonl" \
    --max_seq_len 32 --output_dir "$SCRATCH/run" --per_device_train_batch_size 2 --learning_rate 1e-2 \
    --max_steps 4 --save_steps 4 --logging_steps 1 --lora_r 4 --lora_alpha 8 --lora_dropout 0 \
    --lora_target_modules all-linear > "$SCRATCH/train.log" 2>&1 || { cat "$SCRATCH/train.log"; fail "train"; }
"$MPIRUN" -np 3 "$SHARDTUNE" export "$SCRATCH/run/checkpoint-4.h5" --out "$SCRATCH/exported" > /dev/null || fail "export"
"$SHARDTUNE" eval --model_name_or_path "$SCRATCH/tiny/model" --adapter "$SCRATCH/exported" \
    --dataset_name "$SCRATCH/tiny/data.jsonl" --max_seq_len 32 --json > "$SCRATCH/eval.json" || fail "eval"
"$PY" - "$SCRATCH" <<'PY'
import json, sys, warnings
import torch
from peft import PeftModel
from transformers import LlamaForCausalLM
d = sys.argv[1]
base = LlamaForCausalLM.from_pretrained(f"{d}/tiny/model", torch_dtype=torch.float32)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    model = PeftModel.from_pretrained(base, f"{d}/exported").eval()
bad = [str(w.message) for w in caught if "key" in str(w.message).lower()]
assert not bad, f"PEFT warned: {bad}"
total, count = 0.0, 0
for line in open(f"{d}/tiny/data.jsonl"):
    row = json.loads(line)
    ids = torch.tensor([row["input_ids"][:32]])
    labels = torch.tensor([row.get("labels", row["input_ids"])[:32]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1]
    target = labels[0, 1:]
    keep = target != -100
    total += torch.nn.functional.cross_entropy(logits[keep], target[keep], reduction="sum").item()
    count += int(keep.sum())
ref = total / count
ours = json.load(open(f"{d}/eval.json"))["eval_loss"]
rel = abs(ours - ref) / abs(ref)
print(f"eval loss: PEFT {ref:.8f}, shardtune {ours:.8f}, rel {rel:.2e}")
assert rel <= 1e-5
PY
echo PASS
