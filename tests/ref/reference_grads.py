#!/usr/bin/env python3
"""reference_grads.py MODEL ADAPTER DATA ROWS T OUT.safetensors [MODEL ADAPTER ... OUT ...]

The oracle for tests/model_dump: the first ROWS rows of DATA, truncated to T
and right-padded (reference_common.make_batch), through transformers'
LlamaForCausalLM (eager attention, fp32) with the PEFT adapter loaded by
PeftModel.from_pretrained.  Writes

  logits  [N, L, V] F32
  loss    [1]       F32  the model's own loss (HF shift, mean over labels != -100)
  <key>             the gradient of loss for each LoRA tensor, under the key
                    it has in adapter_model.safetensors

ADAPTER may be "-" for none (then only logits and loss are written).  More
groups of six arguments run more cases in the same process (importing
transformers and peft costs seconds).
"""
import sys

import torch
from safetensors.torch import save_file

from reference_common import load_peft_model, load_rows, make_batch, pad_id_of, lora_params


def main(argv):
    if len(argv) < 7 or (len(argv) - 1) % 6:
        sys.exit(__doc__)
    for k in range(1, len(argv), 6):
        one(*argv[k:k + 6])


def one(model_dir, adapter_dir, data, nrows, T, out):
    nrows, T = int(nrows), int(T)
    rows = load_rows(data)[:nrows]
    if len(rows) < nrows:
        sys.exit(f"{data}: only {len(rows)} rows")

    if adapter_dir == "-":
        from transformers import LlamaForCausalLM
        model = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
        params = []
    else:
        model = load_peft_model(model_dir, adapter_dir)
        params = lora_params(model)

    inp, lab = make_batch(rows, T, pad_id_of(model.config))
    out_ = model(input_ids=inp, labels=lab, use_cache=False)
    if params:
        out_.loss.backward()

    tensors = {"logits": out_.logits.detach().float().contiguous(),
               "loss": out_.loss.detach().float().reshape(1)}
    for key, p in params:
        tensors[key] = p.grad.detach().float().contiguous()
    save_file(tensors, out, metadata={"format": "pt"})
    print(f"reference_grads: {out}: N={inp.shape[0]} L={inp.shape[1]} loss={out_.loss.item():.9g} "
          f"lora tensors={len(params)}")


if __name__ == "__main__":
    main(sys.argv)
