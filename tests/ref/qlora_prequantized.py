#!/usr/bin/env python3
"""qlora_prequantized.py: the Python side of tests/ref/qlora_prequantized.sh
(a checkpoint that transformers saved with bitsandbytes 4-bit weights, the
"*-bnb-4bit" models users download).

  save BF16_DIR OUT_DIR QUANT_TYPE NESTED [BF16_DIR OUT_DIR QUANT_TYPE NESTED ...]
      transformers loads BF16_DIR with BitsAndBytesConfig(load_in_4bit, QUANT_TYPE,
      double quant NESTED, compute float32, quant storage bfloat16) on the CPU and
      save_pretrained()s it to OUT_DIR; prints the tensors of one quantized linear.
  grads QUANT_TYPE NESTED MODEL4 ADAPTER DATA ROWS T OUT.safetensors
      the oracle: MODEL4 loaded by transformers as saved (its quantization_config),
      the adapter by PEFT, fp32 compute; logits, loss, every LoRA gradient and dx as
      tests/ref/qlora_reference.py writes them.
  compare FROZEN.safetensors MODEL4 QUANT_TYPE NESTED MODE [FROZEN MODEL4 QUANT_TYPE NESTED MODE ...]
      MODE onload: FROZEN is shardtune's stored bytes of every frozen tensor (model_dump with
      MODEL_DUMP_FROZEN) after quantizing the bf16 directory on load; its 4-bit
      weights, split by the layout of src/weight4.h, against the tensors
      bitsandbytes saved in MODEL4: packed codes and fp32 absmax bit for bit; nested
      8-bit codes equal but for bitsandbytes' CPU lookup (doc/design.md, "4-bit
      quantization"), counted and bounded; offset and nested_absmax to a few ulps.
      MODE exact (FROZEN from loading MODEL4 itself): every byte equal, the saved
      codes and state used as they are.  Exit status 1 when any group fails.
  merge MODEL4 QUANT_TYPE NESTED ADAPTER MERGED_DIR
      `shardtune merge` of ADAPTER on the saved 4-bit MODEL4 against PEFT's merge on
      it (tests/ref/qdora_reference.py check_merged): each linear weight the fp32
      sum PEFT's Linear4bit.merge computes from the saved codes, rounded to the
      checkpoint's bfloat16; every other tensor the saved one; no 4-bit state left.
  corrupt MODEL4 OUT_DIR KIND [OUT_DIR KIND ...]
      a copy of MODEL4 with one thing wrong in q_proj of layer 0 (KIND: json, shape,
      quant_type, blocksize) or in config.json (8bit: load_in_8bit; gptq: another
      quant_method), for the refusal checks.
"""
import json
import os
import shutil
import sys

import numpy as np
import torch

Q_PROJ = "model.layers.0.self_attn.q_proj.weight"


def save(src, out, quant_type, nested):
    from transformers import BitsAndBytesConfig, LlamaForCausalLM
    cfg = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                             bnb_4bit_use_double_quant=nested == "True", bnb_4bit_compute_dtype=torch.float32,
                             bnb_4bit_quant_storage=torch.bfloat16)
    model = LlamaForCausalLM.from_pretrained(src, quantization_config=cfg, device_map="cpu", dtype=torch.bfloat16)
    model.save_pretrained(out)
    from safetensors.torch import load_file
    saved = load_file(os.path.join(out, "model.safetensors"))
    for name in sorted(k for k in saved if k.startswith(Q_PROJ)):
        print(f"qlora_prequantized: {out}: {name} {saved[name].dtype} {list(saved[name].shape)}")


def load_saved_4bit(model_dir, adapter_dir, quant_type, nested, trainable=True):
    """The saved 4-bit model as transformers + peft load it, computing in fp32.

    bitsandbytes dequantizes to its quant_state's dtype, which the checkpoint
    records as the original bfloat16; the oracle of shardtune's fp32 compute
    sets it to float32 (what loading the bf16 directory with dtype float32
    gives in qlora_common.py), and widens the bf16 embeddings, norms and
    lm_head to fp32 (exact)."""
    import bitsandbytes as bnb
    from peft import PeftModel
    from transformers import LlamaForCausalLM
    torch.use_deterministic_algorithms(True)
    base = LlamaForCausalLM.from_pretrained(model_dir, dtype=torch.float32, attn_implementation="eager",
                                            device_map="cpu")
    n4 = 0
    for mod in base.modules():
        if isinstance(mod, bnb.nn.Linear4bit):
            mod.support_avx512bf16_for_cpu = False  # see qlora_common.py
            qs = mod.weight.quant_state
            if qs.quant_type != quant_type or qs.nested != nested:
                raise SystemExit(f"qlora_prequantized: {model_dir} holds {qs.quant_type} nested={qs.nested}")
            qs.dtype = torch.float32
            n4 += 1
    if n4 != 7 * base.config.num_hidden_layers:
        raise SystemExit(f"qlora_prequantized: {n4} Linear4bit modules, expected 7 per layer")
    for p in base.parameters():
        if not isinstance(p, bnb.nn.Params4bit) and p.dtype != torch.float32:
            p.data = p.data.float()
    model = PeftModel.from_pretrained(base, adapter_dir, is_trainable=trainable)
    model.eval()
    for name, p in model.named_parameters():
        p.requires_grad_("lora_" in name)
    return model


