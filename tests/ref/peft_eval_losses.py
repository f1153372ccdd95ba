#!/usr/bin/env python3
"""peft_eval_losses.py MODEL_DIR DATA RESULTS: shardtune's eval losses against PEFT's.

RESULTS holds lines "WHAT ADAPTER_DIR LOSS": a loss shardtune reported (`shardtune eval
--json`) for a run that should equal PEFT's eval loss of ADAPTER_DIR, the adapter as
PeftModel.from_pretrained loads it onto MODEL_DIR (fp32, eval mode): the summed
cross-entropy of the shifted labels (-100 ignored) over DATA's rows divided by their
number, which is what `shardtune eval` reports.  Prints each pair and exits 1 unless
every relative difference is at most 1e-5.  Each adapter's LoRA modules in PEFT must be
exactly its file's tensors: a config naming more modules than the file holds would load
with B = 0 there and hide in the loss.
"""
import sys

import torch
from safetensors import safe_open

from reference_common import load_peft_model, lora_params, load_rows, make_batch, n_targets, pad_id_of


def peft_loss(model_dir, adapter_dir, rows):
    model = load_peft_model(model_dir, adapter_dir, trainable=False)
    with safe_open(f"{adapter_dir}/adapter_model.safetensors", "pt") as f:
        in_file = set(f.keys())
    in_peft = {key for key, _ in lora_params(model)}
    if in_peft != in_file:
        raise SystemExit(f"{adapter_dir}: PEFT's LoRA modules are not the file's tensors: "
                         f"{sorted(in_peft ^ in_file)[:4]} ...")
    return eval_loss(model, rows)


def eval_loss(model, rows):
    """What `shardtune eval` reports for rows [(ids, labels)] (at most 4096 tokens each)."""
    inp, lab = make_batch(rows, 4096, pad_id_of(model.config))
    with torch.no_grad():
        logits = model(input_ids=inp).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                             lab[:, 1:].reshape(-1), ignore_index=-100, reduction="sum")
    return loss.item() / n_targets(lab)


def main():
    model_dir, data, results = sys.argv[1:4]
    rows = load_rows(data)
    cache, ok = {}, True
    for line in open(results):
        what, adapter, ours = line.split()
        if adapter not in cache:
            cache[adapter] = peft_loss(model_dir, adapter, rows)
        ref = cache[adapter]
        rel = abs(float(ours) - ref) / abs(ref)
        ok &= rel <= 1e-5
        print(f"{what:36s} shardtune {float(ours):.8f}  peft {ref:.8f}  rel {rel:.1e}{'' if rel <= 1e-5 else '  FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
