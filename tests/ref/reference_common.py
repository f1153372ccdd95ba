"""reference_common.py: what reference_grads.py and reference_train.py share.

Loading a model + PEFT adapter the way transformers and peft do, reading the
jsonl rows, and batching them exactly as tests/model_dump and shardtune train
are specified to: truncate to T, right-pad to the longest row of the batch
with the config's pad_token_id (0 when it has none) and label -100.  No
attention mask is passed: attention is plain causal, so a pad position sees
the real tokens before it and the pads before it; the loss ignores pads.
"""
import json

import torch
import transformers

transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars in test logs

IGNORE = -100


def load_rows(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            obj = json.loads(line)
            ids = [int(t) for t in obj["input_ids"]]
            labels = [int(t) for t in obj.get("labels", ids)]
            if len(labels) != len(ids):
                raise SystemExit(f"{path}: labels and input_ids differ in length")
            rows.append((ids, labels))
    return rows


def make_batch(rows, max_seq_len, pad_id):
    """rows: list of (ids, labels) -> (input_ids [N,L] long, labels [N,L] long)."""
    rows = [(ids[:max_seq_len], lab[:max_seq_len]) for ids, lab in rows]
    L = max(len(ids) for ids, _ in rows)
    inp = torch.full((len(rows), L), pad_id, dtype=torch.long)
    lab = torch.full((len(rows), L), IGNORE, dtype=torch.long)
    for i, (ids, labels) in enumerate(rows):
        inp[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
        lab[i, : len(labels)] = torch.tensor(labels, dtype=torch.long)
    return inp, lab


def n_targets(labels):
    """Number of targets the HF shifted loss counts: labels[:, 1:] != -100."""
    return int((labels[:, 1:] != IGNORE).sum())


def pad_id_of(config):
    return config.pad_token_id if config.pad_token_id is not None else 0


def load_peft_model(model_dir, adapter_dir, trainable=True, dtype=torch.float32):
    """fp32 (float64 to measure rounding), eager attention, eval mode (LoRA dropout is 0)."""
    from peft import PeftModel
    from transformers import LlamaForCausalLM

    torch.use_deterministic_algorithms(True)
    base = LlamaForCausalLM.from_pretrained(model_dir, dtype=dtype, attn_implementation="eager")
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=trainable)
    model.to(dtype)
    model.eval()
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return model


def lora_params(model):
    """[(saved key, parameter)] in a fixed order; the key as in adapter_model.safetensors."""
    out = []
    for name, p in model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            out.append((name.replace(".default.", "."), p))
    return out
