#!/bin/sh
# safetensors_python.sh: our safetensors reader/writer and config.json
# reader/writer against the reference packages (PyPI safetensors and
# transformers), in both directions:
#   1. Python's save_file writes every dtype (with inf, NaN, -0, subnormals)
#      and metadata; st_dump reads them: names, dtypes, shapes, exact values.
#   2. Our writer writes a sample; safe_open reads it: the same checks, plus
#      the header padding and the data in the order added.
#   3. transformers' save_pretrained writes a sharded model directory
#      (model.safetensors.index.json); we read every tensor bit for bit.
#   4. LlamaConfig(... llama3 rope ...).save_pretrained -> llama_config_load.
#   5. llama_config_save -> LlamaConfig.from_pretrained and LlamaForCausalLM.
. "$top_srcdir/tests/lib.sh"
need_reference_python

ST_DUMP="$top_builddir/tests/io/st_dump"
[ -x "$ST_DUMP" ] || fail "$ST_DUMP is not built (make check builds it)"

"$PY" - "$ST_DUMP" "$SCRATCH" <<'EOF' || fail "safetensors/config cross-check with Python failed"
import json, math, os, struct, subprocess, sys

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
import transformers
from transformers import LlamaConfig, LlamaForCausalLM

st_dump, scratch = sys.argv[1], sys.argv[2]
transformers.utils.logging.disable_progress_bar()
DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
          torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.int16: "I16",
          torch.int8: "I8", torch.uint8: "U8", torch.bool: "BOOL"}


def check(cond, what):
    if not cond:
        sys.exit("FAIL: " + what)


def run_dump(*args):
    r = subprocess.run([st_dump, *args], capture_output=True, text=True)
    check(r.returncode == 0, f"st_dump {' '.join(args)}: {r.stderr.strip()}")
    return r.stdout


def same_values(name, t, strings):
    """C printed values (floats with 9 digits: exact for fp32) == tensor t."""
    flat = t.reshape(-1)
    check(len(strings) == flat.numel(), f"{name}: {len(strings)} values, expected {flat.numel()}")
    if t.dtype in (torch.float32, torch.float16, torch.bfloat16):
        want = flat.float().numpy()
        got = np.array([float(s) for s in strings], dtype=np.float64).astype(np.float32)
        ok = np.array_equal(got, want, equal_nan=True) and \
            np.array_equal(np.signbit(got), np.signbit(want))
        check(ok, f"{name}: C read {got.tolist()}, Python has {want.tolist()}")
    elif t.dtype == torch.float64:
        want = flat.numpy()
        got = np.array([float(s) for s in strings])
        check(np.array_equal(got, want), f"{name}: C read {got.tolist()}, Python has {want.tolist()}")
    else:
        want = [int(v) for v in flat.tolist()]
        got = [int(s) for s in strings]
        check(got == want, f"{name}: C read {got}, Python has {want}")


def compare_dump(dump, tensors, where):
    by_name = {d["name"]: d for d in dump["tensors"]}
    check(len(by_name) == len(dump["tensors"]), f"{where}: duplicate names in the dump")
    check(set(by_name) == set(tensors),
          f"{where}: C sees {sorted(by_name)}, Python wrote {sorted(tensors)}")
    for name, t in tensors.items():
        d = by_name[name]
        check(d["dtype"] == DTYPES[t.dtype], f"{where}: {name}: dtype {d['dtype']} vs {t.dtype}")
        check(d["shape"] == list(t.shape), f"{where}: {name}: shape {d['shape']} vs {list(t.shape)}")
        same_values(f"{where}: {name}", t, d["values"])


