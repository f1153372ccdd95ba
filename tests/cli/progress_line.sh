#!/bin/sh
# progress_line.sh: what a user watching `shardtune train` sees.
#  - under a pseudo-terminal (script -qfc): one line redrawn in place ("\r"
#    and erase-line) at every step, reaching 100 %, with an ETA that is a sane
#    positive time while steps remain and 0:00:00 at the end; the log lines
#    are printed above it; evaluations and saves show their own live line,
#    and the last step's line is what stays on screen;
#  - in a batch log (no terminal) and with --disable_tqdm on a terminal: no
#    redrawing, and every --logging_steps line parses as the documented
#    format (src/progress.h);
#  - the FLOP count equals bench/lora_flops.py's for the model, and each log
#    line's TFLOP/s and metrics.jsonl's mfu follow from it, its tok/s and the
#    measured peak (packed rows, so every row is --max_seq_len long).
. "$top_srcdir/tests/lib.sh"
need_reference_python
need_tool script "for a pseudo-terminal"

"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" \
    --tokenizer "$ASSETS/model/tok512.bin" --out "$SCRATCH/model" >/dev/null
# plain text rows: the conversations' contents
"$PY" -c 'import json, sys
for line in open(sys.argv[1]):
    for m in json.loads(line)["messages"]:
        print(json.dumps({"text": m["content"]}))' "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" \
    >"$SCRATCH/text.jsonl"
mkdir -p "$SCRATCH/split"
cp "$SCRATCH/text.jsonl" "$SCRATCH/split/train.jsonl"
head -n 8 "$SCRATCH/text.jsonl" >"$SCRATCH/split/test.jsonl"
SEQ=128
run="$SHARDTUNE train --model_name_or_path $SCRATCH/model --dataset_name $SCRATCH/text.jsonl --max_seq_len $SEQ \
    --packing True --per_device_train_batch_size 4 --gradient_accumulation_steps 8 --max_steps 16 --logging_steps 4 --lora_r 8 \
    --lora_target_modules all-linear --learning_rate 1e-3"

# on a terminal (with evaluations and saves, which show their own live line)
script -qfec "$run --output_dir $SCRATCH/tty --dataset_name $SCRATCH/split --eval_strategy steps --eval_steps 8 \
    --save_steps 8" \
    /dev/null >"$SCRATCH/tty.log" 2>&1 ||
    { cat "$SCRATCH/tty.log" >&2; fail "train under a pseudo-terminal"; }
# batch log, and --disable_tqdm on a terminal
$run --output_dir "$SCRATCH/batch" >"$SCRATCH/batch.log" 2>&1 || { cat "$SCRATCH/batch.log" >&2; fail "train"; }
script -qfec "$run --output_dir $SCRATCH/quiet --disable_tqdm True" /dev/null >"$SCRATCH/quiet.log" 2>&1 ||
    fail "train --disable_tqdm"

"$PY" - "$SCRATCH" "$top_srcdir/bench/lora_flops.py" $SEQ <<'PY'
import json, re, subprocess, sys
d, lora_flops, seq = sys.argv[1], sys.argv[2], int(sys.argv[3])
LINE = re.compile(r"step (\d+)/(\d+) \((\d+)%\) \| epoch ([\d.]+) \| loss ([\d.]+) \| lr ([\d.e+-]+) \| "
                  r"grad_norm ([\d.]+) \| (\d+) tok/s \| ([\d.e+-]+) TFLOP/s \| MFU ([\d.]+)% \| peak ([\d.]+) MiB \| "
                  r"elapsed (\d+):(\d\d):(\d\d) \| ETA (\d+):(\d\d):(\d\d)$")

def fail(msg):
    sys.exit(f"FAIL: {msg}")

def hms(m, k):
    return int(m.group(k)) * 3600 + int(m.group(k + 1)) * 60 + int(m.group(k + 2))

