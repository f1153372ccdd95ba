#!/bin/sh
# Proves: one forward + backward of tests/model_dump (logits, loss, the
# gradient of every LoRA A and B, and dx, the gradient by the embedding
# output) equals transformers + peft in fp32 to
# rel 1e-5, for plain LoRA on all seven projections and for rsLoRA on a subset,
# on an untied model with default RoPE (config as transformers 5 writes it), a
# model with Llama 3 RoPE scaling (config as the Hub's Llama 3.x spell it),
# and a tied model whose pad token is 3.  Rows have different lengths (right
# padding), two are truncated to T, one carries labels with -100.
. "$top_srcdir/tests/lib.sh"
need_reference_python
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
REF="$top_srcdir/tests/ref"
ROWS=4 T=32

# Python starts are slow (seconds of imports), so each script runs once.
"$PY" "$REF/make_tiny_llama.py" --all "$SCRATCH" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "make_tiny_llama.py"; }

jobs=
for variant in plain llama3 tied; do
    d="$SCRATCH/$variant"
    for adapter in adapter adapter_rslora; do
        "$MODEL_DUMP" --model "$d/model" --adapter "$d/$adapter" --data "$d/data.jsonl" \
            --rows $ROWS --max_seq_len $T --out "$d/$adapter.ours.safetensors" \
            || fail "model_dump on $variant/$adapter"
        jobs="$jobs $variant/$adapter"
    done
done

set --
for job in $jobs; do
    d="$SCRATCH/${job%/*}" adapter=${job#*/}
    set -- "$@" "$d/model" "$d/$adapter" "$d/data.jsonl" $ROWS $T "$d/$adapter.ref.safetensors"
done
"$PY" "$REF/reference_grads.py" "$@" >"$SCRATCH/ref.log" 2>&1 \
    || { cat "$SCRATCH/ref.log"; fail "reference_grads.py"; }

status=0
for job in $jobs; do
    d="$SCRATCH/${job%/*}" adapter=${job#*/}
    echo "== $job"
    "$PY" "$REF/compare_tensors.py" "$d/$adapter.ours.safetensors" \
        "$d/$adapter.ref.safetensors" --rtol 1e-5 || { echo "FAIL: $job differs from peft"; status=1; }
done
[ $status = 0 ] || fail "model_dump differs from transformers + peft"
echo "PASS"
