#!/usr/bin/env bash
# run-all.sh: the whole test suite.  Creates .venv with the Python oracle
# (torch, transformers, peft, safetensors, tokenizers, bitsandbytes from PyPI,
# pinned) when it is missing or lacks one of them, builds, and runs `make
# check` with the oracle required, so that no reference test can skip
# silently.  Run ./jobs/quickstart.sh first on a fresh machine (it installs
# the Debian packages).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

venv="$top/.venv"
if ! "$venv/bin/python" -c 'import torch, transformers, peft, safetensors, tokenizers, bitsandbytes' 2>/dev/null; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/requirements.txt
fi

[ -f configure ] || autoreconf -fi >/dev/null
mkdir -p _build
cd _build
[ -f Makefile ] || ../configure -q
make -j"$(nproc)" >/dev/null
SHARDTUNE_PYTHON="$venv/bin/python" SHARDTUNE_REQUIRE_REFERENCE=1 make -j"$(nproc)" check
