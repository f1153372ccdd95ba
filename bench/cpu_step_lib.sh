# bench/cpu_step_lib.sh: sourced by bench/cpu_lora_step.sh and
# bench/cpu_qlora_step.sh: the bench model, one timed `shardtune train` run and
# one timed bench/hf_lora_train.py run, each appending one JSON line to $res.
# The sourcing script sets top, STEPS and WARMUP and defines die() first, and
# res (a file under $dir) before running any.  Both scripts' common settings
# and environment (SHARDTUNE_PYTHON, SHARDTUNE, BENCH_DIR, THREADS, ROUNDS):
PY=${SHARDTUNE_PYTHON:-$top/.venv/bin/python}
ST=${SHARDTUNE:-$top/_build/shardtune}
dir=${BENCH_DIR:-$top/runs/bench-cpu-lora}
THREADS=${THREADS:-$(nproc)}
ROUNDS=${ROUNDS:-1}
BATCH=4
SEQ=256
SEED=1 # both tools' data order

[ -x "$ST" ] || die "$ST: not built (make -C _build shardtune)"
"$PY" -c 'import torch, transformers, peft' 2>/dev/null ||
    die "$PY: no torch/transformers/peft (set SHARDTUNE_PYTHON)"

mkdir -p "$dir"
if [ ! -f "$dir/bench_model.json" ] || [ ! -f "$dir/model/model.safetensors" ] || [ ! -f "$dir/data.jsonl" ] ||
    [ ! -f "$dir/adapter/adapter_model.safetensors" ]; then
    "$PY" "$top/bench/make_bench_model.py" "$dir" --rows 256 --seq "$SEQ" --seed 0 >&2
fi
export OMP_NUM_THREADS="$THREADS"

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

# run_shardtune VARIANT ROUND CKPT [train flags...]: WARMUP + STEPS steps from
# $dir/adapter on the bench rows; one line {"tool": "shardtune", "variant", ...}.
run_shardtune() {
    variant=$1 rnd=$2 ck=$3
    shift 3
    o="$dir/out-shardtune-$variant-r$rnd-ckpt$ck"
    rm -rf "$o"
    gc=False
    [ "$ck" = 1 ] && gc=True
    echo "[round $rnd, checkpointing $gc] shardtune $variant: $((WARMUP + STEPS)) steps ..." >&2
    measured "$dir/rss-shardtune" "$ST" train --model_name_or_path "$dir/model" --dataset_name "$dir/data.jsonl" \
        --max_seq_len "$SEQ" --output_dir "$o" --per_device_train_batch_size "$BATCH" \
        --gradient_accumulation_steps 1 --learning_rate 1e-4 --max_steps $((WARMUP + STEPS)) --logging_steps 1 \
        --use_peft_lora True --adapter "$dir/adapter" \
        --lr_scheduler_type constant --seed "$SEED" --gradient_checkpointing "$gc" "$@" >"$o.log" 2>&1 ||
        { tail -5 "$o.log" >&2; die "shardtune failed (log: $o.log)"; }
    "$PY" - "$o/metrics.jsonl" "$WARMUP" "$(cat "$dir/rss-shardtune")" "$rnd" "$ck" "$variant" >>"$res" <<'PYEOF'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
w = int(sys.argv[2])
tps = [r["tokens_per_second"] for r in rows[w:]]
rss, cpu = sys.argv[3].split()
print(json.dumps({"tool": "shardtune", "variant": sys.argv[6], "round": int(sys.argv[4]), "ckpt": int(sys.argv[5]),
                  "tokens_per_second": statistics.median(tps), "tokens_per_second_steps": tps,
                  "loss_first": rows[0]["loss"], "loss_last": rows[-1]["loss"],
                  "peak_rss_kib": int(rss), "cpu_percent": int(cpu)}))
PYEOF
}

# run_hf VARIANT ROUND CKPT [hf_lora_train.py flags...]: the peer, the same
# steps, rows and starting adapter; one line {"tool": "hf", "variant", ...}.
run_hf() {
    variant=$1 rnd=$2 ck=$3
    shift 3
    gcflag= gc=False
    [ "$ck" = 1 ] && gcflag=--gradient_checkpointing gc=True
    echo "[round $rnd, checkpointing $gc] transformers+peft $variant: $((WARMUP + STEPS)) steps ..." >&2
    measured "$dir/rss-hf" "$PY" "$top/bench/hf_lora_train.py" --model "$dir/model" --data "$dir/data.jsonl" \
        --steps "$STEPS" --warmup "$WARMUP" --batch "$BATCH" --seq "$SEQ" --adapter "$dir/adapter" \
        --threads "$THREADS" --seed "$SEED" $gcflag --json "$@" >"$dir/hf.json" 2>"$dir/hf.log" ||
        { tail -5 "$dir/hf.log" >&2; die "hf_lora_train.py failed (log: $dir/hf.log)"; }
    "$PY" - "$dir/hf.json" "$(cat "$dir/rss-hf")" "$rnd" "$ck" "$variant" >>"$res" <<'PYEOF'
import json, sys
r = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
rss, cpu = sys.argv[2].split()
r.update(round=int(sys.argv[3]), ckpt=int(sys.argv[4]), variant=sys.argv[5], peak_rss_kib=int(rss),
         cpu_percent=int(cpu))
print(json.dumps(r))
PYEOF
}