# 1. Python writes, C reads.
torch.manual_seed(0)
specials = [float("inf"), float("-inf"), float("nan"), -0.0, 0.0]
f32 = torch.cat([torch.randn(13), torch.tensor(specials + [1e-40, 3.4e38])]).reshape(4, 5)
f16 = torch.cat([torch.randn(9), torch.tensor(specials + [2.0 ** -24, 65504.0, 6.1e-5])]).half()
bf16 = torch.cat([torch.randn(7) * 1e3, torch.tensor(specials + [1e-39])]).bfloat16().reshape(13, 1)
py_tensors = {
    "model.layers.0.self_attn.q_proj.weight": f32,
    "half": f16,
    "brain": bf16,
    "f64": torch.tensor([0.1, -1e300, 5e-324], dtype=torch.float64),
    "i64": torch.tensor([-(2 ** 63), 2 ** 63 - 1, 0]),
    "i32": torch.tensor([-(2 ** 31), 2 ** 31 - 1], dtype=torch.int32),
    "i16": torch.tensor([-32768, 32767], dtype=torch.int16),
    "i8": torch.tensor([-128, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 255], dtype=torch.uint8),
    "mask": torch.tensor([True, False, True]),
    "scalar": torch.tensor(2.5),
    "empty": torch.zeros(0, 4),
}
py_file = os.path.join(scratch, "py.safetensors")
save_file(py_tensors, py_file, metadata={"format": "pt", "note": "from python"})
dump = json.loads(run_dump(py_file, "format", "note", "absent"))
compare_dump(dump, py_tensors, "python->C")
check(dump["metadata"] == {"format": "pt", "note": "from python", "absent": None},
      f"python->C metadata: {dump['metadata']}")

# 2. C writes, Python reads.
c_file = os.path.join(scratch, "c.safetensors")
run_dump("--write-sample", c_file)
expect = {
    "f32": torch.tensor([[1.5, -2.25, 0.0], [3.0e-8, 65504.0, -1.0e30]]),
    "f16": torch.tensor([1.0, -2.0, 65504.0, 2.0 ** -24, float("inf"), -0.0]).half(),
    "bf16": torch.tensor([[1.0, -3.0], [0.15625, float("inf")]]).bfloat16(),
    "i64": torch.tensor([-1, 0, 2 ** 63 - 1]),
    "i32": torch.tensor([-7, 2 ** 31 - 1], dtype=torch.int32),
    "i16": torch.tensor([-32768, 5], dtype=torch.int16),
    "i8": torch.tensor([-128, 127], dtype=torch.int8),
    "u8": torch.tensor([0, 128, 255], dtype=torch.uint8),
    "bool": torch.tensor([True, False, True]),
    "f64": torch.tensor([0.1, -1e300], dtype=torch.float64),
    "scalar": torch.tensor(42.0),
    "empty": torch.zeros(0, 3),
}
with safe_open(c_file, framework="pt") as f:
    check(f.metadata() == {"format": "pt", "source": "shardtune st_dump"},
          f"C->python metadata: {f.metadata()}")
    check(set(f.keys()) == set(expect), f"C->python names: {sorted(f.keys())}")
    for name, want in expect.items():
        got = f.get_tensor(name)
        check(got.dtype == want.dtype and got.shape == want.shape,
              f"C->python {name}: {got.dtype} {list(got.shape)}, expected {want.dtype} {list(want.shape)}")
        if got.is_floating_point():
            ok = torch.equal(got.float().isnan(), want.float().isnan()) and \
                torch.equal(got.float().nan_to_num(), want.float().nan_to_num()) and \
                torch.equal(torch.signbit(got.float()), torch.signbit(want.float()))
        else:
            ok = torch.equal(got, want)
        check(ok, f"C->python {name}: {got.tolist()}, expected {want.tolist()}")
raw = open(c_file, "rb").read()
(n_header,) = struct.unpack("<Q", raw[:8])
check((8 + n_header) % 8 == 0, f"header length {n_header}: data block not 8-aligned")
header = json.loads(raw[8:8 + n_header])
order = sorted((v["data_offsets"][0], v["data_offsets"][1], k) for k, v in header.items()
               if k != "__metadata__")
check([k for _, _, k in order if k != "empty"] == [k for k in expect if k != "empty"],
      f"data not in the order added: {order}")

# 3. A sharded Hugging Face model directory, bit for bit.
cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, vocab_size=100,
                  max_position_embeddings=256, tie_word_embeddings=False)
torch.manual_seed(1)
model = LlamaForCausalLM(cfg)
model_dir = os.path.join(scratch, "model")
model.save_pretrained(model_dir, max_shard_size="100KB")
check(os.path.exists(os.path.join(model_dir, "model.safetensors.index.json")),
      f"transformers {transformers.__version__} wrote no sharded index: {os.listdir(model_dir)}")
