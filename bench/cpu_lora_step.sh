#!/bin/bash
# cpu_lora_step.sh: CPU LoRA training throughput, shardtune vs its peer
# (transformers LlamaForCausalLM sdpa + peft LoRA + torch AdamW, bench/hf_lora_train.py),
# all in this one invocation, on the same random ~20M-parameter Llama
# (bench/make_bench_model.py): seq 256, micro-batch 4, LoRA r=8 alpha=16 on all
# seven linear layers, dropout 0, the same number of threads for both, in two
# precisions, each with gradient checkpointing off and on:
#   fp32: shardtune             vs the peer in fp32;
#   bf16: shardtune --bf16 True vs the peer under torch.autocast("cpu", bfloat16),
#         what Trainer(bf16=True) runs on the CPU (where the CPU has no bf16
#         instructions shardtune computes in fp32, and the script says so).
# Then, in the same invocation: the GEMM ceiling of shardtune's library on the
# step's shapes (bench/gemm_ceiling: the linear layers' and lm_head's products)
# and where a step's time goes (SHARDTUNE_PROFILE=1, 4 steps per precision):
# the ops' shares, and shardtune's model FLOP rate as a share of the ceiling.
# Both take the same rows in the same order (shardtune's seeded sampler, which
# hf_lora_train.py follows) and start from the same adapter (make_bench_model.py's
# $BENCH_DIR/adapter, B not zero), so they compute the same first step: their
# first-step losses must agree (hf_lora_train.py FIRST_LOSS_RTOL: 1e-5 in fp32,
# 1e-4 in bf16) before any speed is printed; otherwise the script prints both
# losses and exits 1 without a ratio.
#
#   bench/cpu_lora_step.sh                       # fp32 and bf16, checkpointing off and on
#   ROUNDS=3 PRECISIONS=fp32 CKPT=0 bench/cpu_lora_step.sh
#
# Environment:
#   SHARDTUNE_PYTHON  Python with torch, transformers, peft  (default $top/.venv/bin/python)
#   SHARDTUNE         the binary                             (default $top/_build/shardtune)
#   GEMM_CEILING      bench/gemm_ceiling                     (default: bench/ beside the binary)
#   BENCH_DIR         model, data and outputs                (default $top/runs/bench-cpu-lora)
#   THREADS           OMP_NUM_THREADS and torch.set_num_threads (default: nproc)
#   STEPS             timed steps per run, after 2 warm-up steps (default 10)
#   ROUNDS            shardtune,HF pairs run back to back; the table shows each round
#                     and the median ratio (default 1)
#   PRECISIONS        "fp32 bf16" (default), or one of them
#   CKPT              "0 1" (default): checkpointing off and on; 0 or 1: that one only
#
# tokens/s is the median over the timed steps of batch*seq / step time; each tool
# times its own steps (shardtune: metrics.jsonl "tokens_per_second" with
# --logging_steps 1; HF: perf_counter around forward+backward+clip+step).  Peak RSS
# is the whole process's (/usr/bin/time -v, else getrusage of the child); CPU % is
# user+sys over wall for the whole process: a run far below THREADS*100 shared the
# cores with something else (marked *, and left out of the "not starved" median).
# The load average (uptime) is printed from before and after: on a shared machine
# only ratios measured in one invocation mean much.
# Both tools clip the gradient norm to 1.0 (shardtune's default --max_grad_norm).
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
STEPS=${STEPS:-10}
CKPT=${CKPT:-0 1}
PRECISIONS=${PRECISIONS:-fp32 bf16}
WARMUP=2
die() { echo "cpu_lora_step.sh: $*" >&2; exit 1; }
. "$top/bench/cpu_step_lib.sh" # model, data, adapter; run_shardtune, run_hf
CEIL=${GEMM_CEILING:-$(dirname "$ST")/bench/gemm_ceiling}
[ -x "$CEIL" ] || die "$CEIL: not built (make -C _build bench/gemm_ceiling)"
res="$dir/results.jsonl"
: >"$res"
echo "load before: $(uptime)" >"$dir/load.txt"

