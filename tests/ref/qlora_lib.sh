# tests/ref/qlora_lib.sh: sourced after tests/lib.sh by the tests that compare 4-bit runs
# with transformers + peft + bitsandbytes on the CPU.  Needs the oracle,
# bitsandbytes and mpirun; sets REF and QFLAGS, the 4-bit flags those runs
# share (fp32 compute, what the CPU backend computes; storage dtype as
# tests/ref/qlora_common.py loads the base).
# shellcheck shell=sh disable=SC2034
need_reference_python
"$PY" -c 'import bitsandbytes' 2>/dev/null || { required && fail "no bitsandbytes in $PY"; exit 77; }
[ -n "${MPIRUN:-}" ] || { required && fail "no mpirun"; exit 77; }
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
export OMP_NUM_THREADS=1          # ranks share two cores
REF="$top_srcdir/tests/ref"
QFLAGS="--use_4bit_quantization True --bnb_4bit_compute_dtype float32 --bnb_4bit_quant_storage_dtype bfloat16"
