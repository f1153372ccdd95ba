"""reference_common.py: what reference_grads.py and reference_train.py share.

Loading a model + PEFT adapter the way transformers and peft do, reading the
jsonl rows, and batching them exactly as tests/model_dump and shardtune train
are specified to: truncate to T, right-pad to the longest row of the batch
with the config's pad_token_id (0 when it has none) and label -100.  No
attention mask is passed: attention is plain causal, so a pad position sees
the real tokens before it and the pads before it; the loss ignores pads.
"""
import json
import re

import numpy as np
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
        p.requires_grad_("lora_" in name or ".modules_to_save." in name)
    return model


def lora_params(model):
    """[(saved key, parameter)] in a fixed order; the key as in adapter_model.safetensors
    (DoRA's ...lora_magnitude_vector.default.weight is saved as ...lora_magnitude_vector;
    modules_to_save's trained copy ...lm_head.modules_to_save.default.weight as ...lm_head.weight)."""
    out = []
    for name, p in model.named_parameters():
        if "lora_A" in name or "lora_B" in name:
            out.append((name.replace(".default.", "."), p))
        elif "lora_magnitude_vector" in name:
            out.append((name.replace(".default.weight", ""), p))
        elif ".modules_to_save.default." in name:
            out.append((name.replace(".modules_to_save.default.", "."), p))
    return out


# ---------------------------------------------------------------------------
# shardtune's LoRA dropout masks (src/rng.h rng_hash, src/backend_cpu.c
# cpu_dropout, src/model.c dropout_key, src/train.c run_step), written again
# from that specification so that PEFT's LoRA layers drop exactly the inputs
# shardtune drops:
#   micro-batch key  rng_hash(seed, step * 65536 + k)   k: the micro-batch's
#                    index in its epoch (global over ranks), step from 0
#   layer key        rng_hash(micro-batch key, layer * 7 + linear)   linear:
#                    q k v o gate up down = 0..6
#   element i of the flattened [rows * seq, in] input is kept when
#   rng_hash(layer key, i) >= (uint64)(p * 2^64), p as float32; kept
#   elements are multiplied by the float32 1 / (1 - p).

M64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
LINEARS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def _mix64(z):
    """splitmix64's finaliser on a Python int or a uint64 array (wrapping)."""
    if isinstance(z, int):
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
        return z ^ (z >> 31)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def rng_hash(key, counter):
    return _mix64(_mix64((key + GOLDEN) & M64) ^ ((counter * GOLDEN) & M64))


def dropout_keep_scale(p):
    """The multiplier of cpu_dropout per element: 0 or float32 1/(1-p)."""
    p32 = np.float32(p)
    return np.float32(1.0) / (np.float32(1.0) - p32), int(float(p32) * 2.0 ** 64)


def dropout_multiplier(layer_key, n_elems, p):
    scale, threshold = dropout_keep_scale(p)
    idx = np.arange(n_elems, dtype=np.uint64)
    with np.errstate(over="ignore"):
        h = _mix64(np.uint64(_mix64((layer_key + GOLDEN) & M64)) ^ (idx * np.uint64(GOLDEN)))
    return np.where(h >= np.uint64(threshold), scale, np.float32(0.0)).astype(np.float32)


class ShardtuneDropout(torch.nn.Module):
    """In place of PEFT's lora_dropout: shardtune's mask for this layer and
    linear under the micro-batch key that the shared state holds."""

    def __init__(self, state, layer, linear, p):
        super().__init__()
        self.state, self.layer, self.linear, self.p = state, layer, linear, p

    def forward(self, x):
        key = rng_hash(self.state["key"], self.layer * len(LINEARS) + self.linear)
        mult = dropout_multiplier(key, x.numel(), self.p)
        self.state["masks_applied"] += 1
        return x * torch.from_numpy(mult).reshape(x.shape).to(x.dtype)


def install_shardtune_dropout(model, p):
    """Replaces every LoRA layer's dropout; returns the state whose "key" the
    caller sets per micro-batch (micro_batch_key).  Puts the model in training
    mode: PEFT's DoRA layers use their dropout (and recompute the base output
    on the dropped input) only then; nothing else in a Llama depends on it
    (attention_dropout is 0)."""
    state = {"key": None, "masks_applied": 0}
    n = 0
    for name, module in model.named_modules():
        m = re.search(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)$", name)
        if m and hasattr(module, "lora_dropout") and "default" in module.lora_dropout:
            module.lora_dropout["default"] = ShardtuneDropout(state, int(m.group(1)),
                                                              LINEARS.index(m.group(2)), p)
            n += 1
    if n == 0:
        raise SystemExit("install_shardtune_dropout: no LoRA layer found")
    model.train()
    return state


def micro_batch_key(seed, step, k):
    return rng_hash(seed & M64, (step * 65536 + k) & M64)


def adapter_dropout(adapter_dir):
    with open(f"{adapter_dir}/adapter_config.json") as f:
        return float(json.load(f).get("lora_dropout", 0.0))