for r in $(seq 1 "$ROUNDS"); do
    for p in $PRECISIONS; do
        for c in $CKPT; do
            if [ "$p" = bf16 ]; then
                run_shardtune bf16 "$r" "$c" --bf16 True
                run_hf bf16 "$r" "$c" --autocast
            else
                run_shardtune fp32 "$r" "$c"
                run_hf fp32 "$r" "$c"
            fi
        done
    done
done

# The GEMM ceiling on this model's shapes: batch x seq tokens, lm_head in the
# CPU backend's chunks of rows (XENT_CHUNK_ROWS).
read -r hidden kv inter vocab < <("$PY" -c 'import json, sys
m = json.load(open(sys.argv[1]))
print(m["hidden_size"], m["hidden_size"] // m["num_attention_heads"] * m["num_key_value_heads"],
      m["intermediate_size"], m["vocab_size"])' "$dir/bench_model.json")
echo "GEMM ceiling on the step's shapes ..." >&2
"$CEIL" $((BATCH * SEQ)) "$hidden" "$kv" "$inter" "$vocab" 256 >"$dir/gemm_ceiling.txt"

# Where a step's time goes: 4 steps under SHARDTUNE_PROFILE=1 per precision.
for p in $PRECISIONS; do
    flag=False
    [ "$p" = bf16 ] && flag=True
    echo "profile of shardtune $p: 4 steps ..." >&2
    SHARDTUNE_PROFILE=1 "$ST" train --model_name_or_path "$dir/model" --dataset_name "$dir/data.jsonl" \
        --max_seq_len "$SEQ" --output_dir "$dir/out-profile-$p" --per_device_train_batch_size "$BATCH" \
        --max_steps 4 --use_peft_lora True --adapter "$dir/adapter" --seed "$SEED" --bf16 $flag \
        >"$dir/profile-$p.log" 2>&1 || { tail -5 "$dir/profile-$p.log" >&2; die "profile run failed"; }
done
echo "load after:  $(uptime)" >>"$dir/load.txt"
fallback=$(grep -h "compute stays fp32" "$dir"/out-shardtune-bf16-*.log 2>/dev/null | head -1 || true)
[ -z "$fallback" ] || echo "shardtune --bf16 computed in fp32 here: $fallback"

"$PY" - "$res" "$dir/bench_model.json" "$THREADS" "$STEPS" "$WARMUP" "$top/bench" "$dir" <<'EOF'
import json, re, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
m = json.load(open(sys.argv[2]))
threads, steps, warmup, d = sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[7]
sys.path.insert(0, sys.argv[6])
from hf_lora_train import check_first_loss

# The same step first: a speed ratio of two tools that compute different steps means nothing.
agree = True
keys = sorted({(r["variant"], r["ckpt"], r["round"]) for r in rows})
for k in keys:
    st, hf = (next(x for x in rows if (x["variant"], x["ckpt"], x["round"]) == k and x["tool"] == t)
              for t in ("shardtune", "hf"))
    ok, line = check_first_loss(st, hf)
    print(f"{k[0]}, ckpt {'on' if k[1] else 'off'}, round {k[2]}: {line}")
    agree = agree and ok
if not agree:
    sys.exit("cpu_lora_step.sh: the tools' first-step losses disagree: no speed ratio")
print(f"model: hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, heads {m['num_attention_heads']}/"
      f"{m['num_key_value_heads']} kv, mlp {m['intermediate_size']}, vocab {m['vocab_size']}: "
      f"{m['n_parameters']:,} params; seq {m['seq']} x batch 4, LoRA r=8 alpha=16 all-linear, "
      f"{threads} threads, median of {steps} steps after {warmup} warm-up")
print(open(f"{d}/load.txt").read().rstrip())
ceil_text = open(f"{d}/gemm_ceiling.txt").read()
ceiling = {p: float(v) for p, v in re.findall(r"ceiling (\w+) GFLOPS ([0-9.]+)", ceil_text)}
print(ceil_text.splitlines()[0])
print("GEMM ceiling on the step's shapes (GFLOP/s, bench/gemm_ceiling): "
      + ", ".join(f"{p} {v:.0f}" for p, v in ceiling.items()))
print(f"{'prec':<5} {'ckpt':<5} {'round':<6} {'tool':<10} {'tokens/s':>9} {'peak RSS MiB':>13} {'CPU %':>6} "
      f"{'shardtune/HF':>13} {'model GFLOP/s':>14}")
# A run that got less than 65% of THREADS cores (user+sys over the whole process
# life, model loading included) shared the machine with someone else: marked *.
busy = 0.65 * 100 * int(threads)
flops_tok = next(r["model_flops_per_token"] for r in rows if r["tool"] == "hf")
summary = []
precs = [p for p in ("fp32", "bf16") if any(r["variant"] == p for r in rows)]
for prec in precs:
    for ckpt in sorted({r["ckpt"] for r in rows if r["variant"] == prec}):
        ratios, clean, st_rates, best = [], [], [], {"shardtune": 0.0, "hf": 0.0}
        g = "on" if ckpt else "off"
        for rnd in sorted({r["round"] for r in rows if (r["variant"], r["ckpt"]) == (prec, ckpt)}):
            st, hf = (next(r for r in rows if (r["variant"], r["ckpt"], r["round"], r["tool"]) == (prec, ckpt, rnd, t))
                      for t in ("shardtune", "hf"))
            ratio = st["tokens_per_second"] / hf["tokens_per_second"]
            ratios.append(ratio)
            for r in (st, hf):
                best[r["tool"]] = max(best[r["tool"]], r["tokens_per_second"])
            st_rates.append(st["tokens_per_second"] * flops_tok / 1e9)
            if st["cpu_percent"] >= busy and hf["cpu_percent"] >= busy:
                clean.append(ratio)
            for name, r, col in (("shardtune", st, f"{ratio:>12.2f}x"), ("hf+peft", hf, " " * 13)):
                mark = "*" if r["cpu_percent"] < busy else " "
                print(f"{prec:<5} {g:<5} {rnd:<6} {name:<10} {r['tokens_per_second']:>9.0f} "
                      f"{r['peak_rss_kib'] / 1024:>13.0f} {r['cpu_percent']:>5}{mark} {col} "
                      f"{r['tokens_per_second'] * flops_tok / 1e9:>14.1f}")
        line = f"{prec}, ckpt {g}: shardtune/HF median {statistics.median(ratios):.2f}x over {len(ratios)} round(s)"
        if len(ratios) > 1:
            # a neighbour's load only ever slows a run: each tool's fastest
            # round is the nearest to its unstarved speed
            line += (f" (min {min(ratios):.2f}, max {max(ratios):.2f}; fastest round of each: "
                     f"{best['shardtune'] / best['hf']:.2f}x)")
        if len(clean) != len(ratios):
            line += (f"; over the {len(clean)} round(s) where neither run was starved (*): "
                     + (f"{statistics.median(clean):.2f}x" if clean else "none"))
        if prec in ceiling:
            rate = statistics.median(st_rates)
            line += f"; shardtune {rate:.0f} model GFLOP/s = {100 * rate / ceiling[prec]:.0f}% of the {prec} GEMM ceiling"
        summary.append(line)
for line in summary:
    print(line)
for prec in precs:
    prof = open(f"{d}/profile-{prec}.log").read()
    # "  matmul (thin)      1344      0.2222   10.3%": a name may hold a space
    ops = {o: float(s) for o, s in re.findall(r"^  (\S.*?)\s+\d+\s+[0-9.]+\s+([0-9.]+)%\s*$", prof, re.M)}
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:6]
    print(f"shardtune {prec} profile (share of op time, 4 steps, ckpt off): "
          + ", ".join(f"{o} {s:.1f}%" for o, s in top))
print("(lm_head_xent and attention_* run matrix products of their own; matmul is the linear layers' "
      "full-size products, matmul (thin) their adapters')")
print("target: shardtune >= 1.8x HF tokens/s in fp32 and in bf16, checkpointing on and off")
EOF
