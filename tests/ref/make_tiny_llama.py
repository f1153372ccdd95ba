#!/usr/bin/env python3
"""make_tiny_llama.py OUT_DIR [--tied] [--rope llama3] [--pad-token-id N] | --all OUT_DIR

Writes a tiny random Llama and LoRA adapters for the reference tests:

  OUT_DIR/model/           LlamaForCausalLM.save_pretrained (config.json, model.safetensors)
  OUT_DIR/adapter/         PEFT LoRA r=4, alpha=8, all seven projections
  OUT_DIR/adapter_rslora/  PEFT LoRA r=4, alpha=8, use_rslora, q_proj/v_proj/down_proj only
  OUT_DIR/adapter_dora/    PEFT DoRA (use_dora) r=4, alpha=8, all seven projections
  OUT_DIR/data.jsonl       12 rows of input_ids (lengths 5..40), some with explicit labels (-100s)

--all writes three such directories in one process (imports cost seconds):
OUT_DIR/plain (the defaults), OUT_DIR/llama3 (--rope llama3) and OUT_DIR/tied
(--tied --pad-token-id 3).

Everything is seeded, so two calls write the same files.  Both LoRA matrices are
nonzero (PEFT's default B = 0 would hide every bug in the B path and in the
gradient of A); DoRA's magnitude is PEFT's initial ||W||_row times a random
factor near 1, so it differs from ||W + s B A||_row (a DoRA scale g = 1 would
hide a wrong g).  With --rope llama3 the config is written the way the Llama 3.x
checkpoints on the Hub spell it (top-level rope_theta + rope_scaling), with
original_max_position_embeddings 16 so the scaling changes short positions too;
otherwise transformers 5 writes its own form (rope_parameters).
"""
import argparse
import json
import os
import random

import torch
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

ALL_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
LLAMA3_SCALING = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                  "high_freq_factor": 4.0, "original_max_position_embeddings": 16}


def make_model(args):
    rope = {"rope_type": "default", "rope_theta": 10000.0}
    if args.rope == "llama3":
        rope = dict(LLAMA3_SCALING, rope_theta=10000.0)
    config = LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=96, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        rms_norm_eps=1e-5, rope_parameters=rope, tie_word_embeddings=args.tied,
        initializer_range=0.1, pad_token_id=args.pad_token_id, bos_token_id=1, eos_token_id=2,
        torch_dtype="float32",
    )
    torch.manual_seed(1234)
    model = LlamaForCausalLM(config).float()
    # Norm weights are 1 after init; random ones make a wrong norm visible.
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
    return model


def legacy_rope_config(path):
    """Rewrite config.json as Hub Llama 3.x configs are: rope_theta + rope_scaling."""
    with open(path) as f:
        cfg = json.load(f)
    rp = cfg.pop("rope_parameters")
    cfg["rope_theta"] = rp.pop("rope_theta")
    cfg["rope_scaling"] = rp
    with open(path, "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def make_adapter(model, out, targets, use_rslora, seed, use_dora=False, magnitude_noise=0.1):
    cfg = LoraConfig(r=4, lora_alpha=8, target_modules=targets, lora_dropout=0.0,
                     bias="none", task_type="CAUSAL_LM", use_rslora=use_rslora,
                     init_lora_weights=True, use_dora=use_dora)
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_A" in name or "lora_B" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif "lora_magnitude_vector" in name:
                p.mul_(1.0 + magnitude_noise * torch.randn(p.shape, generator=g))
    pm.save_pretrained(out)
    return pm.unload()  # the plain base model again, for the next adapter


def make_data(path, vocab=96, n=12):
    rng = random.Random(7)
    lengths = [5, 40, 17, 9, 33, 12, 28, 6, 21, 38, 14, 25][:n]
    with open(path, "w") as f:
        for i, L in enumerate(lengths):
            ids = [1] + [rng.randrange(3, vocab) for _ in range(L - 1)]
            row = {"input_ids": ids}
            if i % 3 == 1:
                # a "prompt" whose tokens are not trained on, and a masked hole
                labels = list(ids)
                cut = max(1, L // 3)
                for k in range(cut):
                    labels[k] = -100
                if L > 10:
                    labels[L - 3] = -100
                row["labels"] = labels
            f.write(json.dumps(row) + "\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--tied", action="store_true", help="lm_head shares the embedding")
    ap.add_argument("--rope", choices=["default", "llama3"], default="default")
    ap.add_argument("--pad-token-id", type=int, default=None)
    ap.add_argument("--all", action="store_true", help="plain, llama3 and tied under OUT_DIR")
    args = ap.parse_args()
    if args.all:
        for sub, extra in [("plain", []), ("llama3", ["--rope", "llama3"]),
                           ("tied", ["--tied", "--pad-token-id", "3"])]:
            write(ap.parse_args([os.path.join(args.out_dir, sub)] + extra))
    else:
        write(args)


def write(args):
    os.makedirs(args.out_dir, exist_ok=True)
    model = make_model(args)
    mdir = os.path.join(args.out_dir, "model")
    model.save_pretrained(mdir, safe_serialization=True)
    if args.rope == "llama3":
        legacy_rope_config(os.path.join(mdir, "config.json"))

    model = make_adapter(model, os.path.join(args.out_dir, "adapter"), ALL_TARGETS, False, 11)
    model = make_adapter(model, os.path.join(args.out_dir, "adapter_rslora"),
                         ["q_proj", "v_proj", "down_proj"], True, 12)
    make_adapter(model, os.path.join(args.out_dir, "adapter_dora"), ALL_TARGETS, False, 13, use_dora=True)
    make_data(os.path.join(args.out_dir, "data.jsonl"))


if __name__ == "__main__":
    main()
