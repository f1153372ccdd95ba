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
PY=${SHARDTUNE_PYTHON:-$top/.venv/bin/python}
ST=${SHARDTUNE:-$top/_build/shardtune}
dir=${BENCH_DIR:-$top/runs/bench-cpu-lora}
THREADS=${THREADS:-$(nproc)}
STEPS=${STEPS:-10}
ROUNDS=${ROUNDS:-1}
CKPT=${CKPT:-0}
WARMUP=2
BATCH=4
SEQ=256
SEED=1 # both tools' data order

die() { echo "cpu_lora_step.sh: $*" >&2; exit 1; }
[ -x "$ST" ] || die "$ST: not built (make -C _build shardtune)"
"$PY" -c 'import torch, transformers, peft' 2>/dev/null ||
    die "$PY: no torch/transformers/peft (set SHARDTUNE_PYTHON)"

mkdir -p "$dir"
if [ ! -f "$dir/bench_model.json" ] || [ ! -f "$dir/model/model.safetensors" ] || [ ! -f "$dir/data.jsonl" ] ||
    [ ! -f "$dir/adapter/adapter_model.safetensors" ]; then
    "$PY" "$top/bench/make_bench_model.py" "$dir" --rows 256 --seq "$SEQ" --seed 0 >&2
fi

export OMP_NUM_THREADS="$THREADS"
res="$dir/results.jsonl"
: >"$res"

# measured OUTFILE CMD...: run CMD; write "PEAK_RSS_KIB CPU_PERCENT" to OUTFILE.  CPU
# percent (user+sys over wall) shows how much of the THREADS cores the run really
# got: on a shared 2-core machine other people's builds take their share.
measured() {
    out=$1
    shift
    if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then
        /usr/bin/time -v -o "$out.time" "$@"
        echo "$(sed -n 's/.*Maximum resident set size (kbytes): *//p' "$out.time")" \
            "$(sed -n 's/.*Percent of CPU this job got: *\([0-9]*\)%.*/\1/p' "$out.time")" >"$out"
    else
        "$PY" -c 'import resource, subprocess, sys, time
t = time.monotonic()
rc = subprocess.call(sys.argv[2:])
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
cpu = 100.0 * (ru.ru_utime + ru.ru_stime) / (time.monotonic() - t)
open(sys.argv[1], "w").write("%d %d\n" % (ru.ru_maxrss, cpu))
sys.exit(rc)' "$out" "$@"
    fi
}

run_shardtune() { # ROUND CKPT
    o="$dir/out-shardtune-r$1-ckpt$2"
    rm -rf "$o"
    gc=False
    [ "$2" = 1 ] && gc=True
    echo "[round $1, checkpointing $gc] shardtune: $((WARMUP + STEPS)) steps ..." >&2
    measured "$dir/rss-shardtune" "$ST" train --model_name_or_path "$dir/model" --dataset_name "$dir/data.jsonl" \
        --max_seq_len "$SEQ" --output_dir "$o" --per_device_train_batch_size "$BATCH" \
        --gradient_accumulation_steps 1 --learning_rate 1e-4 --max_steps $((WARMUP + STEPS)) --logging_steps 1 \
        --use_peft_lora True --adapter "$dir/adapter" \
        --lr_scheduler_type constant --seed "$SEED" --gradient_checkpointing "$gc" >"$o.log" 2>&1 ||
        { tail -5 "$o.log" >&2; die "shardtune failed (log: $o.log)"; }
    "$PY" - "$o/metrics.jsonl" "$WARMUP" "$(cat "$dir/rss-shardtune")" "$1" "$2" >>"$res" <<'EOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
w = int(sys.argv[2])
tps = [r["tokens_per_second"] for r in rows[w:]]
rss, cpu = sys.argv[3].split()
print(json.dumps({"tool": "shardtune", "round": int(sys.argv[4]), "ckpt": int(sys.argv[5]),
                  "tokens_per_second": statistics.median(tps), "tokens_per_second_steps": tps,
                  "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"],
                  "peak_rss_kib": int(rss), "cpu_percent": int(cpu)}))
EOF
}

run_hf() { # ROUND CKPT
    gcflag= gc=False
    [ "$2" = 1 ] && gcflag=--gradient_checkpointing gc=True
    echo "[round $1, checkpointing $gc] transformers+peft: $((WARMUP + STEPS)) steps ..." >&2
    measured "$dir/rss-hf" "$PY" "$top/bench/hf_lora_train.py" --model "$dir/model" --data "$dir/data.jsonl" \
        --steps "$STEPS" --warmup "$WARMUP" --batch "$BATCH" --seq "$SEQ" --adapter "$dir/adapter" \
        --threads "$THREADS" --seed "$SEED" $gcflag --json >"$dir/hf.json" 2>"$dir/hf.log" ||
        { tail -5 "$dir/hf.log" >&2; die "hf_lora_train.py failed (log: $dir/hf.log)"; }
    "$PY" - "$dir/hf.json" "$(cat "$dir/rss-hf")" "$1" "$2" >>"$res" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
rss, cpu = sys.argv[2].split()
r.update(round=int(sys.argv[3]), ckpt=int(sys.argv[4]), peak_rss_kib=int(rss), cpu_percent=int(cpu))
print(json.dumps(r))
EOF
}

modes=0
[ "$CKPT" = 1 ] && modes="0 1"
for r in $(seq 1 "$ROUNDS"); do
    for c in $modes; do
        run_shardtune "$r" "$c"
        run_hf "$r" "$c"
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
