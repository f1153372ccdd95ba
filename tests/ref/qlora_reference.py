#!/usr/bin/env python3
"""qlora_reference.py make OUT_DIR
   qlora_reference.py grads QUANT_TYPE NESTED MODEL ADAPTER DATA ROWS T OUT.safetensors [QUANT_TYPE NESTED ...]

make: a tiny random Llama whose linear layers bitsandbytes can quantize on the
CPU (hidden 128, intermediate 256: in_features multiples of the blocksize 64),
saved in bfloat16 (OUT_DIR/model), a PEFT LoRA adapter r=4 on all seven
projections with A and B nonzero (OUT_DIR/adapter), and OUT_DIR/data.jsonl.

grads: the oracle of `model_dump --use_4bit_quantization True
--bnb_4bit_quant_type QUANT_TYPE --use_nested_quant NESTED`: the model loaded
by transformers with BitsAndBytesConfig (qlora_common.py), the adapter by
PeftModel.from_pretrained, fp32 compute; writes logits, loss, every LoRA
gradient and dx as tests/ref/reference_grads.py does.
"""
import os
import sys

import torch
from safetensors.torch import save_file

from make_tiny_llama import ALL_TARGETS, make_adapter, make_data
from qlora_common import load_qlora_peft_model
from reference_common import load_rows, lora_params, make_batch, pad_id_of


def make(out):
    from transformers import LlamaConfig, LlamaForCausalLM
    config = LlamaConfig(
        vocab_size=96, hidden_size=128, intermediate_size=256, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-5, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
        tie_word_embeddings=False, initializer_range=0.05, bos_token_id=1, eos_token_id=2,
    )
    torch.manual_seed(4321)
    model = LlamaForCausalLM(config).float()
    g = torch.Generator().manual_seed(98)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith("proj.weight"):
                p[:, ::37] *= 6  # outlier input features, as trained Llama weights have
    model = model.to(torch.bfloat16)
    model.save_pretrained(os.path.join(out, "model"), safe_serialization=True)
    make_adapter(model.float(), os.path.join(out, "adapter"), ALL_TARGETS, False, 21)
    make_data(os.path.join(out, "data.jsonl"))


def grads(quant_type, nested, model_dir, adapter_dir, data, nrows, T, out):
    nested, nrows, T = nested == "True", int(nrows), int(T)
    rows = load_rows(data)[:nrows]
    model = load_qlora_peft_model(model_dir, adapter_dir, quant_type, nested)
    params = lora_params(model)
    inp, lab = make_batch(rows, T, pad_id_of(model.config))
    embeds = model.get_input_embeddings()(inp).detach().requires_grad_(True)
    o = model(inputs_embeds=embeds, labels=lab, use_cache=False)
    o.loss.backward()
    tensors = {"logits": o.logits.detach().float().contiguous(), "loss": o.loss.detach().float().reshape(1)}
    for key, p in params:
        tensors[key] = p.grad.detach().float().contiguous()
    tensors["dx"] = embeds.grad.detach().float().contiguous()
    save_file(tensors, out, metadata={"format": "pt"})
    print(f"qlora_reference: {out}: {quant_type} nested={nested} loss={o.loss.item():.9g} "
          f"lora tensors={len(params)}")


def main(argv):
    if len(argv) == 3 and argv[1] == "make":
        make(argv[2])
    elif len(argv) >= 10 and argv[1] == "grads" and (len(argv) - 2) % 8 == 0:
        for k in range(2, len(argv), 8):
            grads(*argv[k:k + 8])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
