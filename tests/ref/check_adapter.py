#!/usr/bin/env python3
"""check_adapter.py [--rtol R] MODEL OURS_ADAPTER_DIR REFERENCE_ADAPTER_DIR [MODEL OURS REF ...]

Checks an adapter directory that shardtune wrote:
  1. PeftModel.from_pretrained(MODEL, OURS) loads it without missing or
     unexpected adapter keys (what a user of our output will do);
  2. its adapter_config.json agrees with the reference on r, lora_alpha,
     use_rslora, target_modules (as a set), peft_type and use_dora;
  3. every LoRA tensor PEFT loaded equals the reference's within rtol
     (relative error of the whole tensor), with no key missing or extra.
Exits 1 on any failure.
"""
import argparse
import json
import os
import sys
import warnings

import torch
from safetensors.torch import load_file

from reference_common import load_peft_model, lora_params


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dirs", nargs="+", help="MODEL OURS REFERENCE, repeated")
    ap.add_argument("--rtol", type=float, default=1e-5)
    a = ap.parse_args()
    if len(a.dirs) % 3:
        sys.exit("check_adapter: arguments come in threes: MODEL OURS REFERENCE")
    bad = 0
    for k in range(0, len(a.dirs), 3):
        bad += check(*a.dirs[k:k + 3], a.rtol)
    sys.exit(1 if bad else 0)


def check(model_dir, ours, reference, rtol):
    bad = 0

    with open(os.path.join(ours, "adapter_config.json")) as f:
        oc = json.load(f)
    with open(os.path.join(reference, "adapter_config.json")) as f:
        rc = json.load(f)
    for key, norm in [("peft_type", str), ("r", int), ("lora_alpha", float),
                      ("use_rslora", bool), ("use_dora", bool), ("target_modules", set)]:
        ov = oc.get(key, False if key in ("use_rslora", "use_dora") else None)
        rv = rc.get(key, False if key in ("use_rslora", "use_dora") else None)
        try:
            same = norm(ov) == norm(rv)
        except (TypeError, ValueError):
            same = False
        if not same:
            print(f"FAIL adapter_config.json {key}: {ov!r}, reference {rv!r}")
            bad += 1

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = load_peft_model(model_dir, ours)
    for w in caught:
        msg = str(w.message)
        if "missing" in msg.lower() or "unexpected" in msg.lower():
            print(f"FAIL loading {ours} with PEFT: {msg}")
            bad += 1

    # What PEFT loaded, against the reference file; and the raw file's keys.
    ref = load_file(os.path.join(reference, "adapter_model.safetensors"))
    raw = load_file(os.path.join(ours, "adapter_model.safetensors"))
    for key in sorted(set(raw) ^ set(ref)):
        print(f"FAIL key {key} only in {'ours' if key in raw else 'the reference'}")
        bad += 1
    loaded = dict(lora_params(model))
    worst = 0.0
    for key in sorted(ref):
        if key not in loaded:
            continue
        o, r = loaded[key].detach().double(), ref[key].double()
        if o.shape != r.shape or not torch.isfinite(o).all():
            print(f"FAIL {key}: shape {list(o.shape)} vs {list(r.shape)} or not finite")
            bad += 1
            continue
        err = ((o - r).norm() / max(r.norm().item(), 1e-30)).item()
        worst = max(worst, err)
        if err > rtol:
            print(f"FAIL {key}: rel_err {err:.3e} > {rtol:g}")
            bad += 1
    print(f"check_adapter: {ours}: {len(ref)} tensors, worst rel_err {worst:.3e}; "
          f"{bad} failure(s)")
    return bad


if __name__ == "__main__":
    main()
