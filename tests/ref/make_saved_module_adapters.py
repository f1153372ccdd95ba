#!/usr/bin/env python3
"""make_saved_module_adapters.py OUT_DIR: LoRA adapters with modules_to_save, saved by PEFT.

Writes OUT_DIR/model and OUT_DIR/data.jsonl (make_tiny_llama.py's untied 2-layer model,
with pad_token_id 53, a token of the rows, and its rows), OUT_DIR/tied/model (the same
with tie_word_embeddings) and one adapter per form, each get_peft_model(...).save_pretrained
(make_adapter_forms.save_adapter: random LoRA matrices, the copies off the base weights):

  ok_head        modules_to_save ["lm_head"]
  ok_embed       modules_to_save ["embed_tokens"]
  ok_both        modules_to_save ["model.embed_tokens", "lm_head"] (a path, a name)

and, as peft wrote them or with adapter_config.json edited, forms shardtune refuses:

  no_norm        modules_to_save ["input_layernorm"] (peft trains it; shardtune not yet)
  no_unknown     modules_to_save ["lm_heads"]: names no module (peft ignores it silently)
  no_mlp         modules_to_save ["mlp"]: a block's MLP, not a module trained whole here
"""
import argparse
import json
import os
import shutil

import make_adapter_forms
import make_tiny_llama

TARGETS = ["q_proj", "v_proj", "down_proj"]
# a token of the rows' text (7 times): torch's nn.Embedding(padding_idx) gives its
# row no gradient, in PEFT's trained copy too
PAD = 53
SAVED = {
    "ok_head": ["lm_head"],
    "ok_embed": ["embed_tokens"],
    "ok_both": ["model.embed_tokens", "lm_head"],
    "no_norm": ["input_layernorm"],
}
EDITED = {"no_unknown": ["lm_heads"], "no_mlp": ["mlp"]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    d = ap.parse_args().out_dir
    os.makedirs(d, exist_ok=True)
    for tied, sub in ((True, "tied"), (False, "")):
        model = make_tiny_llama.make_model(argparse.Namespace(rope="default", tied=tied, pad_token_id=PAD))
        model.save_pretrained(os.path.join(d, sub, "model"), safe_serialization=True)
    make_tiny_llama.make_data(os.path.join(d, "data.jsonl"))
    for seed, (name, saved) in enumerate(SAVED.items()):
        model = make_adapter_forms.save_adapter(model, os.path.join(d, name), 300 + seed, target_modules=TARGETS,
                                                modules_to_save=saved)
    for name, saved in EDITED.items():
        shutil.copytree(os.path.join(d, "ok_head"), os.path.join(d, name))
        path = os.path.join(d, name, "adapter_config.json")
        with open(path) as f:
            cfg = json.load(f)
        cfg["modules_to_save"] = saved
        with open(path, "w") as f:
            json.dump(cfg, f, indent=2)


if __name__ == "__main__":
    main()
