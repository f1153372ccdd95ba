#!/usr/bin/env python3
"""make_bench_model.py: the random ~20M-parameter Llama and the token dataset
that bench/cpu_lora_step.sh trains on.

    python bench/make_bench_model.py OUT_DIR [--rows 256] [--seq 256] [--seed 0]

writes OUT_DIR/model/ (config.json + model.safetensors, float32, as
LlamaForCausalLM.save_pretrained writes them) and OUT_DIR/data.jsonl (one
{"input_ids": [...]} per line, every row exactly --seq tokens).  Both are
fully determined by --seed.  No tokenizer: the benchmark feeds token ids.

Model: hidden 384, 8 layers, 6 query heads / 2 KV heads (head_dim 64, GQA 3:1),
MLP 1024, vocab 10000, untied lm_head: 20,269,440 parameters
(LoRA r=8 on all seven linear layers adds 434,176 trainable ones).
"""
import argparse
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

CONFIG = dict(
    vocab_size=10000,
    hidden_size=384,
    intermediate_size=1024,
    num_hidden_layers=8,
    num_attention_heads=6,
    num_key_value_heads=2,
    head_dim=64,
    max_position_embeddings=1024,
    rms_norm_eps=1e-5,
    rope_theta=10000.0,
    tie_word_embeddings=False,
    attention_bias=False,
    mlp_bias=False,
    hidden_act="silu",
    bos_token_id=1,
    eos_token_id=2,
    pad_token_id=0,
    initializer_range=0.02,
)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--rows", type=int, default=256, help="dataset rows (default 256 = 64 micro-batches of 4)")
    ap.add_argument("--seq", type=int, default=256, help="tokens per row (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    torch.manual_seed(a.seed)
    cfg = LlamaConfig(**CONFIG)
    model = LlamaForCausalLM(cfg).to(torch.float32)
    n_params = sum(p.numel() for p in model.parameters())
    model_dir = os.path.join(a.out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    model.save_pretrained(model_dir, safe_serialization=True)

    g = torch.Generator().manual_seed(a.seed + 1)
    # ids 3.. so that no row contains pad/bos/eos
    ids = torch.randint(3, cfg.vocab_size, (a.rows, a.seq), generator=g)
    tmp = os.path.join(a.out_dir, "data.jsonl.tmp")
    with open(tmp, "w") as f:
        for row in ids.tolist():
            f.write(json.dumps({"input_ids": row}) + "\n")
    os.replace(tmp, os.path.join(a.out_dir, "data.jsonl"))

    info = dict(CONFIG, n_parameters=n_params, rows=a.rows, seq=a.seq, seed=a.seed)
    with open(os.path.join(a.out_dir, "bench_model.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"make_bench_model: {model_dir}: {n_params:,} parameters; "
          f"{a.out_dir}/data.jsonl: {a.rows} rows x {a.seq} tokens", file=sys.stderr)


if __name__ == "__main__":
    main()
