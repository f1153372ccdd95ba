#!/bin/bash
# gpu_lora_step.sh: LoRA training throughput, MFU and peak memory on one GPU, shardtune
# vs its peer (transformers LlamaForCausalLM sdpa + peft LoRA + torch AdamW,
# bench/hf_lora_train.py), both in this one invocation, on the same random Llama
# (bench/make_bench_model.py --preset 1b: TinyLlama-1.1B's shapes, bf16 weights) and
# the same token rows: seq 2048, micro-batch 4, LoRA r=8 alpha=16 dropout 0 on all
# seven linear layers, gradient checkpointing, AdamW lr 1e-4 constant, clip 1.0.
# Both take the same rows in the same order (shardtune's seeded sampler, which
# hf_lora_train.py follows) and start from the same adapter (make_bench_model.py's
# $BENCH_DIR/adapter, B not zero), so they compute the same first step: their
# first-step losses must agree (hf_lora_train.py FIRST_LOSS_RTOL: 1e-5 relative in
# float32; 1e-4 in bfloat16, where the peer rounds every activation to bf16: that
# catches a different initialisation, and DTYPE=float32 checks the data order)
# before the table is printed; otherwise the script prints both losses and exits 1
# without a table or a ratio.
#
#   bench/gpu_lora_step.sh                           # the H200 run: 1b, cuda, bf16
#   DEVICE=cpu PRESET=tiny bench/gpu_lora_step.sh    # the same script on a CPU, in ~1 minute
#
# Environment:
#   SHARDTUNE_PYTHON  Python with torch, transformers, peft (default $top/.venv/bin/python,
#                     else python3)
#   SHARDTUNE         the binary                              (default $top/_build/shardtune)
#   DEVICE            cuda | cpu                              (default cuda)
#   PRESET            1b | tiny | default (make_bench_model.py --preset; default 1b)
#   DTYPE             bfloat16 | float32 (default bfloat16 on cuda, float32 on cpu): the HF
#                     peer's --dtype; shardtune gets --bf16 True when bfloat16
#   BENCH_DIR         model, data and outputs     (default $top/runs/bench-gpu-lora-$PRESET)
#   BATCH, SEQ        micro-batch and tokens per row (default 4 and 2048 for 1b, 4 and 128
#                     for tiny, 4 and 256 for default)
#   STEPS, WARMUP     timed steps, after warm-up steps (default 10, and 3 on cuda, 2 on cpu)
#   ROWS              dataset rows (default 64; both tools cycle through them)
#   CKPT              1: gradient checkpointing for both (default 1), 0: off
#   THREADS           OMP_NUM_THREADS and torch.set_num_threads (default: nproc)
#   GEMM_PEAK_TFLOPS  the peak MFU divides by, in TFLOP/s (e.g. the bf16 GEMM peak that
#                     another program measured); unset: measured here by
#                     bench/lora_flops.py gemm-peak (torch bf16 8192^3 matmul on cuda, best
#                     of 5x20; fp32 2048^3 on cpu), printed as "torch bf16 matmul peak"
#   TOOL_TIMEOUT      seconds each tool may run before it is killed (default 300)
#   MPIRUN            prefix for shardtune, e.g. "mpirun -np 1 --allow-run-as-root"
#                     (default none: run directly, as cpu_lora_step.sh does)
#   ST_DEVICE_FLAGS   shardtune's device flags (default "--device $DEVICE", plus
#                     "--bf16 True" when DTYPE is bfloat16); set it empty to try a
#                     shardtune that has no --device flag yet on the CPU
#
# tokens/s is the median over the timed steps of batch*seq / step time; each tool times
# its own steps (shardtune: metrics.jsonl "tokens_per_second" with --logging_steps 1;
# HF: perf_counter around forward+backward+clip+step, torch.cuda.synchronize() at both
# ends).  Peak GPU memory (the table): what each tool's allocator took from the device,
# shardtune's summary.json "allocator_peak_bytes" of rank 0 (its caching allocator) and
# HF's torch.cuda.max_memory_reserved(); a line above the table gives the memory in use
# (shardtune's "peak_total_bytes", torch's max_memory_allocated()).  Neither counts the
# CUDA context.  On
# DEVICE=cpu the column is each process's peak RSS instead (/usr/bin/time -v).
#
# MFU = model_flops_per_token * tokens/s / peak, with model FLOPs as PaLM defines them
# for MFU (Chowdhery et al. 2022, app. B): the FLOPs the step needs, without the forward
# that gradient checkpointing recomputes.  For LoRA on frozen weights (bench/lora_flops.py
# computes it, hf_lora_train.py reports the same number):
#   model_flops_per_token = 4*P_linear + 6*P_lora + 6*L*S*d_attn
#   P_linear  every frozen matmul weight: L*(q+k+v+o+gate+up+down) + lm_head (hidden*vocab);
#             the embedding is a lookup (0 FLOPs).  Forward 2*P_linear + backward of the
#             inputs 2*P_linear; a frozen weight gets no weight gradient (full fine-tuning:
#             the usual 6*N).
#   P_lora    r*(d_in+d_out) summed over the adapted layers: forward, input and weight
#             gradient, 6 per parameter.
#   attention QK^T and PV, 2*S*d_attn FLOPs each per token (d_attn = heads*head_dim),
#             halved for the causal mask, backward twice the forward: 6*L*S*d_attn.
#             PaLM's 12*L*H*Q*T counts the full S; lora_flops.py's
#             model_flops_per_token_palm_attn gives that variant.
# For the 1b preset at seq 2048, r 8: P_linear 1,034,420,224, P_lora 6,307,840,
# 4.729 GFLOP per token (5.283 with PaLM's attention term; checkpointing recomputes
# another 2.135 that MFU does not count).  Both tools get the same count, so the MFU
# ratio is the tokens/s ratio.
#
# The last lines are a table; a tool that fails (shardtune's CUDA backend is being
# written) gets the row "failed (see LOG)", the other still runs, and the script exits 1.
set -u

