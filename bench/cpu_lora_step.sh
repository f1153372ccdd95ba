#!/bin/bash
# cpu_lora_step.sh: CPU LoRA training throughput, shardtune vs its peer
# (transformers LlamaForCausalLM sdpa + peft LoRA + torch AdamW, bench/hf_lora_train.py),
# both in this one invocation, on the same random ~20M-parameter Llama
# (bench/make_bench_model.py): seq 256, micro-batch 4, LoRA r=8 alpha=16 on all
# seven linear layers, dropout 0, fp32, the same number of threads for both.
# Both take the same rows in the same order (shardtune's seeded sampler, which
# hf_lora_train.py follows) and start from the same adapter (make_bench_model.py's
# $BENCH_DIR/adapter, B not zero), so they compute the same first step: their
# first-step losses must agree to 1e-5 relative (hf_lora_train.py
# FIRST_LOSS_RTOL) before any speed is printed; otherwise the script prints
# both losses and exits 1 without a ratio.
#
#   bench/cpu_lora_step.sh            # one round, no gradient checkpointing
#   ROUNDS=3 CKPT=1 bench/cpu_lora_step.sh
#
# Environment:
#   SHARDTUNE_PYTHON  Python with torch, transformers, peft  (default $top/.venv/bin/python)
#   SHARDTUNE         the binary                             (default $top/_build/shardtune)
#   BENCH_DIR         model, data and outputs                (default $top/runs/bench-cpu-lora)
#   THREADS           OMP_NUM_THREADS and torch.set_num_threads (default: nproc)
#   STEPS             timed steps per run, after 2 warm-up steps (default 10)
#   ROUNDS            shardtune,HF pairs run back to back; the table shows each round
#                     and the median ratio (default 1)
#   CKPT              1: also a row with gradient checkpointing for both (default 0)
#
# tokens/s is the median over the timed steps of batch*seq / step time; each tool
# times its own steps (shardtune: metrics.jsonl "tokens_per_second" with
# --logging_steps 1; HF: perf_counter around forward+backward+clip+step).  Peak RSS
# is the whole process's (/usr/bin/time -v, else getrusage of the child); CPU % is
# user+sys over wall for the whole process: a run far below THREADS*100 shared the
# cores with something else (marked *, and left out of the "not starved" median).
# Both tools clip the gradient norm to 1.0 (shardtune's default --max_grad_norm).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${STEPS:-10}
CKPT=${CKPT:-0}
WARMUP=2
die() { echo "cpu_lora_step.sh: $*" >&2; exit 1; }
. "$top/bench/cpu_step_lib.sh" # model, data, adapter; run_shardtune, run_hf
res="$dir/results.jsonl"
: >"$res"

modes=0
[ "$CKPT" = 1 ] && modes="0 1"
for r in $(seq 1 "$ROUNDS"); do
    for c in $modes; do
        run_shardtune lora "$r" "$c"
        run_hf lora "$r" "$c"
    done
done

"$PY" - "$res" "$dir/bench_model.json" "$THREADS" "$STEPS" "$WARMUP" "$top/bench" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = json.load(open(sys.argv[2]))
threads, steps, warmup = sys.argv[3], sys.argv[4], sys.argv[5]
sys.path.insert(0, sys.argv[6])
from hf_lora_train import check_first_loss

# The same step first: a speed ratio of two tools that compute different steps means nothing.
agree = True
for r in sorted({(r["ckpt"], r["round"]) for r in rows}):
    st, hf = (next(x for x in rows if (x["ckpt"], x["round"]) == r and x["tool"] == t) for t in ("shardtune", "hf"))
    ok, line = check_first_loss(st, hf)
    print(f"ckpt {'on' if r[0] else 'off'}, round {r[1]}: {line}")
    agree = agree and ok
if not agree:
    sys.exit("cpu_lora_step.sh: the tools' first-step losses disagree: no speed ratio")
print(f"model: hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, heads {m['num_attention_heads']}/"
      f"{m['num_key_value_heads']} kv, mlp {m['intermediate_size']}, vocab {m['vocab_size']}: "
      f"{m['n_parameters']:,} params; seq {m['seq']} x batch 4, LoRA r=8 alpha=16 all-linear, fp32, "
      f"{threads} threads, median of {steps} steps after {warmup} warm-up")
print(f"{'ckpt':<5} {'round':<6} {'tool':<10} {'tokens/s':>9} {'peak RSS MiB':>13} {'CPU %':>6} {'shardtune/HF':>13}")
# A run that got less than 65% of THREADS cores (user+sys over the whole process
# life, model loading included) shared the machine with someone else: marked *.
busy = 0.65 * 100 * int(threads)
for ckpt in sorted({r["ckpt"] for r in rows}):
    ratios, clean = [], []
    g = "on" if ckpt else "off"
    for rnd in sorted({r["round"] for r in rows if r["ckpt"] == ckpt}):
        st = next(r for r in rows if r["ckpt"] == ckpt and r["round"] == rnd and r["tool"] == "shardtune")
        hf = next(r for r in rows if r["ckpt"] == ckpt and r["round"] == rnd and r["tool"] == "hf")
        ratio = st["tokens_per_second"] / hf["tokens_per_second"]
        ratios.append(ratio)
        if st["cpu_percent"] >= busy and hf["cpu_percent"] >= busy:
            clean.append(ratio)
        for name, r, col in (("shardtune", st, f"{ratio:>12.2f}x"), ("hf+peft", hf, "")):
            mark = "*" if r["cpu_percent"] < busy else " "
            print(f"{g:<5} {rnd:<6} {name:<10} {r['tokens_per_second']:>9.0f} {r['peak_rss_kib'] / 1024:>13.0f} "
                  f"{r['cpu_percent']:>5}{mark} {col}")
    line = f"ckpt {g}: shardtune/HF median {statistics.median(ratios):.2f}x over {len(ratios)} round(s)"
    if len(ratios) > 1:
        line += f" (min {min(ratios):.2f}, max {max(ratios):.2f})"
    if len(clean) != len(ratios):
        line += (f"; over the {len(clean)} round(s) where neither run was starved (*): "
                 + (f"{statistics.median(clean):.2f}x" if clean else "none"))
    print(line)
print("target: shardtune >= 1.5x HF tokens/s")
EOF
