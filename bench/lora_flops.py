#!/usr/bin/env python3
"""lora_flops.py: model FLOPs per token of a LoRA training step, and a measured
matmul peak, for the MFU that bench/gpu_lora_step.sh prints.

    python bench/lora_flops.py flops MODEL_DIR --seq S [--lora_r 8]
    python bench/lora_flops.py gemm-peak [--device cuda|cpu] [--dtype bfloat16|float32] [--n 8192]

Each prints one line of JSON.  hf_lora_train.py imports model_flops() from here,
so the count below is the one both tools' MFU use.

Model FLOPs per token (a multiply-add is 2 FLOPs), for a Llama with LoRA on all
seven linear layers of every decoder layer (q, k, v, o, gate, up, down; peft's
"all-linear"), frozen base weights, trained on full rows of S tokens:

  P_linear = L*(h*(nh*hd) + 2*h*(nkv*hd) + (nh*hd)*h + 3*h*I) + h*V
             (every frozen matmul weight, lm_head included; the embedding is a
             lookup, 0 FLOPs)
  P_lora   = r * sum over the adapted layers of (d_in + d_out)   (A: d_in x r, B: r x d_out)

  frozen linear layers   4 * P_linear    forward 2*P_linear + backward of the
                                          inputs 2*P_linear; no weight gradient
                                          for a frozen weight (full fine-tuning
                                          would be the usual 6*N)
  LoRA adapters          6 * P_lora      forward, input gradient and weight
                                          gradient, as for any trained weight
  attention scores       6 * L * S * d_attn   with d_attn = nh*hd: forward
                                          Q.K^T and P.V are 2*S*d_attn each per
                                          token over S keys, halved because the
                                          mask is causal (a causal kernel skips
                                          the upper triangle): 2*L*S*d_attn;
                                          backward (dQ, dK, dV, dP) twice that.

  model_flops_per_token = 4*P_linear + 6*P_lora + 6*L*S*d_attn

This is "model FLOPs" as PaLM (Chowdhery et al. 2022, appendix B) defines them
for MFU: the FLOPs the step needs, without the forward that gradient
checkpointing recomputes (that is in "hardware FLOPs"/HFU; reported here as
recompute_flops_per_token = 2*(P_linear - h*V) + 2*P_lora + 2*L*S*d_attn, the
decoder layers' forward, for reference only).  Two differences from PaLM's
6*N + 12*L*H*Q*T: frozen weights have no weight gradient (4 instead of 6 per
parameter), and the attention term is halved for the causal mask (PaLM counts
the full T; model_flops_per_token_palm_attn gives that variant: the same count
with 12*L*S*d_attn).  Norms, RoPE, SiLU, softmax, the loss and the optimizer
are not counted (under 1% for these shapes).  GQA does not change the
attention term: every query head still scores all S keys.

MFU = model_flops_per_token * tokens_per_second / peak FLOP/s.  gemm-peak
measures the peak as the best of a few timed runs of a square torch matmul
(bf16 8192^3 on cuda by default): an achievable peak, below the datasheet's.
"""
import argparse
import json
import os
import sys
import time

LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def shapes(cfg):
    """(d_in, d_out) of each of the seven linear layers of one decoder layer."""
    h = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or h // nh
    inter = cfg["intermediate_size"]
    return {
        "q_proj": (h, nh * hd), "k_proj": (h, nkv * hd), "v_proj": (h, nkv * hd), "o_proj": (nh * hd, h),
        "gate_proj": (h, inter), "up_proj": (h, inter), "down_proj": (inter, h),
    }


def model_flops(cfg, seq, lora_r, targets=LORA_TARGETS):
    """The count in the module docstring, as a dict; cfg is config.json as a dict."""
    L = cfg["num_hidden_layers"]
    h = cfg["hidden_size"]
    V = cfg["vocab_size"]
    nh = cfg["num_attention_heads"]
    d_attn = nh * (cfg.get("head_dim") or h // nh)
    sh = shapes(cfg)
    p_layers = L * sum(i * o for i, o in sh.values())
    p_linear = p_layers + h * V
    p_lora = L * lora_r * sum(i + o for name, (i, o) in sh.items() if name in targets)
    attn_fwd = 2 * L * seq * d_attn  # causal: half of 4*L*S*d_attn
    flops = 4 * p_linear + 6 * p_lora + 3 * attn_fwd
    return {
        "model_flops_per_token": flops,
        "model_flops_per_token_palm_attn": 4 * p_linear + 6 * p_lora + 6 * attn_fwd,
        "recompute_flops_per_token": 2 * p_layers + 2 * p_lora + attn_fwd,
        "p_linear": p_linear,
        "p_lora": p_lora,
        "seq": seq,
        "lora_r": lora_r,
    }


def load_config(model_dir):
    with open(os.path.join(model_dir, "config.json")) as f:
        return json.load(f)


def gemm_peak(device, dtype_name, n, iters=20, repeats=5):
    import torch

    dtype = getattr(torch, dtype_name)
    g = torch.Generator(device=device).manual_seed(0)
    a = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    b = torch.randn(n, n, device=device, dtype=dtype, generator=g)
    c = torch.empty(n, n, device=device, dtype=dtype)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    for _ in range(3):
        torch.matmul(a, b, out=c)
    sync()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(iters):
            torch.matmul(a, b, out=c)
        sync()
        dt = time.perf_counter() - t0
        best = max(best, 2.0 * n ** 3 * iters / dt)
    name = torch.cuda.get_device_name() if device == "cuda" else f"cpu, {torch.get_num_threads()} threads"
    short = {"bfloat16": "bf16", "float32": "fp32", "float16": "fp16"}.get(dtype_name, dtype_name)
    return {"tflops": best / 1e12, "what": f"torch {short} matmul peak ({n}x{n}x{n}, {name})",
            "device": device, "dtype": dtype_name, "n": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("flops", help="model FLOPs per token of a LoRA step (JSON)")
    f.add_argument("model_dir")
    f.add_argument("--seq", type=int, required=True)
    f.add_argument("--lora_r", type=int, default=8)
    p = sub.add_parser("gemm-peak", help="best measured matmul FLOP/s (JSON, in TFLOP/s)")
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--dtype", choices=("bfloat16", "float32", "float16"), default=None,
                   help="default: bfloat16 on cuda, float32 on cpu")
    p.add_argument("--n", type=int, default=None, help="matrix size (default: 8192 on cuda, 2048 on cpu)")
    p.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    a = ap.parse_args()
    if a.cmd == "flops":
        print(json.dumps(model_flops(load_config(a.model_dir), a.seq, a.lora_r)))
    else:
        import torch

        if a.threads > 0:
            torch.set_num_threads(a.threads)
        if a.device == "cuda" and not torch.cuda.is_available():
            sys.exit("lora_flops: gemm-peak: no CUDA device")
        dtype = a.dtype or ("bfloat16" if a.device == "cuda" else "float32")
        n = a.n or (8192 if a.device == "cuda" else 2048)
        print(json.dumps(gemm_peak(a.device, dtype, n)))


if __name__ == "__main__":
    main()