top=$(cd "$(dirname "$0")/.." && pwd)
PY=${SHARDTUNE_PYTHON:-$top/.venv/bin/python}
[ -n "${SHARDTUNE_PYTHON:-}" ] || [ -x "$PY" ] || PY=python3
ST=${SHARDTUNE:-$top/_build/shardtune}
DEVICE=${DEVICE:-cuda}
PRESET=${PRESET:-1b}
die() { echo "gpu_lora_step.sh: $*" >&2; exit 2; }

case $DEVICE in
cuda) DTYPE=${DTYPE:-bfloat16} WARMUP=${WARMUP:-3} ;;
cpu) DTYPE=${DTYPE:-float32} WARMUP=${WARMUP:-2} ;;
*) die "DEVICE=$DEVICE: cuda or cpu" ;;
esac
case $PRESET in
1b) BATCH=${BATCH:-4} SEQ=${SEQ:-2048} ;;
tiny) BATCH=${BATCH:-4} SEQ=${SEQ:-128} ;;
default) BATCH=${BATCH:-4} SEQ=${SEQ:-256} ;;
*) die "PRESET=$PRESET: 1b, tiny or default" ;;
esac
case $DTYPE in bfloat16 | float32) ;; *) die "DTYPE=$DTYPE: bfloat16 or float32" ;; esac
dir=${BENCH_DIR:-$top/runs/bench-gpu-lora-$PRESET}
STEPS=${STEPS:-10}
ROWS=${ROWS:-64}
CKPT=${CKPT:-1}
THREADS=${THREADS:-$(nproc)}
TOOL_TIMEOUT=${TOOL_TIMEOUT:-300}
MPIRUN=${MPIRUN:-}
LORA_R=8 # make_bench_model.py's adapter (LORA), for the FLOP count
SEED=1   # both tools' data order
default_flags="--device $DEVICE"
[ "$DTYPE" = bfloat16 ] && default_flags="$default_flags --bf16 True"
ST_DEVICE_FLAGS=${ST_DEVICE_FLAGS-$default_flags}

