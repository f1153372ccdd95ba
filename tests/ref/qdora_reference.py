#!/usr/bin/env python3
"""qdora_reference.py: the oracle side of QDoRA and of export / merge / eval on 4-bit runs.

  make OUT_DIR
      qlora_reference.py make OUT_DIR (a bf16 model bitsandbytes can quantize on
      the CPU, its LoRA adapter, data.jsonl), plus OUT_DIR/adapter_dora: a PEFT
      DoRA adapter on all seven projections, A, B nonzero and m not a row norm.
  init MODEL QUANT_TYPE NESTED R ALPHA RUN_DIR...
      PEFT's fresh DoRA magnitudes on the 4-bit base (get_peft_model with
      use_dora=True on all linear layers: the row norms of the dequantized
      weights) against those of each run's saved adapter (to rel 1e-6), whose
      B must be zero.
  eval MODEL QUANT_TYPE NESTED DATA RESULTS
      as peft_eval_losses.py, with each adapter loaded by PeftModel.from_pretrained
      on the 4-bit base (qlora_common.py); fails on any PEFT warning about keys.
  merge MODEL QUANT_TYPE NESTED ADAPTER MERGED_DIR
      compares `shardtune merge` with the 4-bit flags to what PEFT's
      Linear4bit.merge computes before it quantizes the sum again
      (dequantize_bnb_weight + get_delta_weight, DoRA's merge_safe), rounded to
      the file's dtype; a linear weight without an adapter must be its 4-bit
      weight, dequantize_bnb_weight rounded; every other tensor the file's bytes.
  loss MERGED_DIR DATA OURS
      transformers' eval loss of a merged model directory (fp32) on all of DATA's
      rows against OURS (`shardtune eval --json` on it), to rel 1e-5.
"""
import glob
import os
import sys
import warnings

import torch
from safetensors.torch import load_file

from make_tiny_llama import ALL_TARGETS, make_adapter
from qlora_common import load_qlora_base, load_qlora_peft_model
from reference_common import load_rows, lora_params, make_batch, n_targets, pad_id_of


def make(out):
    from qlora_reference import make as make_qlora
    from transformers import LlamaForCausalLM
    make_qlora(out)
    model = LlamaForCausalLM.from_pretrained(os.path.join(out, "model"), dtype=torch.float32)
    make_adapter(model, os.path.join(out, "adapter_dora"), ALL_TARGETS, False, 23, use_dora=True)


def init(model_dir, quant_type, nested, r, alpha, *run_dirs):
    from peft import LoraConfig, get_peft_model
    base = load_qlora_base(model_dir, quant_type, nested == "True")
    pm = get_peft_model(base, LoraConfig(r=int(r), lora_alpha=float(alpha), target_modules="all-linear",
                                         use_dora=True))
    want = {k: p.detach().float() for k, p in lora_params(pm) if k.endswith("lora_magnitude_vector")}
    if len(want) != 7 * pm.config.num_hidden_layers:
        raise SystemExit(f"PEFT made {len(want)} magnitudes")
    ok = True
    for d in run_dirs:
        ours = load_file(f"{d}/adapter_model.safetensors")
        worst = max(((ours[k] - w).norm() / w.norm()).item() for k, w in want.items())
        zero_b = all(not ours[k].any() for k in ours if k.endswith("lora_B.weight"))
        print(f"init: {d}: {len(want)} magnitudes vs PEFT's on the 4-bit base ({quant_type} nested={nested}), "
              f"worst rel {worst:.2e}; B zero: {zero_b}")
        ok &= worst <= 1e-6 and zero_b
    if not ok:
        sys.exit(1)


def evaluate(model_dir, quant_type, nested, data, results):
    import peft_eval_losses

    def load(m, a, trainable=False):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = load_qlora_peft_model(m, a, quant_type, nested == "True", trainable=trainable)
        bad = [str(w.message) for w in caught if "key" in str(w.message).lower()]
        if bad:
            raise SystemExit(f"{a}: PEFT warned on loading it: {bad}")
        return model

    peft_eval_losses.load_peft_model = load  # the losses' loader: the 4-bit base
    sys.argv = ["peft_eval_losses.py", model_dir, data, results]
    peft_eval_losses.main()


def bf16_ulps(got, want):
    """|got - want| in units of the bf16 spacing at want."""
    spacing = torch.finfo(torch.bfloat16).eps * torch.exp2(torch.floor(torch.log2(want.abs().clamp_min(1e-30))))
    return ((got - want).abs() / spacing).max().item()


