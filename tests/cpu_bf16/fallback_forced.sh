#!/bin/sh
# Proves: SHARDTUNE_CPU_BF16=0 (as on a CPU without bf16 instructions) makes
# --bf16 True compute in fp32 on the CPU: the run says so in one note
# ("compute stays fp32") and logs the very losses and gradient norms of a
# run without --bf16, and writes the same adapter bytes; where the CPU has
# bf16 instructions, the same run without the variable computes in bf16
# (other losses, no note).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 8 --layers 2 --seed 9
fsdp_train fp32 1 "$SCRATCH/m" --max_steps 4
SHARDTUNE_CPU_BF16=0 fsdp_train forced 1 "$SCRATCH/m" --max_steps 4 --bf16 True
grep -q "note: bf16 asked for .*SHARDTUNE_CPU_BF16=0: compute stays fp32" "$SCRATCH/forced.log" \
    || { cat "$SCRATCH/forced.log"; fail "no fallback note with SHARDTUNE_CPU_BF16=0"; }
for key in loss grad_norm; do
    sed -n "s/.*\"$key\": *\([^,}]*\).*/\1/p" "$SCRATCH/fp32/metrics.jsonl" >"$SCRATCH/fp32.$key"
    sed -n "s/.*\"$key\": *\([^,}]*\).*/\1/p" "$SCRATCH/forced/metrics.jsonl" >"$SCRATCH/forced.$key"
    [ -s "$SCRATCH/fp32.$key" ] || fail "no $key in fp32/metrics.jsonl"
    cmp -s "$SCRATCH/fp32.$key" "$SCRATCH/forced.$key" \
        || { paste "$SCRATCH/fp32.$key" "$SCRATCH/forced.$key"; fail "forced fallback: $key differs from fp32"; }
done
cmp "$SCRATCH/fp32/adapter_model.safetensors" "$SCRATCH/forced/adapter_model.safetensors" \
    || fail "forced fallback: the adapter differs from the fp32 run's"
if "$SHARDTUNE" --version | grep -q "computes in bf16: yes"; then
    fsdp_train bf16 1 "$SCRATCH/m" --max_steps 4 --bf16 True
    ! grep -q "compute stays fp32" "$SCRATCH/bf16.log" || fail "--bf16 fell back on a CPU with bf16"
    sed -n 's/.*"loss": *\([^,}]*\).*/\1/p' "$SCRATCH/bf16/metrics.jsonl" >"$SCRATCH/bf16.loss"
    ! cmp -s "$SCRATCH/fp32.loss" "$SCRATCH/bf16.loss" || fail "--bf16 logged the fp32 losses: no bf16 compute"
fi
echo PASS
