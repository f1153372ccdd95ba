#!/bin/sh
# Proves: DoRA (--use_dora True, PEFT's use_dora) computes what peft 0.21 +
# transformers compute, the truth being PyTorch autograd on PEFT's
# DoraLinearLayer:
#  1. one forward + backward (model_dump) with a PEFT DoRA adapter (A, B
#     nonzero, m not ||W + s B A||_row, so g = m / norm is not 1): logits,
#     loss, dx and the gradient of every A, B and lora_magnitude_vector to rel
#     1e-5 of reference_grads.py, in eval mode and with dropout 0.1
#     (shardtune's masks inside PEFT, which then recomputes W on the dropped
#     input), on 1 and 2 ranks, with and without checkpointing, a tied
#     model on 2 ranks, and the CUDA backend's kernels on the CPU emulation
#     of CUDA (2 ranks, dropout);
#  2. 10 AdamW steps of `shardtune train` from that adapter with dropout 0.1
#     and weight decay: losses, grad norms and the saved adapter (A, B and m)
#     to rel 1e-5 of reference_train.py, on 1 rank and on 2 ranks;
#  3. a fresh adapter (--use_dora True, no --adapter), trained with learning
#     rate 0 so nothing moves: B is 0 and m is the magnitude PEFT initialises
#     (get_peft_model(use_dora=True) on the same base) to 1e-6, on 1 rank and
#     on 3 ranks (FULL_SHARD, the default: m computed from gathered units);
#  4. `shardtune merge` (2 ranks) of the DoRA adapter writes the weights of
#     PEFT's merge_and_unload to rel 1e-5, and its logits;
#  5. a DoRA checkpoint (full layout, written by 2 ranks) exported by 3 ranks
#     loads in PeftModel.from_pretrained without missing or unexpected keys,
#     equals the run's own adapter, and
#     `shardtune eval --adapter` gives PEFT's loss on all rows to 1e-5;
#  6. `shardtune generate` (greedy, KV cache, DoRA norms computed once) gives
#     transformers' tokens with a DoRA adapter on stories260K, 1 and 2 ranks.
. "$top_srcdir/tests/lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
export OMP_NUM_THREADS=1          # ranks share the cores
REF="$top_srcdir/tests/ref"
ROWS=4 T=32 SEED=42

"$PY" "$REF/make_tiny_llama.py" --all "$SCRATCH" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "make_tiny_llama.py"; }
P="$SCRATCH/plain"
cp -r "$P/adapter_dora" "$P/adapter_dora_d10"
sed "s/\"lora_dropout\": *0\.0/\"lora_dropout\": 0.1/" "$P/adapter_dora/adapter_config.json" \
    >"$P/adapter_dora_d10/adapter_config.json"
grep -q '"lora_dropout": 0.1' "$P/adapter_dora_d10/adapter_config.json" || fail "lora_dropout not set to 0.1"
grep -q '"use_dora": true' "$P/adapter_dora/adapter_config.json" || fail "make_tiny_llama.py wrote no DoRA adapter"
status=0
compare() { # compare OURS REF: tensors to rel 1e-5
    "$PY" "$REF/compare_tensors.py" "$1" "$2" --rtol 1e-5 >"$1.cmp" || { cat "$1.cmp"; status=1; }
    tail -n 1 "$1.cmp"
}

