#!/bin/sh
# Proves: prefetching changes when gathers happen, never what is computed:
# FULL_SHARD on 2 ranks with backward prefetch BACKWARD_PRE, BACKWARD_POST
# and none, forward prefetch on and off, gives bitwise-identical losses and
# byte-identical adapters.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m" --rows 12 --layers 3
export FSDP_SHARDING_STRATEGY=FULL_SHARD
first=""
for back in BACKWARD_PRE BACKWARD_POST NO_PREFETCH; do
    for fwd in true false; do
        FSDP_BACKWARD_PREFETCH=$back FSDP_FORWARD_PREFETCH=$fwd \
            fsdp_train "$back.$fwd" 2 "$SCRATCH/m" --gradient_accumulation_steps 2 --max_steps 6
        cut -d, -f1-3,5 "$SCRATCH/$back.$fwd/metrics.jsonl" > "$SCRATCH/$back.$fwd.losses"
        if [ -z "$first" ]; then first="$back.$fwd"; continue; fi
        cmp "$SCRATCH/$first.losses" "$SCRATCH/$back.$fwd.losses" || fail "$back/$fwd losses differ from $first"
        cmp "$SCRATCH/$first/adapter_model.safetensors" "$SCRATCH/$back.$fwd/adapter_model.safetensors" \
            || fail "$back/$fwd adapter differs from $first"
    done
done
grep -q "backward_prefetch BACKWARD_POST" "$SCRATCH/BACKWARD_POST.true.log" || fail "BACKWARD_POST was not in effect"
grep -q "forward_prefetch on" "$SCRATCH/BACKWARD_PRE.true.log" || fail "forward prefetch was not in effect"
echo PASS
