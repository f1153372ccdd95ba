#!/bin/sh
# shellcheck disable=SC2086 # $model, $data, $flags: lists of flags
# Proves: PEFT's modules_to_save (embed_tokens, lm_head: a fully trained copy
# saved under the module's own key) round-trips between PEFT and shardtune.
# Adapters that PEFT saved with modules_to_save ["lm_head"], ["embed_tokens"]
# and ["model.embed_tokens", "lm_head"] (tests/ref/make_saved_module_adapters.py;
# the copies moved off the base weights, so loading the base module instead
# shows) each:
#  - `shardtune eval --adapter` gives PEFT's eval loss to rel 1e-5;
#  - continued training that changes nothing (learning rate 0) saves an adapter
#    that PeftModel.from_pretrained loads to the same loss (the saved copies and
#    adapter_config.json's modules_to_save as PEFT reads them; peft_eval_losses.py
#    also checks that PEFT's trained modules are exactly the file's tensors);
#  - `shardtune merge` writes the trained modules in place of the base ones: the
#    merged model's eval loss is PEFT's loss of the adapter;
# and `shardtune generate --adapter` (both modules) decodes PEFT's greedy tokens.
# Refused with one line naming the adapter's config or the flag: a norm in
# modules_to_save (PEFT trains it; shardtune not yet), a name matching no module,
# a block's MLP; --modules_to_save with an unknown name, with a norm, on a model
# with tied embeddings, and together with --adapter.
. "$top_srcdir/tests/lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1

"$PY" "$top_srcdir/tests/ref/make_saved_module_adapters.py" "$SCRATCH" > "$SCRATCH/make.log" 2>&1 ||
    { cat "$SCRATCH/make.log"; fail "make_saved_module_adapters.py"; }
model="--model_name_or_path $SCRATCH/model"
data="--dataset_name $SCRATCH/data.jsonl"
. "$top_srcdir/tests/ref/adapter_roundtrip.sh"

: > "$SCRATCH/results"
n=0
for a in "$SCRATCH"/ok_*; do
    roundtrip "$a"
    # without it PEFT would load the copies into the base modules: the same loss
    grep -q '"modules_to_save": \[' "$SCRATCH/resaved_${a##*/}/adapter_config.json" ||
        fail "${a##*/}: the resaved adapter_config.json lists no modules_to_save"
    n=$((n + 1))
done
[ "$n" -eq 3 ] || fail "expected 3 accepted forms, found $n"

# refused NAME WANT CMD...: exits non-zero with one line starting "shardtune: error: WANT"
refused() {
    _n=$1 _want=$2
    shift 2
    if "$@" > "$SCRATCH/$_n.out" 2> "$SCRATCH/$_n.err"; then
        fail "$_n: accepted, but should be refused"
    fi
    [ "$(wc -l < "$SCRATCH/$_n.err")" -eq 1 ] || { cat "$SCRATCH/$_n.err"; fail "$_n: not one line"; }
    grep -q "^shardtune: error: $_want" "$SCRATCH/$_n.err" || { cat "$SCRATCH/$_n.err"; fail "$_n: does not name $_want"; }
    echo "$_n: $(cat "$SCRATCH/$_n.err")"
}
for a in "$SCRATCH"/no_*; do
    refused "${a##*/}" "$a/adapter_config.json: modules_to_save: " "$SHARDTUNE" eval $model --adapter "$a" $data
done
flags="$data --output_dir $SCRATCH/bad --max_steps 1"
refused flag_unknown "--modules_to_save: 'lm_heads' names no module" \
    "$SHARDTUNE" train $model $flags --modules_to_save embed_tokens,lm_heads
refused flag_norm "--modules_to_save: 'norm' names model.norm; training RMSNorm weights fully is not supported" \
    "$SHARDTUNE" train $model $flags --modules_to_save norm
refused flag_tied "--modules_to_save: embed_tokens or lm_head with tie_word_embeddings" \
    "$SHARDTUNE" train --model_name_or_path "$SCRATCH/tied/model" $flags --modules_to_save lm_head
refused flag_adapter "--modules_to_save: not with --adapter" \
    "$SHARDTUNE" train $model --adapter "$SCRATCH/ok_head" $flags --modules_to_save lm_head

"$PY" "$top_srcdir/tests/ref/peft_eval_losses.py" "$SCRATCH/model" "$SCRATCH/data.jsonl" "$SCRATCH/results" ||
    fail "shardtune against PEFT (above)"

# generation: stories260K untied (lm_head a copy of the embedding) with its
# tokenizer; PEFT's adapter with both modules moved off the base; greedy
# tokens of `shardtune generate --adapter` = PeftModel.generate's
"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/tied260k" > /dev/null || fail "convert"
"$PY" - "$SCRATCH" > "$SCRATCH/gen_peft.log" 2>&1 <<'PY' || { cat "$SCRATCH/gen_peft.log"; fail "PEFT generation"; }
import os, shutil, sys, torch
from peft import LoraConfig, PeftModel, get_peft_model
from transformers import AutoTokenizer, LlamaForCausalLM
d = sys.argv[1]
m = LlamaForCausalLM.from_pretrained(f"{d}/tied260k", dtype=torch.float32)
m.config.tie_word_embeddings = False
m.lm_head.weight = torch.nn.Parameter(m.model.embed_tokens.weight.detach().clone())
m.save_pretrained(f"{d}/gen/model")
for f in os.listdir(f"{d}/tied260k"):
    if "token" in f:
        shutil.copy(f"{d}/tied260k/{f}", f"{d}/gen/model/{f}")
torch.manual_seed(1)  # init_lora_weights=False draws A and B
pm = get_peft_model(m, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False,
                                  modules_to_save=["embed_tokens", "lm_head"]))
g = torch.Generator().manual_seed(5)
with torch.no_grad():
    for n, p in pm.named_parameters():
        if "modules_to_save" in n:
            p.add_(0.3 * torch.randn(p.shape, generator=g))
pm.save_pretrained(f"{d}/gen/adapter")
tok = AutoTokenizer.from_pretrained(f"{d}/gen/model")
pm = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(f"{d}/gen/model", dtype=torch.float32),
                               f"{d}/gen/adapter").eval()
ids = tok("Once upon a time", return_tensors="pt").input_ids
out = pm.generate(input_ids=ids, max_new_tokens=20, do_sample=False)[0][ids.shape[1]:]
print("peft tokens:", " ".join(str(int(t)) for t in out))
PY
run gen "$SHARDTUNE" generate --model_name_or_path "$SCRATCH/gen/model" --adapter "$SCRATCH/gen/adapter" \
    --prompt "Once upon a time" --max_new_tokens 20
ours=$(sed -n 's/^generated 20 tokens: //p' "$SCRATCH/gen.log")
theirs=$(sed -n 's/^peft tokens: //p' "$SCRATCH/gen_peft.log")
echo "generate: shardtune $ours; peft $theirs"
if [ -z "$ours" ] || [ "$ours" != "$theirs" ]; then fail "greedy generation differs from PEFT's"; fi
echo PASS
