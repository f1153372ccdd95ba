#!/bin/bash
# tokenizer_speed.sh: encoding speed per core, shardtune's tokenizer vs its peer
# Hugging Face `tokenizers` (Rust, PyPI), in this one invocation, on the same
# few MB of varied text (bench/tokenizer_speed.py corpus), for the SentencePiece-
# style TinyLlama tokenizer.json and GPT-2's byte-level vocab.json + merges.txt.
# Both run one thread (RAYON_NUM_THREADS=1, TOKENIZERS_PARALLELISM=false), encode
# every document with add_special_tokens, best of PASSES passes (both keep a
# word cache, warm after the first pass; the first pass is shown too).
#
#   bench/tokenizer_speed.sh
#
# Environment:
#   SHARDTUNE_PYTHON  Python with tokenizers     (default $top/.venv/bin/python)
#   BUILD             the build directory          (default $top/_build)
#   MBYTES            corpus size in MB            (default 4)
#   PASSES            passes, the best one counts  (default 3)
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
PY=${SHARDTUNE_PYTHON:-$top/.venv/bin/python}
BUILD=${BUILD:-$top/_build}
MBYTES=${MBYTES:-4}
PASSES=${PASSES:-3}
DRIVER=$BUILD/bench/tokenizer_speed

die() { echo "tokenizer_speed.sh: $*" >&2; exit 1; }
[ -x "$DRIVER" ] || die "$DRIVER: not built (make -C $BUILD bench/tokenizer_speed)"
"$PY" -c 'import tokenizers' 2>/dev/null || die "$PY has no tokenizers (set SHARDTUNE_PYTHON)"

work=$(mktemp -d "${TMPDIR:-/tmp}/tokenizer-speed.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$PY" "$top/bench/tokenizer_speed.py" corpus "$work/docs.json" "$MBYTES"
export RAYON_NUM_THREADS=1 TOKENIZERS_PARALLELISM=false OMP_NUM_THREADS=1

field() { sed -n "s|.* $1 \([^ ]*\).*|\1|p"; }
printf '%-15s %15s %16s %6s   %s\n' tokenizer "shardtune MB/s" "tokenizers MB/s" ratio \
    "first pass (cold cache): shardtune, tokenizers MB/s; tokens"
for name in tinyllama-chat gpt2; do
    path=$top/tests/tokenizer/data/$name
    if [ "$name" = tinyllama-chat ]; then
        # tokenizers refuses this copy's three merges that lost U+00A0: both
        # read the restored file
        path=$work/tinyllama-fixed.json
        "$PY" -c "import sys; sys.path.insert(0, '$top/tests/tokenizer'); import hf_agreement as h; h.fixed_tinyllama('$top/tests/tokenizer/data/tinyllama-chat/tokenizer.json', '$path')"
    fi
    ours=$("$DRIVER" "$path" "$work/docs.json" "$PASSES")
    theirs=$("$PY" "$top/bench/tokenizer_speed.py" hf "$path" "$work/docs.json" "$PASSES")
    a=$(echo "$ours" | field MB/s); b=$(echo "$theirs" | field MB/s)
    a1=$(echo "$ours" | field first_MB/s); b1=$(echo "$theirs" | field first_MB/s)
    ta=$(echo "$ours" | field tokens); tb=$(echo "$theirs" | field tokens)
    [ "$ta" = "$tb" ] || echo "warning: $name: token counts differ ($ta vs $tb)" >&2
    printf '%-15s %15s %16s %6s   %s, %s; %s\n' "$name" "$a" "$b" \
        "$(awk "BEGIN{printf \"%.1f\", $a/$b}")" "$a1" "$b1" "$ta"
done