"$PY" -c 'import torch, transformers, peft' 2>/dev/null ||
    die "$PY: no torch/transformers/peft (set SHARDTUNE_PYTHON)"
mkdir -p "$dir" || die "$dir: cannot create"

# The model and data, made once per (preset, rows, seq): 1b takes ~10-20 s and 2.2 GB.
if ! "$PY" - "$dir" "$PRESET" "$ROWS" "$SEQ" 2>/dev/null <<'EOF'
import json, os, sys
d = sys.argv[1]
m = json.load(open(f"{d}/bench_model.json"))
want = (sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), 0)
ok = (m.get("preset", "default"), m["rows"], m["seq"], m["seed"]) == want
files = ("model/model.safetensors", "data.jsonl", "adapter/adapter_model.safetensors")
sys.exit(0 if ok and all(os.path.isfile(f"{d}/{f}") for f in files) else 1)
EOF
then
    echo "making the $PRESET model and $ROWS rows x $SEQ tokens in $dir ..." >&2
    "$PY" "$top/bench/make_bench_model.py" "$dir" --preset "$PRESET" --rows "$ROWS" --seq "$SEQ" --seed 0 >&2 ||
        die "make_bench_model.py failed"
fi

export OMP_NUM_THREADS="$THREADS"

# model FLOPs per token (the header's count) and the peak they are divided by
"$PY" "$top/bench/lora_flops.py" flops "$dir/model" --seq "$SEQ" --lora_r "$LORA_R" >"$dir/flops.json" ||
    die "lora_flops.py flops failed"
if [ -n "${GEMM_PEAK_TFLOPS:-}" ]; then
    printf '{"tflops": %s, "what": "GEMM_PEAK_TFLOPS (given)"}\n' "$GEMM_PEAK_TFLOPS" >"$dir/peak.json"
else
    echo "measuring the $DTYPE matmul peak on $DEVICE ..." >&2
    "$PY" "$top/bench/lora_flops.py" gemm-peak --device "$DEVICE" --dtype "$DTYPE" --threads "$THREADS" \
        >"$dir/peak.json" 2>"$dir/peak.log" ||
        { tail -3 "$dir/peak.log" >&2; echo '{"tflops": null, "what": "matmul peak: failed"}' >"$dir/peak.json"; }
fi

# measured OUTFILE CMD...: run CMD under `timeout TOOL_TIMEOUT`; write its peak RSS in KiB
# to OUTFILE; return CMD's status (124: timed out).
measured() {
    out=$1
    shift
    if [ -x /usr/bin/time ] && /usr/bin/time -v true 2>/dev/null; then
        /usr/bin/time -v -o "$out.time" timeout -k 20 "$TOOL_TIMEOUT" "$@"
        rc=$?
        sed -n 's/.*Maximum resident set size (kbytes): *//p' "$out.time" >"$out"
        return $rc
    fi
    "$PY" -c 'import resource, subprocess, sys
rc = subprocess.call(sys.argv[2:])
open(sys.argv[1], "w").write("%d\n" % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)' "$out" timeout -k 20 "$TOOL_TIMEOUT" "$@"
}

gc=False gcflag=
[ "$CKPT" = 1 ] && gc=True gcflag=--gradient_checkpointing