tty = open(f"{d}/tty.log", encoding="utf-8", errors="replace", newline="").read()
redraws = tty.split("\r\x1b[K")
live = [LINE.search(x.split("\r\n")[0].split("\n")[0]) for x in redraws[1:]]
live = [m for m in live if m]
steps = sorted({int(m.group(1)) for m in live})
if steps != list(range(1, 17)):
    fail(f"the live line was not redrawn at every step: {steps}")
last = max(live, key=lambda m: int(m.group(1)))
if last.group(3) != "100" or hms(last, 15) != 0:
    fail(f"the live line ends at {last.group(3)} % with ETA {last.group(15)}:{last.group(16)}:{last.group(17)}")
total = max(hms(m, 12) for m in live) + 1
for m in live:
    step, eta = int(m.group(1)), hms(m, 15)
    if step <= 4 and not 0 < eta <= 20 * total + 5:
        fail(f"step {step}: ETA {eta} s is not a sane positive time (the run took about {total} s)")
print(f"live line: {len(live)} redraws, steps 1..16, 100 % at the end, ETAs {[hms(m, 15) for m in live][:6]}...")
for want in ("evaluating: batch 1/", "saving checkpoint-8.h5 ...", "saving checkpoint-16.h5 ..."):
    if not any(x.startswith(want) for x in redraws):
        fail(f"no live line \"{want}\"")
final = redraws[-1].split("\n")[0].rstrip("\r")
if not (LINE.search(final) and "(100%)" in final):
    fail(f"the line left on screen is not the last step's: {final!r}")
print("evaluation and saves show their own live lines; the last step's line stays")

for name in ("batch", "quiet"):
    log = open(f"{d}/{name}.log", encoding="utf-8", newline="").read()
    if "\x1b[K" in log:
        fail(f"{name}: the line was redrawn without a live terminal")
    lines = [l.strip() for l in log.splitlines() if l.strip().startswith("step ") and "eval" not in l]
    parsed = [LINE.search(l) for l in lines]
    if len(lines) != 4 or not all(parsed):
        fail(f"{name}: the log lines do not parse as the documented format: {lines}")
    print(f"{name}: {len(lines)} log lines parse, e.g. {lines[0]}")

want = json.loads(subprocess.check_output([sys.executable, lora_flops, "flops", f"{d}/model", "--seq", str(seq),
                                           "--lora_r", "8"]))["model_flops_per_token"]
log = open(f"{d}/batch.log", encoding="utf-8").read()
m = re.search(r"model FLOPs per token: ([\d.e+]+) at (\d+) tokens a row .* peak ([\d.e+-]+) TFLOP/s", log)
if not m or int(m.group(2)) != seq:
    fail("no FLOPs line")
ours, peak = float(m.group(1)), float(m.group(3))
if abs(ours - want) > 1e-5 * want:
    fail(f"model FLOPs per token {ours} != bench/lora_flops.py's {want}")
print(f"model FLOPs per token {ours:.6g} = bench/lora_flops.py's {want}; peak {peak} TFLOP/s")
metrics = [json.loads(l) for l in open(f"{d}/batch/metrics.jsonl") if '"loss"' in l]
for line, mt in zip([l for l in log.splitlines() if LINE.search(l)], metrics):
    p = LINE.search(line)
    tflops = want * mt["tokens_per_second"] / 1e12
    if abs(float(p.group(9)) - tflops) > 6e-3 * tflops:  # printed with 3 digits
        fail(f"step {p.group(1)}: {p.group(9)} TFLOP/s, expected {tflops:.4g}")
    if abs(mt["mfu"] - tflops / peak) > 6e-3 * tflops / peak:  # the printed peak has 3 digits
        fail(f"step {p.group(1)}: mfu {mt['mfu']}, expected {tflops / peak:.4g}")
print("TFLOP/s and mfu follow from the count, tok/s and the peak at every log line")
PY
echo PASS
