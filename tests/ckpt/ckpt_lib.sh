# tests/ckpt/ckpt_lib.sh: sourced after tests/lib.sh and tests/fsdp/fsdp_lib.sh.
# ckpt_train NAME NP G [flags]: 8 steps of a global batch of 12 micro-batches
# (NP ranks x G accumulation), a checkpoint every 2 steps, into $SCRATCH/NAME.
ckpt_train() {
    name=$1 np=$2 g=$3
    shift 3
    fsdp_train "$name" "$np" "$SCRATCH/m" --gradient_accumulation_steps "$g" --max_steps 8 --save_steps 2 "$@"
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

# same_losses FROM REF DIR RTOL: the curves agree from step FROM on
same_losses() {
    python3 - "$@" <<'PY'
import json, sys
frm, ref, d, rtol = int(sys.argv[1]), sys.argv[2], sys.argv[3], float(sys.argv[4])
def curve(p):
    return {r["step"]: r["loss"] for r in map(json.loads, open(p + "/metrics.jsonl")) if "loss" in r and r["step"] >= frm}
a, b = curve(ref), curve(d)
assert sorted(a) == sorted(b) and a, (sorted(a), sorted(b))
worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
print(f"{d}: steps {min(a)}..{max(a)} worst relative difference {worst:.2e} (allowed {rtol})")
assert worst <= rtol
PY
}
