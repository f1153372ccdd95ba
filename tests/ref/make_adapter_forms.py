#!/usr/bin/env python3
"""make_adapter_forms.py OUT_DIR: a tiny Llama and LoRA adapters in every form PEFT saves.

Writes OUT_DIR/model and OUT_DIR/data.jsonl (make_tiny_llama.py's 2-layer model and
rows) and one adapter directory per form, each made by get_peft_model(...) and
save_pretrained, so adapter_config.json is exactly what peft writes:

  ok_names        target_modules a list of module names
  ok_all_linear   "all-linear": peft saves the full paths it found, in set order
  ok_regex        a regex string (re.fullmatch on the full name), some layers only
  ok_layers       names + layers_to_transform [1] + layers_pattern "layers"
  ok_layer_int    names + layers_to_transform 0 (an int, no layers_pattern)
  ok_paths        full paths and partial paths ("layers.1.mlp.up_proj"), mixed
  ok_exclude      "all-linear" + exclude_modules (a list: names and a full path)
  ok_exclude_re   names + exclude_modules as a regex string
  ok_patterns     rank_pattern / alpha_pattern, keys as names, paths and regexes,
                  two keys matching one module (the first in the file wins)
  ok_patterns_rs  the same kind with use_rslora (scale alpha / sqrt(r) per module)

and the forms shardtune must refuse (the first two saved by peft, the others
peft's own save of ok_names with adapter_config.json edited, as a user might):

  no_lm_head      target_modules include lm_head (peft adapts it; shardtune cannot)
  no_embed        target_modules include embed_tokens (a LoRA embedding)
  no_not_linear   "mlp": names model.layers.N.mlp, not a linear layer (peft refuses too)
  no_no_match     nothing of the model matches (peft refuses too)
  no_rank_value   rank_pattern with a value that is not a positive integer
  no_layers_re    layers_to_transform with a regex string (peft refuses too)
  no_layer_beyond_int  layers_to_transform 2^32 (cast to int it was layer 0)

Every LoRA matrix is random and nonzero (peft's B = 0 would hide wrong targets).
"""
import argparse
import json
import os
import shutil

import torch
from peft import LoraConfig, get_peft_model

import make_tiny_llama

NAMES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

ACCEPTED = {
    "ok_names": dict(target_modules=["q_proj", "v_proj", "down_proj"]),
    "ok_all_linear": dict(target_modules="all-linear"),
    "ok_regex": dict(target_modules=r"model\.layers\.1\.self_attn\.(q|k)_proj|.*\.0\.mlp\.(gate|down)_proj"),
    "ok_layers": dict(target_modules=["q_proj", "o_proj", "up_proj"], layers_to_transform=[1],
                      layers_pattern="layers"),
    "ok_layer_int": dict(target_modules=["v_proj", "gate_proj"], layers_to_transform=0),
    "ok_paths": dict(target_modules=["model.layers.0.self_attn.q_proj", "layers.1.mlp.up_proj",
                                     "self_attn.v_proj"]),
    "ok_exclude": dict(target_modules="all-linear", exclude_modules=["o_proj", "model.layers.1.mlp.gate_proj"]),
    "ok_exclude_re": dict(target_modules=NAMES, exclude_modules=r".*\.0\.self_attn\.[qk]_proj"),
    "ok_patterns": dict(target_modules=NAMES,
                        rank_pattern={"layers.0.self_attn.q_proj": 2, "q_proj": 8, r"layers\.1\.mlp\.down_proj": 3},
                        alpha_pattern={"v_proj": 16, "model.layers.0.mlp.up_proj": 3, r".*\.1\.self_attn\.o_proj": 5}),
    "ok_patterns_rs": dict(target_modules=["k_proj", "gate_proj", "down_proj"], use_rslora=True,
                           rank_pattern={"k_proj": 2, "mlp.gate_proj": 8}, alpha_pattern={"gate_proj": 4}),
}
SAVED_REFUSED = {
    "no_lm_head": dict(target_modules=["q_proj", "lm_head"]),
    "no_embed": dict(target_modules=["v_proj", "embed_tokens"]),
}
# edits of ok_names' adapter_config.json
EDITED_REFUSED = {
    "no_not_linear": {"target_modules": ["q_proj", "mlp"]},
    "no_no_match": {"target_modules": ["query_key_value"]},
    "no_rank_value": {"rank_pattern": {"q_proj": 0}},
    "no_layers_re": {"target_modules": ".*q_proj", "layers_to_transform": [0]},
    "no_layer_beyond_int": {"layers_to_transform": [4294967296]},
}


def save_adapter(model, out, seed, **kw):
    """modules_to_save's trained copies are moved off the base weights, so that a
    program that loads the base module instead is seen."""
    cfg = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, bias="none", task_type="CAUSAL_LM",
                     init_lora_weights=True, **kw)
    pm = get_peft_model(model, cfg)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in pm.named_parameters():
            if "lora_" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
            elif ".modules_to_save." in name:
                p.add_(0.05 * torch.randn(p.shape, generator=g))
    pm.save_pretrained(out)
    return pm.unload()  # the plain base model again


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    d = ap.parse_args().out_dir
    os.makedirs(d, exist_ok=True)
    model = make_tiny_llama.make_model(argparse.Namespace(rope="default", tied=False, pad_token_id=None))
    model.save_pretrained(os.path.join(d, "model"), safe_serialization=True)
    make_tiny_llama.make_data(os.path.join(d, "data.jsonl"))
    for seed, (name, kw) in enumerate(list(ACCEPTED.items()) + list(SAVED_REFUSED.items())):
        model = save_adapter(model, os.path.join(d, name), 100 + seed, **kw)
    for name, edit in EDITED_REFUSED.items():
        shutil.copytree(os.path.join(d, "ok_names"), os.path.join(d, name))
        path = os.path.join(d, name, "adapter_config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg.update(edit)
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