def capture_merge_sums(model):
    """Merges every adapter of a PEFT model on a 4-bit base; returns, per
    linear weight name (the base model's), the fp32 weight PEFT's
    Linear4bit.merge computed (dequantize_bnb_weight + get_delta_weight, DoRA's
    merge_safe) before it hands it to bnb.nn.Params4bit to be quantized again:
    that sum is the oracle of a merge.  A linear without an adapter: its
    dequantized weight."""
    import bitsandbytes as bnb
    import peft.tuners.lora.bnb as lora_bnb
    from peft.utils.integrations import dequantize_bnb_weight
    captured, real, current = {}, lora_bnb.bnb.nn.Params4bit, None

    def capture(data, *args, **kwargs):
        captured[current] = data.detach().clone()
        return real(data, *args, **kwargs)

    lora_bnb.bnb.nn.Params4bit = capture
    try:
        for name, mod in model.named_modules():
            current = name.replace("base_model.model.", "", 1) + ".weight"
            if isinstance(mod, lora_bnb.Linear4bit):
                mod.merge()
            elif isinstance(mod, bnb.nn.Linear4bit) and not name.endswith(".base_layer"):
                captured[current] = dequantize_bnb_weight(mod.weight, state=mod.weight.quant_state)
    finally:
        lora_bnb.bnb.nn.Params4bit = real
    if len(captured) != 7 * model.config.num_hidden_layers:
        raise SystemExit(f"captured {len(captured)} linear weights")
    return captured


def check_merged(captured, base, merged_dir, linear_dtype=None):
    """The merged directory against the merge sums (rounded to the file's
    dtype: linear_dtype, else the base tensor's) and every other tensor
    against base[name]; exits 1 on a difference."""
    got = {}
    for f in glob.glob(f"{merged_dir}/*.safetensors"):
        got.update(load_file(f))
    if got.keys() != base.keys():
        raise SystemExit(f"merged tensors {sorted(got.keys() ^ base.keys())[:4]} ... differ from the base's")
    ok, n_diff, n_all, worst = True, 0, 0, 0.0
    for k, t in got.items():
        want_dtype = linear_dtype if linear_dtype is not None and k in captured else base[k].dtype
        if t.dtype != want_dtype:
            ok = False
            print(f"FAIL {k}: {t.dtype}, expected {want_dtype}")
        elif k not in captured:
            if not torch.equal(t, base[k]):
                ok = False
                print(f"FAIL {k}: not the base's tensor")
        else:
            want = captured[k].to(t.dtype)
            n_diff += int((t != want).sum())
            n_all += t.numel()
            worst = max(worst, bf16_ulps(t.float(), captured[k].float()))
    print(f"merge: {len(captured)} linear weights vs PEFT's Linear4bit merge sum rounded to the file's dtype: "
          f"{n_diff} of {n_all} values differ, worst {worst:.3f} bf16 ulps of the fp32 sum; "
          f"{len(got) - len(captured)} other tensors equal to the base's: {ok}")
    # a rounding of the same fp32 sum lands within one ulp; anything else is a bug
    if not ok or worst > 1.0 or n_diff > n_all // 1000:
        sys.exit(1)


def merge(model_dir, quant_type, nested, adapter_dir, merged_dir):
    model = load_qlora_peft_model(model_dir, adapter_dir, quant_type, nested == "True", trainable=False)
    base = {}
    for f in glob.glob(f"{model_dir}/*.safetensors"):
        base.update(load_file(f))
    check_merged(capture_merge_sums(model), base, merged_dir)


def merged_loss(merged_dir, data, ours):
    from transformers import LlamaForCausalLM
    model = LlamaForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    inp, lab = make_batch(load_rows(data), 4096, pad_id_of(model.config))
    with torch.no_grad():
        logits = model(input_ids=inp).logits
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), lab[:, 1:].reshape(-1),
                                            ignore_index=-100, reduction="sum").item() / n_targets(lab)
    rel = abs(float(ours) - ref) / abs(ref)
    print(f"merged model {merged_dir}: eval loss shardtune {float(ours):.8f}, transformers {ref:.8f}, rel {rel:.1e}")
    if not rel <= 1e-5:
        sys.exit(1)


def main(argv):
    # name: (function, fewest arguments, most arguments)
    cmds = {"make": (make, 1, 1), "init": (init, 6, 64), "eval": (evaluate, 5, 5), "merge": (merge, 5, 5),
            "loss": (merged_loss, 3, 3)}
    fn, lo, hi = cmds.get(argv[1] if len(argv) > 1 else "", (None, 0, -1))
    if not lo <= len(argv) - 2 <= hi:
        sys.exit(__doc__)
    torch.use_deterministic_algorithms(True)
    fn(*argv[2:])

if __name__ == "__main__":
    main(sys.argv)
