#!/bin/bash
# cpu_qlora_step.sh: CPU QLoRA training step time, against LoRA and against the
# peer, in this one invocation, on bench/cpu_lora_step.sh's ~20M-parameter Llama
# (bench/make_bench_model.py: hidden 384, MLP 1024, so every linear layer's
# in_features is a multiple of bitsandbytes' block of 64): seq 256, micro-batch
# 4, LoRA r=8 alpha=16 on all seven linear layers from the same PEFT adapter
# ($BENCH_DIR/adapter, B not zero), dropout 0, the same rows in the same order,
# the same number of threads.  Per round, four runs:
#   shardtune lora    shardtune train (fp32 frozen weights)
#   shardtune qlora   the same + --use_4bit_quantization True --use_nested_quant True
#                     --bnb_4bit_compute_dtype float32 (nf4, nested absmax)
#   hf qlora          bench/hf_lora_train.py --load_in_4bit: transformers + peft +
#                     bitsandbytes as a user configures it, BitsAndBytesConfig nf4 with
#                     bnb_4bit_use_double_quant, compute dtype float32 (shardtune's CPU
#                     backend computes in fp32 whatever the flag says, so float32 is
#                     the peer doing the same arithmetic; bfloat16 would be another
#                     computation), support_avx512bf16_for_cpu left as bitsandbytes
#                     sets it (training mode never reaches its eval-only repacking)
#   hf lora           the LoRA peer of cpu_lora_step.sh, for the peer's own ratio
# Before any ratio the first-step losses of each shardtune/peer pair must agree
# (hf_lora_train.py check_first_loss, float32: 1e-5 relative; bitsandbytes'
# CPU nested absmax codes differ from the exact-nearest ones shardtune stores
# in 0.1-0.3 % of blocks (doc/design.md), which moved the first loss by 1e-7
# here); otherwise both losses are printed and the script exits 1.
#
#   bench/cpu_qlora_step.sh                 # one round
#   ROUNDS=2 STEPS=6 bench/cpu_qlora_step.sh
#
# Environment: as bench/cpu_lora_step.sh (SHARDTUNE_PYTHON, SHARDTUNE, BENCH_DIR
# (default $top/runs/bench-cpu-lora: the same model), THREADS, STEPS (default 4:
# the peer's 4-bit step takes seconds), ROUNDS), and WARMUP (default 1).
# Gradient checkpointing off.  tokens/s is the median over the timed steps.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${STEPS:-4}
WARMUP=${WARMUP:-1}
die() { echo "cpu_qlora_step.sh: $*" >&2; exit 1; }
. "$top/bench/cpu_step_lib.sh" # model, data, adapter; run_shardtune, run_hf
"$PY" -c 'import bitsandbytes' 2>/dev/null || die "$PY: no bitsandbytes (set SHARDTUNE_PYTHON)"
res="$dir/results-qlora.jsonl"
: >"$res"

Q4="--use_4bit_quantization True --use_nested_quant True --bnb_4bit_quant_type nf4 --bnb_4bit_compute_dtype float32"
for r in $(seq 1 "$ROUNDS"); do
    run_shardtune lora "$r" 0
    # shellcheck disable=SC2086
    run_shardtune qlora "$r" 0 $Q4
    run_hf qlora "$r" 0 --load_in_4bit
    run_hf lora "$r" 0
done

"$PY" - "$res" "$dir/bench_model.json" "$THREADS" "$STEPS" "$WARMUP" "$top/bench" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = json.load(open(sys.argv[2]))
threads, steps, warmup = sys.argv[3], sys.argv[4], sys.argv[5]
sys.path.insert(0, sys.argv[6])
from hf_lora_train import check_first_loss

def get(tool, variant, rnd):
    return next(x for x in rows if (x["tool"], x["variant"], x["round"]) == (tool, variant, rnd))

rounds = sorted({r["round"] for r in rows})
agree = True
for rnd in rounds:
    for v in ("qlora", "lora"):
        ok, line = check_first_loss(get("shardtune", v, rnd), get("hf", v, rnd))
        print(f"round {rnd}, {v}: {line}")
        agree = agree and ok
if not agree:
    sys.exit("cpu_qlora_step.sh: the tools' first-step losses disagree: no speed ratio")
print(f"model: hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, mlp {m['intermediate_size']}, vocab "
      f"{m['vocab_size']}: {m['n_parameters']:,} params; seq {m['seq']} x batch 4, LoRA r=8 alpha=16 all-linear, "
      f"qlora: nf4 nested, compute float32; {threads} threads, median of {steps} steps after {warmup} warm-up")
busy = 0.65 * 100 * int(threads)
print(f"{'round':<6} {'tool':<10} {'variant':<7} {'tokens/s':>9} {'peak RSS MiB':>13} {'CPU %':>6}")
ratios = {"shardtune qlora / shardtune lora": [], "shardtune qlora / hf qlora": [], "hf qlora / hf lora": []}
for rnd in rounds:
    for tool in ("shardtune", "hf"):
        for v in ("lora", "qlora"):
            r = get(tool, v, rnd)
            mark = "*" if r["cpu_percent"] < busy else " "
            print(f"{rnd:<6} {tool:<10} {v:<7} {r['tokens_per_second']:>9.1f} {r['peak_rss_kib'] / 1024:>13.0f} "
                  f"{r['cpu_percent']:>5}{mark}")
    tps = lambda t, v: get(t, v, rnd)["tokens_per_second"]
    ratios["shardtune qlora / shardtune lora"].append(tps("shardtune", "qlora") / tps("shardtune", "lora"))
    ratios["shardtune qlora / hf qlora"].append(tps("shardtune", "qlora") / tps("hf", "qlora"))
    ratios["hf qlora / hf lora"].append(tps("hf", "qlora") / tps("hf", "lora"))
for what, v in ratios.items():
    print(f"{what}: median {statistics.median(v):.2f}x over {len(v)} round(s) ({', '.join(f'{x:.2f}' for x in v)})")
print("(* a run that got less than 65 % of its cores: the machine was shared; its ratios are noise)")
EOF
