#!/bin/sh
# quant_bnb.sh: NF4 / FP4 quantization and nested absmax (src/quant4.c)
# against bitsandbytes 0.50.2 on the CPU and a NumPy re-implementation: codes
# and absmax bit for bit at blocksizes 64, 128, 256 on Llama-like shapes, the
# nested state with bitsandbytes' documented CPU differences counted,
# dequantized values, tables, odd sizes (see quant_bnb.py).
. "$top_srcdir/tests/lib.sh"
need_reference_python

# bitsandbytes is an oracle like torch: skip without it, fail where the
# oracle is required (SHARDTUNE_REQUIRE_REFERENCE=1).
"$PY" -c 'import bitsandbytes' 2>/dev/null ||
    skip_unless_required "no bitsandbytes in $PY (pip install -r tests/requirements.txt)"

QUANT_DUMP="$top_builddir/tests/quant/quant_dump"
[ -x "$QUANT_DUMP" ] || fail "$QUANT_DUMP is not built (make check builds it)"

"$PY" "$top_srcdir/tests/quant/quant_bnb.py" "$QUANT_DUMP" "$SCRATCH" ||
    fail "quant4 disagrees with bitsandbytes or the NumPy re-implementation"
