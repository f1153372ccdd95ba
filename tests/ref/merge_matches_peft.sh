#!/bin/sh
# Proves: `mpirun -np 3 shardtune merge` (each rank merging its own units,
# files of at most 100 KB, so several files and an index) writes a Hugging
# Face model directory that transformers loads, whose logits equal those of
# PeftModel.from_pretrained(base, adapter); and that one rank gives the same
# tensors.
. "$top_srcdir/tests/lib.sh"
need_reference_python

"$PY" "$top_srcdir/tests/ref/make_tiny_llama.py" "$SCRATCH/tiny" > /dev/null 2>&1 || fail "make_tiny_llama"
OMP_NUM_THREADS=1 "$MPIRUN" -np 3 "$SHARDTUNE" merge --model_name_or_path "$SCRATCH/tiny/model" \
    --adapter "$SCRATCH/tiny/adapter" --out "$SCRATCH/merged3" --max_shard_size 100KB > /dev/null || fail "merge (3 ranks)"
"$SHARDTUNE" merge --model_name_or_path "$SCRATCH/tiny/model" --adapter "$SCRATCH/tiny/adapter" \
    --out "$SCRATCH/merged1" > /dev/null || fail "merge (1 rank)"
ls "$SCRATCH/merged3"
[ -f "$SCRATCH/merged3/model.safetensors.index.json" ] || fail "no index for a sharded merge"
"$PY" - "$SCRATCH" <<'PY'
import sys, torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
import glob, os
d = sys.argv[1]
ids = torch.tensor([[1, 5, 9, 23, 42, 17, 88, 3, 61, 70]])
with torch.no_grad():
    peft = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(f"{d}/tiny/model", torch_dtype=torch.float32),
                                     f"{d}/tiny/adapter").eval()
    ref = peft(input_ids=ids).logits
    for name in ("merged3", "merged1"):
        merged = LlamaForCausalLM.from_pretrained(f"{d}/{name}", torch_dtype=torch.float32).eval()
        got = merged(input_ids=ids).logits
        rel = ((got - ref).norm() / ref.norm()).item()
        print(f"{name}: logits vs PeftModel rel {rel:.2e}")
        assert rel <= 1e-5
def tensors(p):
    out = {}
    for f in glob.glob(f"{p}/*.safetensors"):
        out.update(load_file(f))
    return out
a, b = tensors(f"{d}/merged3"), tensors(f"{d}/merged1")
assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "3 ranks and 1 rank merged differently"
print(f"{len(a)} tensors identical from 3 ranks and 1 rank; files: {len(glob.glob(d + '/merged3/*.safetensors'))}")
PY
echo PASS
