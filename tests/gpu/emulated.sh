#!/bin/sh
# Proves, without a GPU: the CUDA backend's own code (cuda/*.cu and
# comm_nccl.c, built against the CPU emulation of CUDA in tests/cuda_emu)
# passes the op check against the CPU backend (the 4-bit dequantization bit
# for bit), and trains 20 steps to the CPU backend's losses, gradient norms
# and adapter, on one rank and on two ranks over the emulated NCCL (shards on
# the device, and offloaded), and 6 QLoRA steps (4-bit weights dequantized
# by the CUDA kernel) on one and two ranks the same way; and evaluates and
# generates greedily as the CPU does.  The
# emulation runs each block's threads with real barriers and shuffles and
# makes device memory unreadable by host code; it says nothing of speed.
. "$top_srcdir/tests/lib.sh"

emu="$top_builddir/tests/cuda_emu/shardtune-cuda-emu.so"
[ -f "$emu" ] || fail "$emu: not built"
export SHARDTUNE_CUDA_PLUGIN="$emu"
"$top_builddir/tests/gpu/op_check" > "$SCRATCH/op_check.log" 2>&1 || { cat "$SCRATCH/op_check.log"; fail "op_check on the emulation"; }
cat "$SCRATCH/op_check.log"
SHARDTUNE_TEST_GPUS=2 sh "$top_srcdir/tests/gpu/train_compare.sh" || fail "train_compare on the emulation (status $?)"

# evaluation and greedy generation (KV-cache decode) give the CPU's numbers
"$SHARDTUNE" convert llama2c --checkpoint "$ASSETS/model/stories260K.bin" --tokenizer "$ASSETS/model/tok512.bin" \
    --out "$SCRATCH/stories" > /dev/null
head -n 6 "$ASSETS/data/tiny_stories_ids.jsonl" > "$SCRATCH/rows.jsonl"
for dev in cpu cuda; do
    "$SHARDTUNE" eval --device $dev --model_name_or_path "$SCRATCH/stories" --dataset_name "$SCRATCH/rows.jsonl" \
        --max_seq_len 64 --json > "$SCRATCH/eval.$dev" 2>&1 || { cat "$SCRATCH/eval.$dev"; fail "eval on $dev"; }
    "$SHARDTUNE" generate --device $dev --model_name_or_path "$SCRATCH/stories" --prompt "Once upon a time" \
        --max_new_tokens 24 > "$SCRATCH/gen.$dev" 2>&1 || { cat "$SCRATCH/gen.$dev"; fail "generate on $dev"; }
done
python3 - "$SCRATCH/eval.cpu" "$SCRATCH/eval.cuda" <<'PY' || fail "eval losses differ"
import json, sys
a, b = (json.loads(open(p).read().strip().splitlines()[-1])["eval_loss"] for p in sys.argv[1:])
print(f"eval_loss cpu {a} cuda {b}")
sys.exit(0 if abs(a - b) <= 1e-5 * abs(a) else 1)
PY
# the loading report (bytes read, peak RSS) is a measurement of each run, not part of the generation
for dev in cpu cuda; do grep -v '^loaded: ' "$SCRATCH/gen.$dev" > "$SCRATCH/gen.$dev.text"; done
cmp "$SCRATCH/gen.cpu.text" "$SCRATCH/gen.cuda.text" ||
    { cat "$SCRATCH/gen.cpu" "$SCRATCH/gen.cuda"; fail "greedy generations differ"; }
cat "$SCRATCH/gen.cuda"
echo PASS
