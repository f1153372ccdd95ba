"""check_llama2c_logits.py: the forward pass of a llama2.c checkpoint, from the
checkpoint file alone, against shardtune's logits and against transformers
loading the converted directory.

The reference is written from llama2.c's legacy layout (run.c's forward), in
float64 numpy: RMSNorm eps 1e-5, RoPE on adjacent pairs (2i, 2i+1) with the
file's freq_cis tables, grouped-query attention, SwiGLU, tied or separate
classifier.  It never reads the converted files, so a wrong permutation or a
swapped tensor in the conversion shows up as a mismatch, not as agreement.

usage: check_llama2c_logits.py --checkpoint stories260K.bin --data rows.jsonl
           [--dump logits.safetensors] [--hf CONVERTED_DIR] [--tol 1e-4]
"""
import argparse
import json
import struct
import sys

import numpy as np


def load_llama2c(path):
    """The header and the tensors of a legacy llama2.c checkpoint."""
    with open(path, "rb") as f:
        raw = f.read()
    dim, hidden, n_layers, n_heads, n_kv, vocab, seq_len = struct.unpack("<7i", raw[:28])
    tied = vocab > 0
    vocab = abs(vocab)
    hd = dim // n_heads
    kv_dim = n_kv * hd
    data = np.frombuffer(raw, dtype="<f4", offset=28)
    shapes = [
        ("tok_emb", (vocab, dim)),
        ("rms_att", (n_layers, dim)),
        ("wq", (n_layers, dim, dim)),
        ("wk", (n_layers, kv_dim, dim)),
        ("wv", (n_layers, kv_dim, dim)),
        ("wo", (n_layers, dim, dim)),
        ("rms_ffn", (n_layers, dim)),
        ("w1", (n_layers, hidden, dim)),
        ("w2", (n_layers, dim, hidden)),
        ("w3", (n_layers, hidden, dim)),
        ("rms_final", (dim,)),
        ("freq_cis_real", (seq_len, hd // 2)),
        ("freq_cis_imag", (seq_len, hd // 2)),
    ]
    if not tied:
        shapes.append(("wcls", (vocab, dim)))
    w, off = {}, 0
    for name, shape in shapes:
        n = int(np.prod(shape))
        w[name] = data[off:off + n].reshape(shape).astype(np.float64)
        off += n
    assert off == data.size, f"{path}: {data.size - off} floats left over"
    if tied:
        w["wcls"] = w["tok_emb"]
    cfg = dict(dim=dim, hidden=hidden, n_layers=n_layers, n_heads=n_heads, n_kv=n_kv,
               vocab=vocab, seq_len=seq_len, hd=hd)
    return cfg, w


def rmsnorm(x, weight):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + 1e-5) * weight


def rope_pairs(x, cos, sin):
    """llama2.c's RoPE: (x[2i], x[2i+1]) rotated by angle i of the position."""
    t, h, hd = x.shape
    p = x.reshape(t, h, hd // 2, 2)
    c, s = cos[:, None, :], sin[:, None, :]
    out = np.empty_like(p)
    out[..., 0] = p[..., 0] * c - p[..., 1] * s
    out[..., 1] = p[..., 0] * s + p[..., 1] * c
    return out.reshape(t, h, hd)


def forward(cfg, w, tokens):
    """Logits [T, vocab] of one sequence, every position attending to itself and before."""
    t = len(tokens)
    nh, nkv, hd = cfg["n_heads"], cfg["n_kv"], cfg["hd"]
    cos, sin = w["freq_cis_real"][:t], w["freq_cis_imag"][:t]
    mask = np.triu(np.full((t, t), -np.inf), k=1)
    x = w["tok_emb"][tokens]
    for l in range(cfg["n_layers"]):
        xb = rmsnorm(x, w["rms_att"][l])
        q = rope_pairs((xb @ w["wq"][l].T).reshape(t, nh, hd), cos, sin)
        k = rope_pairs((xb @ w["wk"][l].T).reshape(t, nkv, hd), cos, sin)
        v = (xb @ w["wv"][l].T).reshape(t, nkv, hd)
        att = np.empty((t, nh, hd))
        for h in range(nh):
            g = h // (nh // nkv)  # the kv head this query head shares
            s = q[:, h] @ k[:, g].T / np.sqrt(hd) + mask
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            att[:, h] = (s / s.sum(axis=-1, keepdims=True)) @ v[:, g]
        x = x + att.reshape(t, nh * hd) @ w["wo"][l].T
        xb = rmsnorm(x, w["rms_ffn"][l])
        a = xb @ w["w1"][l].T
        x = x + ((a / (1 + np.exp(-a))) * (xb @ w["w3"][l].T)) @ w["w2"][l].T
    return rmsnorm(x, w["rms_final"]) @ w["wcls"].T


def rel_err(got, ref):
    return float(np.max(np.abs(got - ref)) / np.max(np.abs(ref)))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--dump", help="model_dump output: tensor logits [N, T, V]")
    ap.add_argument("--hf", help="converted Hugging Face directory")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()

    cfg, w = load_llama2c(args.checkpoint)
    with open(args.data) as f:
        rows = [json.loads(line)["input_ids"] for line in f if line.strip()]
    refs = [forward(cfg, w, r) for r in rows]
    ok = True

    if args.dump:
        from safetensors.numpy import load_file
        logits = load_file(args.dump)["logits"]
        n, t = len(rows), max(len(r) for r in rows)
        if logits.shape != (n, t, cfg["vocab"]):
            sys.exit(f"FAIL: {args.dump}: logits shape {logits.shape}, expected {(n, t, cfg['vocab'])}")
        # right padding never reaches the real positions of a causal model
        err = max(rel_err(logits[i, :len(r)].astype(np.float64), refs[i]) for i, r in enumerate(rows))
        print(f"shardtune vs numpy llama2.c forward: max|diff|/max|ref| = {err:.3e} (tol {args.tol:g})")
        ok &= err <= args.tol

    if args.hf:
        import torch
        from transformers import LlamaForCausalLM
        model = LlamaForCausalLM.from_pretrained(args.hf, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
        errs = []
        with torch.no_grad():
            for r, ref in zip(rows, refs):
                out = model(torch.tensor([r])).logits[0].double().numpy()
                errs.append(rel_err(out, ref))
        err = max(errs)
        print(f"transformers on the converted dir vs numpy: max|diff|/max|ref| = {err:.3e} (tol {args.tol:g})")
        ok &= err <= args.tol

    if not ok:
        sys.exit("FAIL: logits differ beyond the tolerance")


if __name__ == "__main__":
    main()