# 1. one micro-batch
dump() { # dump NAME NP MODEL_VARIANT ADAPTER [flags]
    name=$1 np=$2 d="$SCRATCH/$3" adapter=$4
    shift 4
    timeout 300 "$MPIRUN" -np "$np" "$MODEL_DUMP" --model "$d/model" --adapter "$d/$adapter" \
        --data "$d/data.jsonl" --rows $ROWS --max_seq_len $T --seed $SEED "$@" \
        --out "$SCRATCH/$name.ours.safetensors" >"$SCRATCH/$name.log" 2>&1 \
        || { cat "$SCRATCH/$name.log"; fail "model_dump $name"; }
}
dump eval.np1 1 plain adapter_dora
dump eval.np2 2 plain adapter_dora --gradient_checkpointing True
dump tied.np2 2 tied adapter_dora
dump d10.np1 1 plain adapter_dora_d10 --dropout True
dump d10.np1.gc 1 plain adapter_dora_d10 --dropout True --gradient_checkpointing True
dump d10.np2 2 plain adapter_dora_d10 --dropout True
"$PY" "$REF/reference_grads.py" \
    "$P/model" "$P/adapter_dora" "$P/data.jsonl" $ROWS $T "$SCRATCH/eval.ref.safetensors" \
    "$SCRATCH/tied/model" "$SCRATCH/tied/adapter_dora" "$SCRATCH/tied/data.jsonl" $ROWS $T \
    "$SCRATCH/tied.ref.safetensors" >"$SCRATCH/ref.log" 2>&1 || { cat "$SCRATCH/ref.log"; fail "reference_grads.py"; }
"$PY" "$REF/reference_grads.py" --dropout-seed $SEED \
    "$P/model" "$P/adapter_dora_d10" "$P/data.jsonl" $ROWS $T "$SCRATCH/d10.ref.safetensors" \
    >"$SCRATCH/ref_d10.log" 2>&1 || { cat "$SCRATCH/ref_d10.log"; fail "reference_grads.py --dropout-seed"; }
grep -q "lora tensors=42" "$SCRATCH/ref.log" || fail "the reference did not see A, B and m of 14 DoRA layers"
for run in eval.np1 eval.np2 tied.np2 d10.np1 d10.np1.gc d10.np2; do
    echo "== $run"
    compare "$SCRATCH/$run.ours.safetensors" "$SCRATCH/${run%%.*}.ref.safetensors"
done
[ $status = 0 ] || fail "model_dump with DoRA differs from transformers + peft"
# the CUDA backend's DoRA kernels (cuda/elementwise_cuda.cu) through the
# CPU emulation of CUDA (tests/cuda_emu), 2 ranks, dropout on
emu="$top_builddir/tests/cuda_emu/shardtune-cuda-emu.so"
[ -f "$emu" ] || fail "$emu: not built"
(SHARDTUNE_CUDA_PLUGIN="$emu" && export SHARDTUNE_CUDA_PLUGIN &&
    dump cuda.d10.np2 2 plain adapter_dora_d10 --dropout True --device cuda)
echo "== cuda.d10.np2 (emulated CUDA)"
compare "$SCRATCH/cuda.d10.np2.ours.safetensors" "$SCRATCH/d10.ref.safetensors"
[ $status = 0 ] || fail "model_dump with DoRA on the CUDA backend (emulated) differs from transformers + peft"

# 2. training from the PEFT adapter
TRAIN_FLAGS="--max_seq_len 32 --per_device_train_batch_size 2 --learning_rate 1e-2 --lr_scheduler_type cosine \
    --warmup_steps 2 --weight_decay 0.01 --max_grad_norm 1.5 --max_steps 10 --seed $SEED"
train() { # train NAME NP [flags]
    name=$1 np=$2
    shift 2
    # shellcheck disable=SC2086
    timeout 300 "$MPIRUN" -np "$np" "$SHARDTUNE" train --model_name_or_path "$P/model" \
        --dataset_name "$P/data.jsonl" --output_dir "$SCRATCH/$name" --logging_steps 1 $TRAIN_FLAGS "$@" \
        >"$SCRATCH/$name.log" 2>&1 || { cat "$SCRATCH/$name.log"; fail "shardtune train $name"; }
}
train np1 1 --adapter "$P/adapter_dora_d10" --gradient_accumulation_steps 2
train np2 2 --adapter "$P/adapter_dora_d10" --gradient_accumulation_steps 1
# shellcheck disable=SC2086
"$PY" "$REF/reference_train.py" --model_name_or_path "$P/model" --adapter "$P/adapter_dora_d10" \
    --dataset_name "$P/data.jsonl" --output_dir "$SCRATCH/train.ref" $TRAIN_FLAGS --gradient_accumulation_steps 2 \
    >"$SCRATCH/train.ref.log" 2>&1 || { cat "$SCRATCH/train.ref.log"; fail "reference_train.py"; }
