#!/usr/bin/env python3
"""make_bench_model.py: the random Llamas and the token datasets that
bench/cpu_lora_step.sh (the ~20M default) and bench/gpu_lora_step.sh (--preset
1b, or --preset tiny to try it on a CPU) train on.

    python bench/make_bench_model.py OUT_DIR [--preset default|tiny|1b]
        [--rows 256] [--seq 256] [--seed 0]

writes OUT_DIR/model/ (config.json + model.safetensors), OUT_DIR/data.jsonl
(one {"input_ids": [...]} per line, every row exactly --seq tokens),
OUT_DIR/adapter/ (the initial LoRA adapter, below) and OUT_DIR/bench_model.json
(the config, n_parameters, preset, rows, seq, seed, lora).  All fully
determined by --preset and --seed.  No tokenizer: the benchmarks feed token ids.

OUT_DIR/adapter/: a PEFT LoRA adapter (r 8, alpha 16, dropout 0, all seven
linear layers; peft's save_pretrained), the one both tools of a benchmark
start from (shardtune --adapter, hf_lora_train.py --adapter), so that their
first-step losses can be compared.  B is not zero (PEFT's default would make
the first loss blind to A and B alike): A ~ N(0, 1/in_features), B ~
N(0, 0.02^2), float32, from one generator seeded with --seed + 2, in module
order.  The adapter then moves each projection's output by roughly 0.1 per
unit-RMS input (base: 0.02 * sqrt(in_features)), enough that a different
initialisation shows in the first loss.  Built on a meta-device model, so even
the 1b preset costs only the adapter's memory.

--preset default: hidden 384, 8 layers, 6 query heads / 2 KV heads (head_dim
64, GQA 3:1), MLP 1024, vocab 10000, untied lm_head: 20,269,440 parameters
(LoRA r=8 on all seven linear layers adds 434,176 trainable ones); float32,
written by LlamaForCausalLM(config).save_pretrained (transformers' own init).

--preset 1b: TinyLlama-1.1B's shapes: hidden 2048, 22 layers, 32 query heads /
4 KV heads (head_dim 64), MLP 5632, vocab 32000, untied lm_head, 4096
positions, RoPE theta 10000: 1,100,048,384 parameters (LoRA r=8 all-linear:
6,307,840); bfloat16.  --preset tiny: the same code path at toy size (hidden
128, 2 layers, 4/2 heads, MLP 352, vocab 1000; 625,280 parameters), for testing.
These two are written without building the model: every matmul and embedding
weight is torch.randn from one seeded generator, times 0.02 (the config's
initializer_range), cast to bfloat16; the RMSNorm weights are 1; tensor names
and shapes come from LlamaForCausalLM built on the meta device, and the file
from safetensors.torch.save_file, as save_pretrained names it.  About 2.2 GB
and some seconds per 1e9 parameters of randn for 1b (fp32 scratch of the
largest tensor only).
"""
import argparse
import json
import os
import sys

import torch
from transformers import LlamaConfig, LlamaForCausalLM

# --preset default (bench/cpu_lora_step.sh): fp32 via save_pretrained
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

# --preset 1b (bench/gpu_lora_step.sh): TinyLlama-1.1B's shapes, random bf16
CONFIG_1B = dict(
    CONFIG,
    vocab_size=32000,
    hidden_size=2048,
    intermediate_size=5632,
    num_hidden_layers=22,
    num_attention_heads=32,
    num_key_value_heads=4,
    head_dim=64,
    max_position_embeddings=4096,
)

# --preset tiny: the 1b code path at toy size, to try gpu_lora_step.sh on a CPU
CONFIG_TINY = dict(
    CONFIG,
    vocab_size=1000,
    hidden_size=128,
    intermediate_size=352,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=32,
    max_position_embeddings=1024,
)

PRESETS = {"default": (CONFIG, "float32"), "tiny": (CONFIG_TINY, "bfloat16"), "1b": (CONFIG_1B, "bfloat16")}

