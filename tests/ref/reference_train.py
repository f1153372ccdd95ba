#!/usr/bin/env python3
"""reference_train.py --model_name_or_path DIR --adapter DIR --dataset_name FILE.jsonl
                      --output_dir OUT [the training flags of shardtune train]

The oracle for `shardtune train` with LoRA: a plain torch loop over the PEFT
model (not the HF Trainer, whose data order we do not reproduce), following the
training spec of shardtune:

  data order   epoch e: Fisher-Yates over the n rows driven by splitmix64
               seeded with seed ^ ((e+1) * 0xD6E8FEB86659FD93)   (epoch_permutation)
  batches      micro-batch k = perm[k*B:(k+1)*B]; optimizer step s of the epoch
               uses micro-batches [s*G, (s+1)*G) (all of them if fewer than G);
               steps_per_epoch = max(1, n_batches // G); leftovers skipped
  loss         sum of token NLL over the step's micro-batches / number of
               non-ignored shifted targets over them (transformers'
               num_items_in_batch); its gradient is what the step uses
  clipping     torch.nn.utils.clip_grad_norm_ (grad_norm is the norm before)
  lr           transformers.get_scheduler; the lr logged is the one used
  optimizer    torch.optim.AdamW on every LoRA tensor (weight decay on all)
  dropout      the adapter's lora_dropout, with shardtune's masks: micro-batch
               k of the epoch in step g (from 0) draws under the key of
               reference_common.micro_batch_key(seed, g, k)

--use_4bit_quantization True (--bnb_4bit_quant_type nf4|fp4 --use_nested_quant
True|False, compute dtype float32 only): the base is loaded 4-bit by
transformers + bitsandbytes (qlora_common.load_qlora_peft_model), the QLoRA
oracle.

Writes OUT/metrics.jsonl (step, epoch, loss, learning_rate, grad_norm, plus
clip_coef and num_targets) and the final adapter in OUT (PEFT save_pretrained).
--runs FILE: one run per line of FILE (its flags, shell-quoted), all in one
process, because importing transformers and peft costs seconds.
--require_clipping: exit 1 unless clipping scaled the gradient on some step.
A grad_norm within 1e-4 (relative) of --max_grad_norm is an error: whether
that step is clipped would be decided by rounding.
"""
import argparse
import json
import math
import os
import sys

import torch
from transformers import get_scheduler

from reference_common import (adapter_dropout, install_shardtune_dropout, load_peft_model, load_rows,
                              lora_params, make_batch, micro_batch_key, n_targets, pad_id_of)

M64 = (1 << 64) - 1
EPOCH_MIX = 0xD6E8FEB86659FD93


class SplitMix64:
    def __init__(self, state):
        self.state = state & M64

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & M64
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)


def epoch_permutation(n, seed, epoch):
    rng = SplitMix64((seed & M64) ^ (((epoch + 1) * EPOCH_MIX) & M64))
    perm = list(range(n))
    for i in range(n - 1, 0, -1):
        j = rng.next() % (i + 1)
        perm[i], perm[j] = perm[j], perm[i]
    return perm


