#!/usr/bin/env python3
"""qlora_adapter_eval.py MODEL ADAPTER ROWS LOSS: does an adapter that a QLoRA
run of `shardtune train` saved load in PEFT on the 4-bit base, and give the
eval loss shardtune reported?

MODEL is the 16/32-bit directory the run quantized (nf4, nested absmax, as
--use_4bit_quantization True --use_nested_quant True); ADAPTER the run's output
(its adapter may carry resized embedding layers: the base is resized to their
rows first, as a user of a chat fine-tune does); ROWS the eval rows as
tests/data/data_dump writes them ({"ids", "labels"}, whole-block rows: no
document segments); LOSS the eval_loss shardtune reported on them (metrics.jsonl
or `shardtune eval --json`: summed cross-entropy of the shifted labels over
their number).  The base is transformers + bitsandbytes on the CPU as
tests/ref/qlora_common.py loads it (compute dtype float32: shardtune's CPU
computes in fp32).

Checks, exit 1 on a failure:
  * PEFT's LoRA modules are exactly the file's tensors (a config naming more
    modules than the file holds would load with B = 0 there);
  * PEFT's eval loss equals LOSS to relative 1e-5;
  * the adapter moved the loss below the 4-bit base's own (PEFT with the
    adapter disabled), i.e. the run trained.
"""
import json
import sys

from peft import PeftModel
from safetensors import safe_open

from peft_eval_losses import eval_loss
from qlora_common import load_qlora_base
from reference_common import lora_params

EMBED = "base_model.model.model.embed_tokens.weight"


def main():
    model_dir, adapter_dir, rows_path, ours = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    rows = []
    for line in open(rows_path):
        r = json.loads(line)
        if r.get("seg") is not None:
            sys.exit(f"qlora_adapter_eval: {rows_path}: a row with document segments (bfd packing) needs "
                     "per-document attention, which this plain forward does not do")
        rows.append((r["ids"], r["labels"] if r["labels"] is not None else r["ids"]))
    base = load_qlora_base(model_dir, "nf4", nested=True)
    with safe_open(f"{adapter_dir}/adapter_model.safetensors", "pt") as f:
        in_file = set(f.keys())
        if EMBED in in_file:
            base.resize_token_embeddings(f.get_slice(EMBED).get_shape()[0], mean_resizing=False)
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=False).eval()
    in_peft = {key for key, _ in lora_params(model)} | (in_file & {EMBED, "base_model.model.lm_head.weight"})
    if in_peft != in_file:
        sys.exit(f"qlora_adapter_eval: PEFT's LoRA modules are not the file's tensors: {sorted(in_peft ^ in_file)[:4]}")
    peft_loss = eval_loss(model, rows)
    with model.disable_adapter():
        base_loss = eval_loss(model, rows)
    rel = abs(ours - peft_loss) / abs(peft_loss)
    print(f"qlora_adapter_eval: {len(rows)} rows: shardtune eval_loss {ours:.8f}, "
          f"PEFT on the bitsandbytes nf4 base {peft_loss:.8f} (rel {rel:.1e}, allowed 1e-5); "
          f"the base without the adapter {base_loss:.8f}")
    ok = True
    if not rel <= 1e-5:
        print("FAIL: shardtune's eval loss differs from PEFT's on the 4-bit base")
        ok = False
    if not peft_loss < base_loss:
        print("FAIL: the trained adapter does not lower the base's eval loss")
        ok = False
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
