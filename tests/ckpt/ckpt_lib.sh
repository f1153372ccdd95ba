# tests/ckpt/ckpt_lib.sh: sourced after tests/lib.sh and tests/fsdp/fsdp_lib.sh.
# ckpt_train NAME NP G [flags]: 8 steps of a global batch of 12 micro-batches
# (NP ranks x G accumulation), a checkpoint every 2 steps, into $SCRATCH/NAME.
ckpt_train() {
    name=$1 np=$2 g=$3
    shift 3
    fsdp_train "$name" "$np" "$SCRATCH/m" --gradient_accumulation_steps "$g" --max_steps 8 --save_steps 2 "$@"
}

# ckpt_train_fails NAME NP G [flags]: the same run, which must stop with an
# error (fsdp_train_fails).
ckpt_train_fails() {
    name=$1 np=$2 g=$3
    shift 3
    fsdp_train_fails "$name" "$np" "$SCRATCH/m" --gradient_accumulation_steps "$g" --max_steps 8 --save_steps 2 "$@"
}

# one_error NAME PATTERN: NAME.log holds one error, the same line from each
# rank that says it (die() puts "rank N: " in front), matching PATTERN
# (grep, after "shardtune: error: ").
one_error() {
    grep "shardtune: error:" "$SCRATCH/$1.log" | sed 's/rank [0-9]*: //' | sort -u > "$SCRATCH/$1.errors"
    [ "$(wc -l < "$SCRATCH/$1.errors")" = 1 ] || { cat "$SCRATCH/$1.log" >&2; fail "$1: not one error line"; }
    grep -q "^shardtune: error: $2" "$SCRATCH/$1.errors" || { cat "$SCRATCH/$1.errors" >&2; fail "$1: the error"; }
    echo "$1: $(cat "$SCRATCH/$1.errors")"
}

# losses STEP_FROM DIR: "step loss" lines of metrics.jsonl from that step on
losses() {
    python3 -c '
import json, sys
for l in open(sys.argv[2] + "/metrics.jsonl"):
    r = json.loads(l)
    if "loss" in r and r["step"] >= int(sys.argv[1]):
        print(r["step"], repr(r["loss"]))' "$1" "$2"
}

# same_curves FROM REF DIR RTOL: the loss and grad_norm curves of
# metrics.jsonl agree from step FROM on, |a - b| / |a| <= RTOL at every step
same_curves() {
    python3 - "$@" <<'PY'
import json, sys
frm, ref, d, rtol = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
def curve(p, key):
    return {r["step"]: r[key] for r in map(json.loads, open(p + "/metrics.jsonl")) if key in r and r["step"] >= frm}
ok = True
for key in ("loss", "grad_norm"):
    a, b = curve(ref, key), curve(d, key)
    assert sorted(a) == sorted(b) and a, (key, sorted(a), sorted(b))
    worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
    print(f"{d}: {key} steps {min(a)}..{max(a)} worst relative difference {worst:.2e} (allowed {rtol})")
    ok = ok and worst <= rtol
sys.exit(0 if ok else 1)
PY
}

# same_adapter REF DIR RTOL: every tensor of DIR's adapter_model.safetensors
# has ||a - b|| / ||b|| <= RTOL against REF's (tests/ref/compare_tensors.py,
# float64 norms over each whole tensor; $PY from need_reference_python reads
# safetensors).  Prints the summary line, or every tensor's line on failure.
same_adapter() {
    "$PY" "$top_srcdir/tests/ref/compare_tensors.py" "$2/adapter_model.safetensors" \
        "$1/adapter_model.safetensors" --rtol "$3" > "$2.adapter_diff" || { cat "$2.adapter_diff"; return 1; }
    echo "$2: $(tail -n 1 "$2.adapter_diff")"
}

# wait_for_step DIR STEP: until DIR/metrics.jsonl has logged STEP steps (60 s at most)
wait_for_step() {
    _i=0
    while [ "$(cat "$1/metrics.jsonl" 2>/dev/null | grep -c '"loss"' || true)" -lt "$2" ]; do
        _i=$((_i + 1))
        [ $_i -lt 3000 ] || fail "$1: step $2 never logged"
        sleep 0.02
    done
}

# rank_pid DIR RANK: the pid of rank RANK of the run writing into DIR
# (its --output_dir): the shardtune process with that OMPI_COMM_WORLD_RANK
rank_pid() {
    for _p in $(pgrep -f -- "--output_dir $1 " || true); do
        [ "$(cat "/proc/$_p/comm" 2>/dev/null)" = shardtune ] || continue
        tr '\0' '\n' < "/proc/$_p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && { echo "$_p"; return 0; }
    done
    fail "no rank $2 writing into $1"
}

# last_step DIR: the last step of DIR/metrics.jsonl
last_step() {
    python3 -c 'import json, sys; print([json.loads(l)["step"] for l in open(sys.argv[1])][-1])' "$1/metrics.jsonl"
}
