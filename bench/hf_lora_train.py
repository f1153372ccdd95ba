#!/usr/bin/env python3
"""hf_lora_train.py: the peer of `shardtune train` for bench/cpu_lora_step.sh:
what a user would otherwise run on a CPU, transformers LlamaForCausalLM
(attn_implementation="sdpa", float32) + peft LoRA + torch.optim.AdamW.

    python bench/hf_lora_train.py --model M --data D.jsonl --steps N [--warmup 2]
        [--batch 4] [--seq 256] [--lora_r 8] [--lora_alpha 16] [--threads T]
        [--gradient_checkpointing] [--json]

A plain loop (forward, backward, clip to 1.0, AdamW step, zero_grad) over
micro-batches taken in order from the dataset, with the same settings as the
shardtune command in cpu_lora_step.sh (lr 1e-4 constant, weight decay 0,
betas 0.9/0.999, eps 1e-8, max_grad_norm 1.0).  It is deliberately not the
transformers Trainer: the Trainer adds data-loader, callback and logging
overhead per step, so a manual loop is the fairer (faster) baseline for HF.

Each step is timed on its own (time.perf_counter around the whole step);
tokens/s is the median of batch*seq/step_time over the steps after --warmup.
Prints one line of JSON on stdout (tool, tokens_per_second, per-step list,
peak RSS from resource.getrusage) when --json, else a human line.
"""
import argparse
import json
import resource
import statistics
import sys
import time

import torch


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--steps", type=int, default=12, help="timed steps after the warm-up")
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--lora_r", type=int, default=8)
    ap.add_argument("--lora_alpha", type=float, default=16)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0, help="torch.set_num_threads (0: leave as is)")
    ap.add_argument("--gradient_checkpointing", action="store_true")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    if a.threads > 0:
        torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)

    from peft import LoraConfig, get_peft_model
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(a.model, dtype=torch.float32, attn_implementation="sdpa")
    model.config.use_cache = False
    if a.gradient_checkpointing:
        # what TrainingArguments(gradient_checkpointing=True) does for a PEFT model
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    lcfg = LoraConfig(r=a.lora_r, lora_alpha=a.lora_alpha, lora_dropout=0.0, bias="none",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                      task_type="CAUSAL_LM")
    model = get_peft_model(model, lcfg)
    model.train()
    params = [p for p in model.parameters() if p.requires_grad]
    n_trainable = sum(p.numel() for p in params)
    opt = torch.optim.AdamW(params, lr=a.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)

    rows = []
    with open(a.data) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line)["input_ids"][: a.seq])
    ids = torch.tensor(rows, dtype=torch.long)
    n_batches = ids.shape[0] // a.batch
    if n_batches < 1:
        sys.exit(f"hf_lora_train: {a.data}: fewer than {a.batch} rows")

    step_times, losses = [], []
    for step in range(a.warmup + a.steps):
        k = step % n_batches
        x = ids[k * a.batch:(k + 1) * a.batch]
        t0 = time.perf_counter()
        out = model(input_ids=x, labels=x)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss = out.loss.item()
        dt = time.perf_counter() - t0
        step_times.append(dt)
        losses.append(loss)

    tokens = a.batch * ids.shape[1]
    timed = step_times[a.warmup:]
    tps = [tokens / t for t in timed]
    peak_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    res = {
        "tool": "hf",
        "tokens_per_second": statistics.median(tps),
        "tokens_per_second_steps": [round(v, 1) for v in tps],
        "loss_first": losses[0],
        "loss_last": losses[-1],
        "trainable_parameters": n_trainable,
        "threads": torch.get_num_threads(),
        "peak_rss_kib": peak_rss_kib,
        "torch": torch.__version__,
    }
    if a.json:
        print(json.dumps(res))
    else:
        print(f"hf: {res['tokens_per_second']:.0f} tok/s (median of {len(timed)} steps), "
              f"loss {losses[0]:.4f} -> {losses[-1]:.4f}, {n_trainable} trainable, "
              f"{res['threads']} threads, peak RSS {peak_rss_kib / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