for run in np1 np2; do
    echo "== train $run"
    check_run "$SCRATCH/$run" "$SCRATCH/train.ref" "$P/model" || status=1
done
grep -q '"use_dora": true' "$SCRATCH/np1/adapter_config.json" || fail "the saved adapter_config.json lacks use_dora"
[ $status = 0 ] || fail "shardtune train with DoRA differs from the torch reference"

# 3. a fresh adapter: PEFT's initial magnitude
FRESH="--use_dora True --lora_r 4 --lora_alpha 8 --lora_dropout 0 --lora_target_modules all-linear"
# shellcheck disable=SC2086
train fresh1 1 $FRESH --learning_rate 0 --max_steps 1
# shellcheck disable=SC2086
train fresh3 3 $FRESH --learning_rate 0 --max_steps 1
"$PY" - "$P/model" "$SCRATCH/fresh1" "$SCRATCH/fresh3" <<'PY' || fail "a fresh DoRA adapter is not PEFT's initialisation"
import sys, torch
from peft import LoraConfig, get_peft_model
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
from reference_common import lora_params
base = LlamaForCausalLM.from_pretrained(sys.argv[1], dtype=torch.float32)
pm = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", use_dora=True))
want = {k: p.detach() for k, p in lora_params(pm) if k.endswith("lora_magnitude_vector")}
assert len(want) == 14, sorted(want)
for d in sys.argv[2:]:
    ours = load_file(f"{d}/adapter_model.safetensors")
    worst = 0.0
    for k, w in want.items():
        worst = max(worst, ((ours[k] - w).norm() / w.norm()).item())
    zero_b = all(not ours[k].any() for k in ours if k.endswith("lora_B.weight"))
    print(f"{d}: {len(want)} magnitudes vs PEFT's init, worst rel {worst:.2e}; B zero: {zero_b}")
    assert worst <= 1e-6 and zero_b
PY

# 4. merge
"$MPIRUN" -np 2 "$SHARDTUNE" merge --model_name_or_path "$P/model" --adapter "$P/adapter_dora" \
    --out "$SCRATCH/merged" --max_shard_size 100KB >"$SCRATCH/merge.log" 2>&1 \
    || { cat "$SCRATCH/merge.log"; fail "merge"; }
"$PY" - "$P" "$SCRATCH/merged" <<'PY' || fail "merged DoRA weights differ from PEFT's merge_and_unload"
import glob, sys, torch
from peft import PeftModel
from safetensors.torch import load_file
from transformers import LlamaForCausalLM
src, merged = sys.argv[1:]
ref = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(f"{src}/model", dtype=torch.float32),
                                f"{src}/adapter_dora").merge_and_unload().eval()
want = ref.state_dict()
got = {}
for f in glob.glob(f"{merged}/*.safetensors"):
    got.update(load_file(f))
worst = 0.0
for k, t in got.items():
    worst = max(worst, ((t - want[k]).norm() / want[k].norm()).item())
assert len(got) == len(want), (sorted(got), sorted(want))
ids = torch.tensor([[1, 5, 9, 23, 42, 17, 88, 3, 61, 70]])
with torch.no_grad():
    ours = LlamaForCausalLM.from_pretrained(merged, dtype=torch.float32).eval()(input_ids=ids).logits
    theirs = ref(input_ids=ids).logits
rel = ((ours - theirs).norm() / theirs.norm()).item()
print(f"merge: {len(got)} tensors, worst rel {worst:.2e} vs merge_and_unload; logits rel {rel:.2e}")
assert worst <= 1e-5 and rel <= 1e-5
PY

# 5. export of a DoRA checkpoint (the full layout: one dataset per tensor, m 1-D); eval
# shellcheck disable=SC2086
(FSDP_STATE_DICT_TYPE=FULL_STATE_DICT && export FSDP_STATE_DICT_TYPE &&
    train run 2 $FRESH --max_steps 4 --save_steps 4 --gradient_accumulation_steps 1)
