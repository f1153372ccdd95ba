#!/usr/bin/env python3
"""reference_grads.py [--dropout-seed S] MODEL ADAPTER DATA ROWS T OUT.safetensors [MODEL ADAPTER ... OUT ...]

The oracle for tests/model_dump: the first ROWS rows of DATA, truncated to T
and right-padded (reference_common.make_batch), through transformers'
LlamaForCausalLM (eager attention, fp32) with the PEFT adapter loaded by
PeftModel.from_pretrained.  Writes

  logits  [N, L, V] F32
  loss    [1]       F32  the model's own loss (HF shift, mean over labels != -100)
  <key>             the gradient of loss for each LoRA tensor, under the key
                    it has in adapter_model.safetensors
  dx        [N, L, D] F32  the gradient of loss by the embedding output (the
                    inputs_embeds given to the model): every layer's dx, the
                    adapters' share included

--dropout-seed S: LoRA dropout on, at each adapter's lora_dropout, with the
masks shardtune draws for the first micro-batch of a run with --seed S
(reference_common.install_shardtune_dropout): the oracle of
`model_dump --dropout True --seed S`.  Without it the model is in eval mode
(no dropout).

ADAPTER may be "-" for none (then only logits and loss are written).  More
groups of six arguments run more cases in the same process (importing
transformers and peft costs seconds).
"""
import sys

import torch
from safetensors.torch import save_file

from reference_common import (adapter_dropout, install_shardtune_dropout, load_peft_model, load_rows,
                              lora_params, make_batch, micro_batch_key, pad_id_of)


def main(argv):
    dropout_seed = None
    if len(argv) > 2 and argv[1] == "--dropout-seed":
        dropout_seed = int(argv[2])
        argv = argv[:1] + argv[3:]
    if len(argv) < 7 or (len(argv) - 1) % 6:
        sys.exit(__doc__)
    for k in range(1, len(argv), 6):
        one(*argv[k:k + 6], dropout_seed=dropout_seed)


def one(model_dir, adapter_dir, data, nrows, T, out, dropout_seed=None):
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
        p_drop = adapter_dropout(adapter_dir)
        if dropout_seed is not None and p_drop > 0:
            state = install_shardtune_dropout(model, p_drop)
            state["key"] = micro_batch_key(dropout_seed, 0, 0)

    inp, lab = make_batch(rows, T, pad_id_of(model.config))
    embeds = model.get_input_embeddings()(inp).detach().requires_grad_(bool(params))
    out_ = model(inputs_embeds=embeds, labels=lab, use_cache=False)
    if params:
        out_.loss.backward()

    tensors = {"logits": out_.logits.detach().float().contiguous(),
               "loss": out_.loss.detach().float().reshape(1)}
    for key, p in params:
        tensors[key] = p.grad.detach().float().contiguous()
    if params:
        tensors["dx"] = embeds.grad.detach().float().contiguous()
    save_file(tensors, out, metadata={"format": "pt"})
    print(f"reference_grads: {out}: N={inp.shape[0]} L={inp.shape[1]} loss={out_.loss.item():.9g} "
          f"lora tensors={len(params)}")


if __name__ == "__main__":
    main(sys.argv)