# the benchmarks' LoRA (cpu_lora_step.sh, gpu_lora_step.sh: r=8 alpha=16 all-linear, dropout 0)
LORA = dict(r=8, lora_alpha=16, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"])


def write_random_bf16(cfg, model_dir, seed):
    """Random weights straight into model.safetensors (see the docstring):
    no model in memory, no per-module init.  Returns the parameter count."""
    from safetensors.torch import save_file

    with torch.device("meta"):
        meta = LlamaForCausalLM(cfg)
    g = torch.Generator().manual_seed(seed)
    std = cfg.initializer_range
    tensors = {}
    for name, p in meta.state_dict().items():
        if name.endswith("norm.weight"):
            tensors[name] = torch.ones(p.shape, dtype=torch.bfloat16)
        else:
            tensors[name] = torch.randn(p.shape, generator=g, dtype=torch.float32).mul_(std).to(torch.bfloat16)
    save_file(tensors, os.path.join(model_dir, "model.safetensors"), metadata={"format": "pt"})
    cfg.save_pretrained(model_dir)
    return sum(t.numel() for t in tensors.values())


def write_init_adapter(cfg, adapter_dir, seed):
    """The initial adapter (see the docstring) with peft's own save_pretrained."""
    from peft import LoraConfig, get_peft_model

    with torch.device("meta"):
        meta = LlamaForCausalLM(cfg)
    pm = get_peft_model(meta, LoraConfig(**LORA))
    g = torch.Generator().manual_seed(seed)
    n = 0
    for _, mod in pm.named_modules():
        if hasattr(mod, "lora_A") and "default" in mod.lora_A:
            a, b = mod.lora_A["default"], mod.lora_B["default"]
            r, d_in = a.weight.shape
            a.weight = torch.nn.Parameter(torch.randn(r, d_in, generator=g) / d_in ** 0.5)
            b.weight = torch.nn.Parameter(torch.randn(b.weight.shape, generator=g) * 0.02)
            n += 1
    if n != cfg.num_hidden_layers * len(LORA["target_modules"]):
        sys.exit(f"make_bench_model: {n} LoRA layers, not {cfg.num_hidden_layers} x 7")
    pm.save_pretrained(adapter_dir)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--preset", choices=sorted(PRESETS), default="default",
                    help="model shapes (default: the ~20M fp32 model of cpu_lora_step.sh)")
    ap.add_argument("--rows", type=int, default=256, help="dataset rows (default 256 = 64 micro-batches of 4)")
    ap.add_argument("--seq", type=int, default=256, help="tokens per row (default 256)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()

    config, dtype = PRESETS[a.preset]
    if a.seq > config["max_position_embeddings"]:
        sys.exit(f"make_bench_model: --seq {a.seq} > max_position_embeddings {config['max_position_embeddings']}")
    torch.manual_seed(a.seed)
    model_dir = os.path.join(a.out_dir, "model")
    os.makedirs(model_dir, exist_ok=True)
    if a.preset == "default":
        cfg = LlamaConfig(**config)
        model = LlamaForCausalLM(cfg).to(torch.float32)
        n_params = sum(p.numel() for p in model.parameters())
        model.save_pretrained(model_dir, safe_serialization=True)
    else:
        cfg = LlamaConfig(**config, dtype=dtype)
        n_params = write_random_bf16(cfg, model_dir, a.seed)

    g = torch.Generator().manual_seed(a.seed + 1)
    # ids 3.. so that no row contains pad/bos/eos
    ids = torch.randint(3, cfg.vocab_size, (a.rows, a.seq), generator=g)
    tmp = os.path.join(a.out_dir, "data.jsonl.tmp")
    with open(tmp, "w") as f:
        for row in ids.tolist():
            f.write(json.dumps({"input_ids": row}) + "\n")
    os.replace(tmp, os.path.join(a.out_dir, "data.jsonl"))
    write_init_adapter(cfg, os.path.join(a.out_dir, "adapter"), a.seed + 2)

    info = dict(config, n_parameters=n_params, rows=a.rows, seq=a.seq, seed=a.seed, preset=a.preset, dtype=dtype,
                lora=LORA)
    with open(os.path.join(a.out_dir, "bench_model.json"), "w") as f:
        json.dump(info, f, indent=1)
    print(f"make_bench_model: {model_dir}: {n_params:,} parameters ({a.preset}, {dtype}); "
          f"{a.out_dir}/data.jsonl: {a.rows} rows x {a.seq} tokens; {a.out_dir}/adapter: the initial LoRA",
          file=sys.stderr)


if __name__ == "__main__":
    main()