# (a) shardtune: cpu_lora_step.sh's flags plus the device flags
st_out="$dir/out-shardtune"
st_log="$dir/shardtune.log"
run_shardtune() {
    [ -x "$ST" ] || { echo "$ST: not built (make -C _build shardtune)" >"$st_log"; return 1; }
    # shellcheck disable=SC2086 # MPIRUN and ST_DEVICE_FLAGS are lists of words
    measured "$dir/rss-shardtune" $MPIRUN "$ST" train $ST_DEVICE_FLAGS \
        --model_name_or_path "$dir/model" --dataset_name "$dir/data.jsonl" \
        --max_seq_len "$SEQ" --output_dir "$st_out" --per_device_train_batch_size "$BATCH" \
        --gradient_accumulation_steps 1 --learning_rate 1e-4 --max_steps $((WARMUP + STEPS)) --logging_steps 1 \
        --use_peft_lora True --adapter "$dir/adapter" \
        --lr_scheduler_type constant --seed "$SEED" --gradient_checkpointing "$gc" >"$st_log" 2>&1 || return 1
    "$PY" - "$st_out" "$WARMUP" "$(cat "$dir/rss-shardtune")" "$DEVICE" "$DTYPE" >"$dir/shardtune.json" \
        2>>"$st_log" <<'EOF'
import json, os, statistics, sys
o, w, rss = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [json.loads(l) for l in open(f"{o}/metrics.jsonl") if l.strip()]
tps = [r["tokens_per_second"] for r in rows[w:]]
peak = held = rows[-1]["peak_bytes"]
if os.path.isfile(f"{o}/summary.json"):
    r0 = json.load(open(f"{o}/summary.json"))["ranks"][0]
    peak, held = r0["peak_total_bytes"], r0.get("allocator_peak_bytes", r0["peak_total_bytes"])
print(json.dumps({"tool": "shardtune", "device": sys.argv[4], "dtype": sys.argv[5],
                  "tokens_per_second": statistics.median(tps), "tokens_per_second_steps": tps,
                  "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"],
                  "peak_device_bytes": peak, "peak_held_bytes": held, "peak_rss_kib": rss}))
EOF
}

# (b) the HF peer: the same model, rows in the same order, batch, seq, initial adapter
hf_log="$dir/hf.log"
run_hf() {
    # shellcheck disable=SC2086 # gcflag is empty or one word
    measured "$dir/rss-hf" "$PY" "$top/bench/hf_lora_train.py" --model "$dir/model" --data "$dir/data.jsonl" \
        --device "$DEVICE" --dtype "$DTYPE" --steps "$STEPS" --warmup "$WARMUP" --batch "$BATCH" --seq "$SEQ" \
        --adapter "$dir/adapter" --threads "$THREADS" --seed "$SEED" $gcflag --json \
        >"$dir/hf.out" 2>"$hf_log" || return 1
    "$PY" - "$dir/hf.out" "$(cat "$dir/rss-hf")" >"$dir/hf.json" 2>>"$hf_log" <<'EOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
r["peak_rss_kib"] = int(sys.argv[2])  # the whole process's, measured as for shardtune
r["peak_device_bytes"] = r.get("peak_gpu_bytes")
r["peak_held_bytes"] = r.get("peak_gpu_reserved_bytes")
print(json.dumps(r))
EOF
}

rm -rf "$st_out" "$dir/shardtune.json" "$dir/hf.json"
st_ok=1 hf_ok=1
echo "shardtune on $DEVICE (${ST_DEVICE_FLAGS:-no device flags}): $((WARMUP + STEPS)) steps ..." >&2
run_shardtune || { st_ok=0; rm -f "$dir/shardtune.json"; tail -5 "$st_log" >&2; echo "shardtune failed (log: $st_log)" >&2; }
echo "transformers+peft on $DEVICE ($DTYPE): $((WARMUP + STEPS)) steps ..." >&2
run_hf || { hf_ok=0; rm -f "$dir/hf.json"; tail -5 "$hf_log" >&2; echo "hf_lora_train.py failed (log: $hf_log)" >&2; }

