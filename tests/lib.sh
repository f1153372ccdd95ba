# tests/lib.sh: sourced by every shell test.  Gives the paths of the
# program and the tools, a scratch directory removed at exit, the Python
# reference interpreter, and the one rule for a missing prerequisite: skip
# (exit 77) on a developer's machine, fail under SHARDTUNE_REQUIRE_REFERENCE=1.
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

# required: true under SHARDTUNE_REQUIRE_REFERENCE=1, which tests/run-all.sh
# and .ci/run set after jobs/quickstart.sh installed every prerequisite:
# there a check that cannot run is a failure, never a silent pass or a skip.
required() { [ "${SHARDTUNE_REQUIRE_REFERENCE:-0}" = 1 ]; }

# skip_unless_required WHY: this test cannot run here (a tool or the oracle is
# missing).  Skip (77) on a developer's machine; fail where everything is
# required.  Tests that need a GPU do not call it: no CPU machine has one, so
# they skip (77) wherever no GPU answers, required or not.
skip_unless_required() {
    required && fail "$* (SHARDTUNE_REQUIRE_REFERENCE=1: a missing prerequisite fails)"
    echo "SKIP: $*"
    exit 77
}

# need_tool CMD [WHAT FOR]: CMD on PATH, else skip_unless_required.
need_tool() {
    command -v "$1" >/dev/null 2>&1 || skip_unless_required "$1 is not on PATH${2:+ (needed $2)}"
}

# need_reference_python: sets PY to an interpreter with torch, transformers,
# peft and safetensors; without one, skip_unless_required.
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
    skip_unless_required "no Python with torch, transformers, peft and safetensors (set SHARDTUNE_PYTHON)"
}

# check_run RUN REF_RUN MODEL_DIR: a `shardtune train` output directory against
# the reference run's (tests/ref/reference_train.py): metrics (compare_metrics.py)
# and saved adapter (check_adapter.py, rel 1e-5); prints their summaries (all of
# either on a difference) and returns 1 when one differs.
check_run() {
    _bad=0
    "$PY" "$top_srcdir/tests/ref/compare_metrics.py" "$1/metrics.jsonl" "$2/metrics.jsonl" >"$1.metrics" 2>&1 \
        || { cat "$1.metrics"; _bad=1; }
    tail -n 1 "$1.metrics"
    "$PY" "$top_srcdir/tests/ref/check_adapter.py" --rtol 1e-5 "$3" "$1" "$2" >"$1.adapter" 2>&1 \
        || { cat "$1.adapter"; _bad=1; }
    grep -E '^check_adapter' "$1.adapter" || true
    return $_bad
}