state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
with open(os.path.join(model_dir, "model.safetensors.index.json")) as fh:
    weight_map = json.load(fh)["weight_map"]
check(set(weight_map) == set(state), f"index lists {sorted(weight_map)}")
check(len(set(weight_map.values())) > 1, "the model was not split into shards")
compare_dump(json.loads(run_dump(model_dir)), state, "sharded dir")

# 4. transformers' config.json -> llama_config_load.
rope = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}
cfg = LlamaConfig(hidden_size=96, intermediate_size=256, num_hidden_layers=3,
                  num_attention_heads=6, num_key_value_heads=2, vocab_size=128256,
                  max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
                  rope_scaling=rope, bos_token_id=128000, eos_token_id=[128001, 128009],
                  pad_token_id=None, tie_word_embeddings=True)
cfg_dir = os.path.join(scratch, "cfg")
cfg.save_pretrained(cfg_dir)
got = json.loads(run_dump("--config", cfg_dir))
want = {"hidden_size": 96, "intermediate_size": 256, "num_hidden_layers": 3,
        "num_attention_heads": 6, "num_key_value_heads": 2, "head_dim": 16,
        "vocab_size": 128256, "max_position_embeddings": 131072, "tie_word_embeddings": True,
        "bos_token_id": 128000, "eos_token_id": 128001, "pad_token_id": -1,
        "rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192}
for k, v in want.items():
    check(got[k] == v, f"config {k}: C read {got[k]}, transformers wrote {v}")
for k, v in {"rms_norm_eps": 1e-5, "rope_theta": 500000.0}.items():
    check(np.float32(got[k]) == np.float32(v), f"config {k}: C read {got[k]}, expected {v}")
got = json.loads(run_dump("--config", os.path.join(model_dir, "config.json")))
check(got["rope_type"] == "default" and got["rope_theta"] == 10000.0 and got["head_dim"] == 16,
      f"config of the sharded model: {got}")

# 5. llama_config_save -> transformers.
out_dir = os.path.join(scratch, "cfg_out")
os.makedirs(out_dir)
run_dump("--write-config", os.path.join(out_dir, "config.json"))
cfg = LlamaConfig.from_pretrained(out_dir)
for k, v in {"hidden_size": 64, "intermediate_size": 160, "num_hidden_layers": 2,
             "num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 16,
             "vocab_size": 300, "max_position_embeddings": 131072, "tie_word_embeddings": True,
             "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": None, "hidden_act": "silu",
             "attention_bias": False, "mlp_bias": False, "model_type": "llama"}.items():
    check(getattr(cfg, k) == v, f"transformers read {k}={getattr(cfg, k)!r}, expected {v!r}")
check(np.float32(cfg.rms_norm_eps) == np.float32(1e-5), f"rms_norm_eps {cfg.rms_norm_eps}")
# transformers 5 folds rope_theta and rope_scaling into rope_parameters.
rp = dict(getattr(cfg, "rope_parameters", None) or cfg.rope_scaling)
theta = rp.get("rope_theta", getattr(cfg, "rope_theta", None))
check(theta == 500000.0, f"rope_theta {theta}")
check(rp.get("rope_type", rp.get("type")) == "llama3", f"rope type {rp}")
for k, v in {"factor": 32.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
             "original_max_position_embeddings": 8192}.items():
    check(rp.get(k) == v, f"rope {k}={rp.get(k)}, expected {v}")
dtype = getattr(cfg, "dtype", None) or getattr(cfg, "torch_dtype", None)
check(str(dtype).replace("torch.", "") == "bfloat16", f"dtype {dtype}")
model = LlamaForCausalLM(cfg)
check(model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr(),
      "tie_word_embeddings true but lm_head is not tied")
check(model.model.layers[0].self_attn.k_proj.weight.shape == (2 * 16, 64), "k_proj shape")
print("ok: safetensors and config.json agree with safetensors", end=" ")
import safetensors
print(safetensors.__version__, "and transformers", transformers.__version__)
EOF
