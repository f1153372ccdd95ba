#!/bin/sh
# Proves: the oracle itself is right.  transformers + peft in fp32 agree with
# the Llama + LoRA formulas spelled out in selfcheck_reference.py (float64,
# plain autograd) on logits, loss and LoRA gradients, for both adapters on the
# plain, Llama-3-RoPE and tied models and on tiny_model.sh's model; and
# float64 autograd agrees with finite differences.  Needs no shardtune.
. "$top_srcdir/tests/lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
. "$top_srcdir/tests/ref/tiny_model.sh"
REF="$top_srcdir/tests/ref"

"$PY" "$REF/make_tiny_llama.py" --all "$SCRATCH" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "make_tiny_llama.py"; }
write_tiny_model "$SCRATCH/shell"
"$PY" "$REF/selfcheck_reference.py" "$SCRATCH/plain" "$SCRATCH/llama3" "$SCRATCH/tied" \
    "$SCRATCH/shell" >"$SCRATCH/check.log" 2>&1 || { cat "$SCRATCH/check.log"; fail "oracle self-check"; }
grep -v '^ *finite\|Warning\|warn' "$SCRATCH/check.log" || true
echo "PASS"
