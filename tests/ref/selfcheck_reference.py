#!/usr/bin/env python3
"""selfcheck_reference.py DIR...: checks the oracle against itself.

Each DIR is what make_tiny_llama.py (or tiny_model.sh) wrote.  Re-implements the Llama forward pass
with LoRA from the spelled-out formulas (float64, plain torch autograd, no
transformers or peft) and checks, for both adapters, that

  1. transformers + peft (reference_grads' path) agree with it on logits,
     loss and every LoRA gradient (float32 vs float64: rel 1e-5);
  2. its float64 gradient agrees with central finite differences on a few
     entries (this checks the autograd graph, not just two codes agreeing).

The formulas here are the ones the C side implements; read them as the spec.
"""
import json
import math
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from reference_common import IGNORE, load_peft_model, load_rows, make_batch, pad_id_of, lora_params  # noqa: E402


def rope_inv_freq(cfg):
    """inv_freq as transformers 5 computes it (float32), default or llama3."""
    rp = cfg.get("rope_parameters") or dict(cfg.get("rope_scaling") or {}, rope_theta=cfg.get("rope_theta", 10000.0))
    theta = rp.get("rope_theta", cfg.get("rope_theta", 10000.0))
    hd = cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"]
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2, dtype=torch.float32) / hd))
    if rp.get("rope_type", rp.get("type", "default")) == "llama3":
        factor, lo, hi = rp["factor"], rp["low_freq_factor"], rp["high_freq_factor"]
        old = rp["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        wl = 2 * math.pi / inv
        scaled = torch.where(wl > lo_wl, inv / factor, inv)
        smooth = (old / wl - lo) / (hi - lo)
        smoothed = (1 - smooth) * scaled / factor + smooth * scaled
        medium = ~(wl < hi_wl) & ~(wl > lo_wl)
        inv = torch.where(medium, smoothed, scaled)
    return inv


def forward(W, lora, acfg, cfg, inp, lab):
    """Plain Llama + LoRA in float64.  Returns (logits, loss)."""
    H, nh, nkv = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim") or H // nh
    eps = cfg["rms_norm_eps"]
    r, alpha = acfg["r"], acfg["lora_alpha"]
    scale = alpha / math.sqrt(r) if acfg.get("use_rslora") else alpha / r
    N, L = inp.shape

    def rms(x, w):
        return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps))

    def lin(x, name):
        y = x @ W[name + ".weight"].T
        key = "base_model.model." + name
        if key + ".lora_A.weight" in lora:
            y = y + scale * ((x @ lora[key + ".lora_A.weight"].T) @ lora[key + ".lora_B.weight"].T)
        return y

    # RoPE angles in float32 as transformers does, then used in float64
    inv = rope_inv_freq(cfg)
    ang = torch.arange(L, dtype=torch.float32)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], -1)
    cos, sin = ang.cos().double(), ang.sin().double()

    def rot(x):  # x [N, h, L, hd]; rotate halves
        x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
        return x * cos + torch.cat([-x2, x1], -1) * sin

    causal = torch.full((L, L), float("-inf"), dtype=torch.float64).triu(1)
    x = W["model.embed_tokens.weight"][inp]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        h = rms(x, W[p + "input_layernorm.weight"])
        q = lin(h, p + "self_attn.q_proj").view(N, L, nh, hd).transpose(1, 2)
        k = lin(h, p + "self_attn.k_proj").view(N, L, nkv, hd).transpose(1, 2)
        v = lin(h, p + "self_attn.v_proj").view(N, L, nkv, hd).transpose(1, 2)
        q, k = rot(q), rot(k)
        k = k.repeat_interleave(nh // nkv, dim=1)  # query head j uses kv head j // (nh/nkv)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd) + causal, -1)
        o = (att @ v).transpose(1, 2).reshape(N, L, nh * hd)
        x = x + lin(o, p + "self_attn.o_proj")
        h = rms(x, W[p + "post_attention_layernorm.weight"])
        g = lin(h, p + "mlp.gate_proj")
        u = lin(h, p + "mlp.up_proj")
        x = x + lin(torch.nn.functional.silu(g) * u, p + "mlp.down_proj")
    x = rms(x, W["model.norm.weight"])
    head = W.get("lm_head.weight", W["model.embed_tokens.weight"])
    logits = x @ head.T
    tgt = lab[:, 1:].reshape(-1)
    nll = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), tgt,
                                            ignore_index=IGNORE, reduction="sum")
    return logits, nll / (tgt != IGNORE).sum()


def check(d, adapter, nrows=4, T=32):
    with open(os.path.join(d, "model", "config.json")) as f:
        cfg = json.load(f)
    with open(os.path.join(d, adapter, "adapter_config.json")) as f:
        acfg = json.load(f)
    W = {k: v.double() for k, v in load_file(os.path.join(d, "model", "model.safetensors")).items()}
    lora = {k: v.double().requires_grad_(True)
            for k, v in load_file(os.path.join(d, adapter, "adapter_model.safetensors")).items()}
    pad = cfg["pad_token_id"] if cfg.get("pad_token_id") is not None else 0
    inp, lab = make_batch(load_rows(os.path.join(d, "data.jsonl"))[:nrows], T, pad)

    logits, loss = forward(W, lora, acfg, cfg, inp, lab)
    grads = torch.autograd.grad(loss, list(lora.values()))
    mine = dict(zip(lora.keys(), grads))

    model = load_peft_model(os.path.join(d, "model"), os.path.join(d, adapter))
    assert pad_id_of(model.config) == pad
    out = model(input_ids=inp, labels=lab, use_cache=False)
    out.loss.backward()
    theirs = dict(lora_params(model))
    assert sorted(theirs) == sorted(lora), "PEFT grad keys != saved adapter keys"

    def rel(a, b):
        return ((a.double() - b).norm() / b.norm()).item()

    errs = {"logits": rel(out.logits.detach(), logits.detach()),
            "loss": abs(out.loss.item() - loss.item()) / loss.item()}
    for k in lora:
        errs[k] = rel(theirs[k].grad, mine[k])
    worst = max(errs, key=errs.get)
    print(f"{d}/{adapter}: loss {loss.item():.12g}; worst rel err peft(f32) vs float64 "
          f"formulas: {errs[worst]:.2e} ({worst})")
    ok = all(e <= 1e-5 for e in errs.values())

    # central differences on a few entries of the first A and the last B
    keys = sorted(lora)
    for key in (keys[0], keys[-1]):
        t = lora[key]
        for idx in [(0, 0), (t.shape[0] - 1, t.shape[1] - 1)]:
            h = 1e-5
            with torch.no_grad():
                t[idx] += h
                lp = forward(W, lora, acfg, cfg, inp, lab)[1].item()
                t[idx] -= 2 * h
                lm = forward(W, lora, acfg, cfg, inp, lab)[1].item()
                t[idx] += h
            fd = (lp - lm) / (2 * h)
            an = mine[key][idx].item()
            e = abs(fd - an) / max(abs(an), 1e-4)  # fd's own error is ~1e-10
            print(f"   finite difference {key.split('model.model.')[-1]}{list(idx)}: "
                  f"autograd {an:.9g} fd {fd:.9g} rel {e:.1e}")
            ok = ok and e < 1e-5
    return ok


def main():
    ok = True
    for d in sys.argv[1:]:
        for adapter in ("adapter", "adapter_rslora"):
            if os.path.isdir(os.path.join(d, adapter)):
                ok = check(d, adapter) and ok
    print("selfcheck:", "ok" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
