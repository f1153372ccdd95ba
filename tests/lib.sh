# tests/lib.sh: sourced by every shell test.  Gives the paths of the
# program and the tools, a scratch directory removed at exit, and the
# Python reference interpreter (or a skip, exit 77, when there is none).
set -eu

: "${top_srcdir:?run through make check}"
: "${top_builddir:?run through make check}"
SHARDTUNE="$top_builddir/shardtune"
MODEL_DUMP="$top_builddir/tests/model_dump"
ASSETS="$top_srcdir/assets"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
# the tests check the CPU backend, also on a machine with a GPU (GPU tests
# pass --device cuda themselves); SHARDTUNE_TEST_DEVICE=cuda runs them all on
# the CUDA backend instead (a GPU, or the CPU emulation of CUDA through
# SHARDTUNE_CUDA_PLUGIN)
export SHARDTUNE_DEVICE="${SHARDTUNE_TEST_DEVICE:-cpu}"

SCRATCH=$(mktemp -d "${TMPDIR:-/tmp}/shardtune-test.XXXXXX")
trap 'rm -rf "$SCRATCH"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

# need_reference_python: sets PY to an interpreter with torch, transformers,
# peft and safetensors.  Without one the test is skipped, unless
# SHARDTUNE_REQUIRE_REFERENCE=1 (CI sets it), where a missing oracle fails.
need_reference_python() {
    PY="${SHARDTUNE_PYTHON:-}"
    if [ -z "$PY" ]; then
        for cand in "$top_srcdir/.venv/bin/python" "$top_srcdir/../.venv/bin/python"; do
            if [ -x "$cand" ]; then PY="$cand"; break; fi
        done
    fi
    if [ -n "$PY" ] && "$PY" -c 'import torch, transformers, peft, safetensors' 2>/dev/null; then
        export PYTHONPATH="$top_srcdir/tests/ref${PYTHONPATH:+:$PYTHONPATH}"
        return 0
    fi
    if [ "${SHARDTUNE_REQUIRE_REFERENCE:-0}" = 1 ]; then
        fail "no Python with torch, transformers, peft and safetensors (set SHARDTUNE_PYTHON)"
    fi
    echo "SKIP: no Python with torch, transformers, peft and safetensors (set SHARDTUNE_PYTHON)"
    exit 77
}
