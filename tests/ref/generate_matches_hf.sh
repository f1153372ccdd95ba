#!/bin/sh
# Proves: `shardtune generate` at temperature 0 (greedy, KV cache) produces
# the token ids transformers' generate(do_sample=False) produces, on the
# converted stories260K, without and with a PEFT adapter (random nonzero
# LoRA on all linear layers), on one rank and on two FULL_SHARD ranks.
. "$top_srcdir/tests/lib.sh"
need_reference_python

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" > /dev/null
"$PY" - "$SCRATCH" <<'PY'
import json, sys, torch
from peft import LoraConfig, get_peft_model
from transformers import AutoTokenizer, LlamaForCausalLM
d = sys.argv[1]
torch.manual_seed(0)
tok = AutoTokenizer.from_pretrained(f"{d}/model")
base = LlamaForCausalLM.from_pretrained(f"{d}/model", torch_dtype=torch.float32)
peft = get_peft_model(LlamaForCausalLM.from_pretrained(f"{d}/model", torch_dtype=torch.float32),
                      LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
with torch.no_grad():
    for n, p in peft.named_parameters():
        if "lora_" in n:
            p.mul_(0.5)
peft.save_pretrained(f"{d}/adapter")
out = {}
for name, model in (("base", base), ("adapter", peft)):
    model.eval()
    for i, prompt in enumerate(["Once upon a time", "The little dog"]):
        ids = tok(prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            g = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False,
                               max_new_tokens=30, pad_token_id=0)
        out[f"{name}.{i}"] = g[0, ids.shape[1]:].tolist()
json.dump(out, open(f"{d}/hf.json", "w"))
PY
run() { # run NAME NP [flags]: our ids for both prompts
    name=$1 np=$2
    shift 2
    i=0
    for prompt in "Once upon a time" "The little dog"; do
        OMP_NUM_THREADS=1 "$MPIRUN" -np "$np" "$SHARDTUNE" generate --model_name_or_path "$SCRATCH/model" \
            --prompt "$prompt" --max_new_tokens 30 "$@" 2> "$SCRATCH/err" > /dev/null \
            || { cat "$SCRATCH/err" >&2; fail "generate $name failed"; }
        sed -n 's/^generated [0-9]* tokens: *//p' "$SCRATCH/err" > "$SCRATCH/$name.$i"
        i=$((i + 1))
    done
}
run base 1
run adapter 1 --adapter "$SCRATCH/adapter"
run adapter.sharded 2 --adapter "$SCRATCH/adapter"
"$PY" - "$SCRATCH" <<'PY'
import json, sys
d = sys.argv[1]
hf = json.load(open(f"{d}/hf.json"))
for ours, ref in (("base", "base"), ("adapter", "adapter"), ("adapter.sharded", "adapter")):
    for i in range(2):
        got = [int(x) for x in open(f"{d}/{ours}.{i}").read().split()]
        want = hf[f"{ref}.{i}"]
        # transformers stops at EOS too; compare what both generated
        n = min(len(got), len(want))
        assert n > 0 and got[:n] == want[:n] and (len(got) == len(want) or got[n - 1] == 2), \
            f"{ours} prompt {i}: ours {got} transformers {want}"
        print(f"ok {ours} prompt {i}: {len(got)} tokens equal")
PY
echo PASS
