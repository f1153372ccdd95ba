"""qlora_common.py: the 4-bit (QLoRA) base model as transformers + bitsandbytes
load it on the CPU, for the QLoRA reference tests (tests/ref/qlora_matches_bnb.sh).

load_qlora_peft_model(MODEL, ADAPTER, quant_type, nested) loads MODEL (a bf16 or
f32 directory) with BitsAndBytesConfig(load_in_4bit=True, ..., compute dtype
float32, quant storage bfloat16), then the PEFT adapter, fp32 everywhere else.

Two facts about bitsandbytes 0.50.2 on the CPU (issue 10) that this respects:
  * on CPUs with AVX512-BF16 a Linear4bit forward under no_grad in eval mode
    repacks its weight for good and rounds absmax to bf16, so
    support_avx512bf16_for_cpu is set False on every Linear4bit before any
    forward;
  * its CPU nested quantization picks the 8-bit absmax codes with an
    approximate lookup (0.1-0.3 % of them one step from the nearest, which
    its CUDA kernel and shardtune pick) and takes torch's fp32 mean as the
    offset (a few ulps from shardtune's double-summed mean; doc/design.md).
    With nested=True the nested state of every Linear4bit is therefore
    replaced by the exact-nearest one, computed here in NumPy from the
    file's weights by the rules of doc/design.md (independently of
    src/quant4.c); the 4-bit codes stay bitsandbytes' own, and dequantizing
    and the matrix products are bitsandbytes' own.  How many nested codes
    bitsandbytes' CPU lookup picked differently is printed.
"""
import os

import numpy as np
import torch

TINY = np.float32(1e-38)


def _np_nest(absmax):
    """doc/design.md, nested: offset = mean in double, block order, one fp32
    rounding; groups of 256 with nested_absmax = max |.|; codes = the nearest
    value of the signed dynamic map, a midpoint going to the lower one."""
    import bitsandbytes.functional as F
    dyn = F.create_dynamic_map(signed=True).float().numpy().astype(np.float32)
    n = absmax.size
    offset = np.float32(np.add.accumulate(absmax.astype(np.float64))[-1] / n)
    ng = -(-n // 256)
    v = np.zeros(ng * 256, np.float32)
    v[:n] = absmax - offset
    v = v.reshape(ng, 256)
    m = np.abs(v).max(axis=1).astype(np.float32)
    s = (v * (np.float32(1) / np.maximum(m, TINY))[:, None]).reshape(-1)[:n].astype(np.float32)
    mids = ((dyn[:-1] + dyn[1:]) / np.float32(2)).astype(np.float32)
    return offset, np.searchsorted(mids, s, side="left").astype(np.uint8), m


def _file_weights(model_dir):
    from safetensors.torch import load_file
    out = {}
    for f in sorted(os.listdir(model_dir)):
        if f.endswith(".safetensors"):
            out.update(load_file(os.path.join(model_dir, f)))
    return out


def exact_nested_state(base, model_dir):
    import bitsandbytes as bnb
    weights = _file_weights(model_dir)
    n_codes = n_diff = 0
    for name, mod in base.named_modules():
        if not isinstance(mod, bnb.nn.Linear4bit):
            continue
        qs = mod.weight.quant_state
        w = weights[name + ".weight"].float().reshape(-1).numpy()
        absmax = np.abs(w.reshape(-1, qs.blocksize)).max(axis=1).astype(np.float32)
        offset, codes, nested_absmax = _np_nest(absmax)
        n_codes += codes.size
        n_diff += int((qs.absmax.numpy() != codes).sum())
        qs.absmax = torch.from_numpy(codes)
        qs.offset = torch.tensor(offset, dtype=torch.float32)
        qs.state2.absmax = torch.from_numpy(nested_absmax)
    print(f"qlora_common: nested absmax codes: {n_diff} of {n_codes} differ between bitsandbytes' CPU "
          f"lookup and the exact nearest (used)")


def load_qlora_base(model_dir, quant_type="nf4", nested=False):
    """The 4-bit base as load_qlora_peft_model sees it, before any adapter
    (PEFT's DoRA computes its initial magnitude from these weights)."""
    import bitsandbytes as bnb
    from transformers import BitsAndBytesConfig, LlamaForCausalLM

    torch.use_deterministic_algorithms(True)
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                             bnb_4bit_use_double_quant=nested, bnb_4bit_compute_dtype=torch.float32,
                             bnb_4bit_quant_storage=torch.bfloat16)
    base = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager",
                                            quantization_config=cfg, device_map="cpu")
    n4 = 0
    for mod in base.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False
            n4 += 1
    if n4 != 7 * base.config.num_hidden_layers:
        raise SystemExit(f"qlora_common: {n4} Linear4bit modules, expected 7 per layer")
    if nested:
        exact_nested_state(base, model_dir)
    return base


def load_qlora_peft_model(model_dir, adapter_dir, quant_type="nf4", nested=False, trainable=True):
    from peft import PeftModel
    base = load_qlora_base(model_dir, quant_type, nested)
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=trainable)
    model.eval()
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
        if "lora_" in name and p.dtype != torch.float32:
            raise SystemExit(f"qlora_common: {name} is {p.dtype}, not float32")
    return model