"$PY" - "$dir" "$DEVICE" "$DTYPE" "$BATCH" "$SEQ" "$STEPS" "$WARMUP" "$gc" "$st_log" "$hf_log" "$top/bench" <<'EOF'
import json, os, sys
d, device, dtype, batch, seq, steps, warmup, gc, st_log, hf_log, bench = sys.argv[1:]
load = lambda name: json.load(open(f"{d}/{name}")) if os.path.isfile(f"{d}/{name}") else None
m, fl, pk = load("bench_model.json"), load("flops.json"), load("peak.json")
st, hf = load("shardtune.json"), load("hf.json")
sys.path.insert(0, bench)
from hf_lora_train import check_first_loss

# The same step first: a speed ratio of two tools that compute different steps means nothing.
if st and hf:
    ok, line = check_first_loss(st, hf)
    print(line)
    if not ok:
        sys.exit("gpu_lora_step.sh: the tools' first-step losses disagree: no table, no ratio")
F = fl["model_flops_per_token"]
peak = pk["tflops"] * 1e12 if pk.get("tflops") else None
print(f"model: {m.get('preset', 'default')} preset, hidden {m['hidden_size']}, {m['num_hidden_layers']} layers, "
      f"heads {m['num_attention_heads']}/{m['num_key_value_heads']} kv, mlp {m['intermediate_size']}, "
      f"vocab {m['vocab_size']}: {m['n_parameters']:,} params ({m.get('dtype', 'float32')} on disk)")
print(f"step: batch {batch} x seq {seq}, LoRA r=8 alpha=16 all-linear, gradient checkpointing {gc}, "
      f"{device} {dtype}, median of {steps} steps after {warmup} warm-up")
print(f"model FLOPs/token {F / 1e9:.4f} G (4*P_linear + 6*P_lora + 6*L*S*d_attn, no recompute); peak: "
      + (f"{pk['tflops']:.4g} TFLOP/s, {pk['what']}" if peak else f"unknown ({pk['what']}): no MFU"))
if hf and hf.get("model_flops_per_token") not in (None, F):
    print(f"warning: hf_lora_train.py counted {hf['model_flops_per_token']} FLOPs/token, not {F}")
if hf and device == "cuda":
    print(f"HF PEFT on {hf['gpu']}: {hf['weights_gpu_bytes'] / 2**30:.2f} GiB resident before the first step "
          f"(weights, LoRA {hf['lora_dtype']}), peak reserved by torch's allocator "
          f"{hf['peak_gpu_reserved_bytes'] / 2**30:.2f} GiB")
mem = "peak GPU GiB" if device == "cuda" else "peak RSS GiB"


def mem_bytes(r):
    if device == "cuda":  # what each allocator took from the device (shardtune's caching allocator, torch's)
        return r.get("peak_held_bytes")
    return r["peak_rss_kib"] * 1024


if device == "cuda" and st and hf:
    print(f"peak GPU memory in use (allocated, not counting allocator caches): shardtune "
          f"{st['peak_device_bytes'] / 2**30:.2f} GiB, HF {hf['peak_device_bytes'] / 2**30:.2f} GiB")


def row(name, r, log):
    if not r:
        return f"| {name} | failed (see {log}) | | |"
    mfu = f"{100 * F * r['tokens_per_second'] / peak:.1f}%" if peak else "n/a"
    b = mem_bytes(r)
    return f"| {name} | {r['tokens_per_second']:.0f} | {mfu} | " + (f"{b / 2**30:.2f} |" if b else "n/a |")


print()
print(f"| tool | tokens/s | MFU | {mem} |")
print("| --- | ---: | ---: | ---: |")
print(row("shardtune", st, st_log))
print(row("HF PEFT", hf, hf_log))
if st and hf:
    bs, bh = mem_bytes(st), mem_bytes(hf)
    mr = f"{bs / bh:.2f}" if bs and bh else "n/a"
    print(f"| ratio shardtune/HF | {st['tokens_per_second'] / hf['tokens_per_second']:.2f} | | {mr} |")
else:
    print("| ratio shardtune/HF | n/a | | n/a |")
EOF
summary_ok=$?

[ "$st_ok" = 1 ] && [ "$hf_ok" = 1 ] && [ "$summary_ok" = 0 ] || exit 1