def grads(quant_type, nested, model_dir, adapter_dir, data, nrows, T, out):
    import qlora_reference

    def loader(model_dir, adapter_dir, quant_type, nested):
        return load_saved_4bit(model_dir, adapter_dir, quant_type, nested)
    qlora_reference.load_qlora_peft_model = loader  # the same batch and outputs, this base
    qlora_reference.grads(quant_type, nested, model_dir, adapter_dir, data, nrows, T, out)


def split_layout(raw, n, nested):
    """src/weight4.h: packed codes, then nested (codes u8[blocks], nested_absmax
    f32[groups], offset f32) or fp32 absmax[blocks]."""
    packed, blocks = (n + 1) // 2, -(-n // 64)
    groups = -(-blocks // 256)
    out = {"packed": raw[:packed]}
    state = raw[packed:]
    if nested:
        out["codes"] = state[:blocks]
        out["nested_absmax"] = state[blocks:blocks + 4 * groups].view(np.float32)
        out["offset"] = state[blocks + 4 * groups:].view(np.float32)
        assert state.size == blocks + 4 * groups + 4
    else:
        out["absmax"] = state.view(np.float32)
        assert state.size == 4 * blocks
    return out


def ulps(a, b):
    ia, ib = np.asarray(a, np.float32).view(np.int32).astype(np.int64), np.asarray(b, np.float32).view(np.int32)
    return int(np.abs(ia - ib.astype(np.int64)).max())


def compare(frozen, model_dir, quant_type, nested, mode):
    """The failures, as lines (printed with the counts)."""
    exact = mode == "exact"
    from safetensors.numpy import load_file
    from safetensors.torch import load_file as load_torch
    nested = nested == "True"
    ours = load_file(frozen)
    # packed codes are stored as bfloat16 (bnb_4bit_quant_storage), which
    # NumPy lacks: every tensor as its bytes' natural NumPy view
    saved = {k: (v.view(torch.uint8) if v.dtype == torch.bfloat16 else v).numpy()
             for k, v in load_torch(os.path.join(model_dir, "model.safetensors")).items()}
    n_w = n_codes = n_diff = max_offset_ulps = 0
    max_nabs_rel = 0.0
    fails = []
    for name in sorted(k for k in saved if k.endswith(".quant_state.bitsandbytes__" + quant_type)):
        w = name[:name.index(".quant_state")]
        state = json.loads(bytes(saved[name]).decode())
        n = int(np.prod(state["shape"]))
        mine = split_layout(ours[w], n, nested)
        n_w += 1
        if not np.array_equal(mine["packed"], saved[w].view(np.uint8).reshape(-1)):
            fails.append(f"{w}: packed codes differ in {int((mine['packed'] != saved[w].view(np.uint8).reshape(-1)).sum())} bytes")
        if not nested:
            if not np.array_equal(mine["absmax"].view(np.uint32), saved[w + ".absmax"].view(np.uint32)):
                fails.append(f"{w}: absmax differs")
            continue
        theirs = saved[w + ".absmax"]
        d = mine["codes"].astype(int) - theirs.astype(int)
        diff = d != 0
        n_codes += d.size
        n_diff += int(diff.sum())
        # bitsandbytes' CPU lookup: a neighbour of the nearest code, or, for a
        # scaled value near zero (nearest 124..130), code 123 or 131
        near_zero = (mine["codes"] >= 124) & (mine["codes"] <= 130) & np.isin(theirs, [123, 131])
        bad = diff & ~((np.abs(d) == 1) | near_zero)
        if bad.any():
            fails.append(f"{w}: {int(bad.sum())} nested codes differ by more than bitsandbytes' CPU lookup explains")
        max_offset_ulps = max(max_offset_ulps, ulps(mine["offset"][0], np.float32(state["nested_offset"])))
        rel = np.abs(mine["nested_absmax"] - saved[w + ".nested_absmax"]) / saved[w + ".nested_absmax"]
        max_nabs_rel = max(max_nabs_rel, float(rel.max()))
        if exact and not (np.array_equal(mine["nested_absmax"].view(np.uint32),
                                         saved[w + ".nested_absmax"].view(np.uint32))
                          and mine["offset"].view(np.uint32)[0] == np.float32(state["nested_offset"]).view(np.uint32)):
            fails.append(f"{w}: nested_absmax or offset differ from the saved ones")
    if n_w != 14:
        fails.append(f"{n_w} quantized weights in {model_dir}, expected 14")
    if exact and n_diff:
        fails.append(f"{n_diff} nested codes differ from the saved ones")
    if nested:
        print(f"qlora_prequantized: {mode}: {quant_type} nested: {n_w} weights: packed codes equal; nested codes "
              f"{n_diff} of {n_codes} differ; offset within {max_offset_ulps} ulps, "
              f"nested_absmax within rel {max_nabs_rel:.2e}")
        if n_diff > 0.01 * n_codes:
            fails.append(f"{n_diff} of {n_codes} nested codes differ: more than 1 %")
        if max_offset_ulps > 8 or max_nabs_rel > 1e-5:
            fails.append("offset or nested_absmax further from bitsandbytes' than its fp32 mean explains")
    else:
        print(f"qlora_prequantized: {mode}: {quant_type}: {n_w} weights: packed codes and fp32 absmax equal bit "
              f"for bit")
    for f in fails:
        print("FAIL:", f)
    return fails


def corrupt(model_dir, out, kind):
    from safetensors.torch import load_file, save_file
    shutil.copytree(model_dir, out)
    if kind in ("8bit", "gptq"):  # config.json's quantization_config
        path = os.path.join(out, "config.json")
        config = json.load(open(path))
        if kind == "8bit":
            config["quantization_config"].update(load_in_4bit=False, _load_in_4bit=False, load_in_8bit=True,
                                                 _load_in_8bit=True)
        else:
            config["quantization_config"] = {"quant_method": "gptq", "bits": 4, "group_size": 128}
        json.dump(config, open(path, "w"), indent=2)
        return
    path = os.path.join(out, "model.safetensors")
    t = load_file(path)
    qs = next(k for k in t if k.startswith(Q_PROJ + ".quant_state."))
    state = json.loads(bytes(t[qs].numpy()).decode())
    text = None
    if kind == "json":
        text = json.dumps(state)[:-7]  # cut off mid-way
    elif kind == "quant_type":
        state["quant_type"] = "int4"
    elif kind == "blocksize":
        state["blocksize"] = 128
    elif kind == "shape":
        t[Q_PROJ] = t[Q_PROJ][: t[Q_PROJ].shape[0] // 2].clone()
    else:
        raise SystemExit(f"corrupt: unknown kind {kind}")
    if text is None:
        text = json.dumps(state)
    t[qs] = torch.frombuffer(bytearray(text.encode()), dtype=torch.uint8)
    save_file(t, path, metadata={"format": "pt"})


def merge(model_dir, quant_type, nested, adapter_dir, merged_dir):
    from safetensors.torch import load_file
    from qdora_reference import capture_merge_sums, check_merged
    model = load_saved_4bit(model_dir, adapter_dir, quant_type, nested == "True", trainable=False)
    captured = capture_merge_sums(model)
    saved = load_file(os.path.join(model_dir, "model.safetensors"))
    # the 4-bit state of each linear (W.absmax, W.quant_state..., ...) is gone
    base = {k: v for k, v in saved.items() if not any(k.startswith(c + ".") for c in captured)}
    check_merged(captured, base, merged_dir, linear_dtype=saved["model.norm.weight"].dtype)


def main(argv):
    if len(argv) >= 6 and argv[1] == "save" and (len(argv) - 2) % 4 == 0:
        for k in range(2, len(argv), 4):
            save(*argv[k:k + 4])
    elif len(argv) >= 10 and argv[1] == "grads" and (len(argv) - 2) % 8 == 0:
        for k in range(2, len(argv), 8):
            grads(*argv[k:k + 8])
    elif len(argv) >= 7 and argv[1] == "compare" and (len(argv) - 2) % 5 == 0:
        groups = [argv[k:k + 5] for k in range(2, len(argv), 5)]
        if any(g[4] not in ("exact", "onload") for g in groups):
            sys.exit(__doc__)
        sys.exit(1 if sum((compare(*g) for g in groups), []) else 0)
    elif len(argv) == 7 and argv[1] == "merge":
        merge(*argv[2:])
    elif len(argv) >= 5 and argv[1] == "corrupt" and len(argv) % 2 == 1:
        for k in range(3, len(argv), 2):
            corrupt(argv[2], argv[k], argv[k + 1])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