"$MPIRUN" -np 3 "$SHARDTUNE" export "$SCRATCH/run/checkpoint-4.h5" --out "$SCRATCH/exported" >"$SCRATCH/export.log" 2>&1 \
    || { cat "$SCRATCH/export.log"; fail "export"; }
"$PY" "$REF/check_adapter.py" --rtol 1e-7 "$P/model" "$SCRATCH/exported" "$SCRATCH/run" >"$SCRATCH/export.check" 2>&1 \
    || { cat "$SCRATCH/export.check"; fail "the exported DoRA adapter"; }
grep -E '^check_adapter' "$SCRATCH/export.check"
"$SHARDTUNE" eval --model_name_or_path "$P/model" --adapter "$SCRATCH/exported" --dataset_name "$P/data.jsonl" \
    --max_seq_len $T --json >"$SCRATCH/eval.json" 2>"$SCRATCH/eval.log" || { cat "$SCRATCH/eval.log"; fail "eval"; }
"$PY" "$REF/reference_grads.py" "$P/model" "$SCRATCH/exported" "$P/data.jsonl" 12 $T "$SCRATCH/all.ref.safetensors" \
    >"$SCRATCH/all.ref.log" 2>&1 || { cat "$SCRATCH/all.ref.log"; fail "reference_grads.py (12 rows)"; }
"$PY" - "$SCRATCH" <<'PY' || fail "shardtune eval with a DoRA adapter differs from PEFT"
import json, sys
from safetensors.torch import load_file
d = sys.argv[1]
ref = load_file(f"{d}/all.ref.safetensors")["loss"].item()
ours = json.load(open(f"{d}/eval.json"))["eval_loss"]
rel = abs(ours - ref) / abs(ref)
print(f"eval loss with the exported DoRA adapter: PEFT {ref:.8f}, shardtune {ours:.8f}, rel {rel:.2e}")
assert rel <= 1e-5
PY

# 6. generation
"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/stories" >/dev/null
"$PY" - "$SCRATCH/stories" <<'PY' || fail "transformers' generation with a DoRA adapter"
import json, sys, torch
from peft import PeftModel
from transformers import AutoTokenizer, LlamaForCausalLM
from make_tiny_llama import ALL_TARGETS, make_adapter
d = sys.argv[1]
tok = AutoTokenizer.from_pretrained(d)
make_adapter(LlamaForCausalLM.from_pretrained(d, dtype=torch.float32), f"{d}/dora", ALL_TARGETS, False, 3,
             use_dora=True, magnitude_noise=0.2)
model = PeftModel.from_pretrained(LlamaForCausalLM.from_pretrained(d, dtype=torch.float32), f"{d}/dora").eval()
ids = tok("Once upon a time", return_tensors="pt").input_ids
with torch.no_grad():
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=30,
                         pad_token_id=0)
json.dump(out[0, ids.shape[1]:].tolist(), open(f"{d}/hf.json", "w"))
PY
for np in 1 2; do
    "$MPIRUN" -np $np "$SHARDTUNE" generate --model_name_or_path "$SCRATCH/stories" --adapter "$SCRATCH/stories/dora" \
        --prompt "Once upon a time" --max_new_tokens 30 2>"$SCRATCH/gen$np.err" >/dev/null \
        || { cat "$SCRATCH/gen$np.err"; fail "generate ($np ranks)"; }
    sed -n 's/^generated [0-9]* tokens: *//p' "$SCRATCH/gen$np.err" >"$SCRATCH/gen$np.ids"
    "$PY" - "$SCRATCH/stories/hf.json" "$SCRATCH/gen$np.ids" <<'PY' || fail "generate with DoRA ($np ranks) differs"
import json, sys
want = json.load(open(sys.argv[1]))
got = [int(x) for x in open(sys.argv[2]).read().split()]
n = min(len(got), len(want))  # transformers stops at EOS too
assert n > 0 and got[:n] == want[:n] and (len(got) == len(want) or got[n - 1] == 2), f"ours {got} hf {want}"
print(f"generate: {len(got)} tokens equal to transformers'")
PY
done

echo "PASS"