def str2bool(s):
    if s in ("True", "true", "1", "yes"):
        return True
    if s in ("False", "false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"not a boolean: {s}")


def parse_args(argv):
    ap = argparse.ArgumentParser(description="training oracle")
    ap.add_argument("--model_name_or_path", required=True)
    ap.add_argument("--adapter", required=True)
    ap.add_argument("--dataset_name", required=True)
    ap.add_argument("--output_dir", required=True)
    ap.add_argument("--max_seq_len", type=int, default=2048)
    ap.add_argument("--per_device_train_batch_size", type=int, default=8)
    ap.add_argument("--gradient_accumulation_steps", type=int, default=1)
    ap.add_argument("--learning_rate", type=float, default=5e-5)
    ap.add_argument("--lr_scheduler_type", default="linear",
                    choices=["constant", "constant_with_warmup", "linear", "cosine"])
    ap.add_argument("--warmup_steps", type=int, default=0)
    ap.add_argument("--warmup_ratio", type=float, default=0.0)
    ap.add_argument("--weight_decay", type=float, default=0.0)
    ap.add_argument("--adam_beta1", type=float, default=0.9)
    ap.add_argument("--adam_beta2", type=float, default=0.999)
    ap.add_argument("--adam_epsilon", type=float, default=1e-8)
    ap.add_argument("--max_grad_norm", type=float, default=1.0)
    ap.add_argument("--max_steps", type=int, default=-1)
    ap.add_argument("--num_train_epochs", type=float, default=3.0)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--require_clipping", action="store_true")
    ap.add_argument("--autocast_bf16", action="store_true",
                    help="forward under torch.autocast('cpu', dtype=torch.bfloat16), as Trainer(bf16=True) runs")
    ap.add_argument("--float64", action="store_true",
                    help="run in float64: how far a correct float32 run may drift")
    # QLoRA: the base loaded 4-bit by transformers + bitsandbytes (qlora_common.py)
    ap.add_argument("--use_4bit_quantization", type=str2bool, default=False)
    ap.add_argument("--bnb_4bit_quant_type", choices=["nf4", "fp4"], default="nf4")
    ap.add_argument("--use_nested_quant", type=str2bool, default=False)
    ap.add_argument("--bnb_4bit_compute_dtype", choices=["float32"], default="float32")
    ap.add_argument("--bnb_4bit_quant_storage_dtype", default="uint8")
    # accepted so that the same flag list drives both programs; no effect here
    ap.add_argument("--logging_steps", type=int, default=1)
    ap.add_argument("--use_peft_lora", type=str2bool, default=True)
    ap.add_argument("--gradient_checkpointing", type=str2bool, default=False)
    return ap.parse_args(argv)


def main(argv):
    a = parse_args(argv)
    if a.logging_steps != 1:
        sys.exit("reference_train: only --logging_steps 1 is modelled")
    rows = load_rows(a.dataset_name)
    n, B, G = len(rows), a.per_device_train_batch_size, a.gradient_accumulation_steps
    n_batches = (n + B - 1) // B
    steps_per_epoch = max(1, n_batches // G)
    total = a.max_steps if a.max_steps > 0 else math.ceil(a.num_train_epochs * steps_per_epoch)
    warmup = a.warmup_steps if a.warmup_steps > 0 else math.ceil(a.warmup_ratio * total)

    if a.use_4bit_quantization:
        from qlora_common import load_qlora_peft_model
        model = load_qlora_peft_model(a.model_name_or_path, a.adapter, a.bnb_4bit_quant_type,
                                      a.use_nested_quant)
    else:
        model = load_peft_model(a.model_name_or_path, a.adapter,
                                dtype=torch.float64 if a.float64 else torch.float32)
    p_drop = adapter_dropout(a.adapter)
    dropout = install_shardtune_dropout(model, p_drop) if p_drop > 0 else None
    pad_id = pad_id_of(model.config)
    named = lora_params(model)
    params = [p for _, p in named]
    opt = torch.optim.AdamW(params, lr=a.learning_rate, betas=(a.adam_beta1, a.adam_beta2),
                            eps=a.adam_epsilon, weight_decay=a.weight_decay)
    sched = get_scheduler(a.lr_scheduler_type, opt, num_warmup_steps=warmup,
                          num_training_steps=total)

    os.makedirs(a.output_dir, exist_ok=True)
    clipped_steps = 0
    perm, perm_epoch = None, -1
    with open(os.path.join(a.output_dir, "metrics.jsonl"), "w") as mf:
        for g in range(total):
            epoch, s = divmod(g, steps_per_epoch)
            if epoch != perm_epoch:
                perm, perm_epoch = epoch_permutation(n, a.seed, epoch), epoch
            mbs = range(n_batches) if n_batches < G else range(s * G, (s + 1) * G)
            batches = [(k, *make_batch([rows[i] for i in perm[k * B:(k + 1) * B]], a.max_seq_len, pad_id))
                       for k in mbs]
            num_items = sum(n_targets(lab) for _, _, lab in batches)
            if num_items == 0:
                sys.exit(f"reference_train: step {g + 1} has no target tokens")

            lr = opt.param_groups[0]["lr"]
            opt.zero_grad(set_to_none=True)
            step_loss = 0.0
            for k, inp, lab in batches:
                if dropout:
                    dropout["key"] = micro_batch_key(a.seed, g, k)
                # transformers' ForCausalLMLoss: sum-reduced NLL / num_items_in_batch
                with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.autocast_bf16):
                    out = model(input_ids=inp, labels=lab, use_cache=False,
                                num_items_in_batch=torch.tensor(num_items))
                out.loss.backward()
                step_loss += out.loss.item()
            if a.max_grad_norm > 0:
                norm = torch.nn.utils.clip_grad_norm_(params, a.max_grad_norm).item()
                coef = min(1.0, a.max_grad_norm / (norm + 1e-6))
            else:
                norm = torch.linalg.vector_norm(
                    torch.stack([torch.linalg.vector_norm(p.grad) for p in params])).item()
                coef = 1.0
            clipped_steps += coef < 1.0
            if a.max_grad_norm > 0 and abs(norm + 1e-6 - a.max_grad_norm) < 1e-4 * a.max_grad_norm:
                # a 1e-7 difference between two programs could take the other branch
                sys.exit(f"reference_train: step {g + 1}: grad_norm {norm} is too close to "
                         f"--max_grad_norm {a.max_grad_norm} for a stable comparison")
            opt.step()
            sched.step()
            rec = {"step": g + 1, "epoch": (g + 1) / steps_per_epoch, "loss": step_loss,
                   "learning_rate": lr, "grad_norm": norm, "clip_coef": coef,
                   "num_targets": num_items, "micro_batches": len(batches)}
            mf.write(json.dumps(rec) + "\n")
            print(json.dumps(rec))

    if a.float64:
        model.float()
    model.save_pretrained(a.output_dir)
    print(f"reference_train: {total} steps ({steps_per_epoch} per epoch, warmup {warmup}), "
          f"clipping scaled {clipped_steps} of them")
    if a.require_clipping and clipped_steps == 0:
        print("reference_train: FAIL: --require_clipping but no step was clipped; "
              "lower --max_grad_norm", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--runs":
        import shlex
        with open(sys.argv[2]) as f:
            for line in f:
                if line.strip():
                    main(shlex.split(line))
    else:
        main(sys.argv[1:])
