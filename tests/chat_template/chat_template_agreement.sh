#!/bin/sh
# chat_template_agreement.sh: shardtune chat-template renders every chat
# template here exactly as transformers' apply_chat_template(tokenize=False):
# the models' templates of templates/ (sources in README) and TinyLlama's
# tokenizer_config.json, and the small templates of features.jinja-list
# (one per language feature), on the UltraChat and ShareGPT samples and on
# hand-made conversations (conversations.jsonl: system prompt or not, one and
# many turns, empty content, Unicode, roles that do not alternate), with
# add_generation_prompt off and on; strftime_now's date pinned on both sides.
# A row where the template raises must fail on both sides.  Templates
# shardtune refuses are counted; at least RENDERED_MIN must render exactly
# on every row, so that a regression shows.
. "$top_srcdir/tests/lib.sh"
need_reference_python
T="$top_srcdir/tests/chat_template"
RENDERED_MIN=28
export SHARDTUNE_CHAT_TEMPLATE_NOW="2026-03-07 09:05:00"

mkdir -p "$SCRATCH/tpl" "$SCRATCH/oracle" "$SCRATCH/ours"
cp "$T"/templates/*.jinja "$SCRATCH/tpl/"
# features.jinja-list: "#### name" lines, each followed by its template
awk -v dir="$SCRATCH/tpl" '/^#### /{f=dir "/feature_" $2 ".jinja"; printf "" > f; next} {print >> f}' \
    "$T/features.jinja-list"
mkdir -p "$SCRATCH/tinyllama-chat"
cp "$top_srcdir/tests/tokenizer/data/tinyllama-chat/tokenizer_config.json" "$SCRATCH/tinyllama-chat/"

run_shardtune() { # TEMPLATE_FLAG TEMPLATE NAME ROWS...
    flag=$1 tpl=$2 name=$3
    shift 3
    for rows in "$@"; do
        for g in 0 1; do
            out="$SCRATCH/ours/${name}__$(basename "$rows")__g$g"
            gen=; [ "$g" = 1 ] && gen=--add_generation_prompt
            rc=0
            "$SHARDTUNE" chat-template --jsonl "$flag" "$tpl" $gen "$rows" >"$out.jsonl" 2>"$out.err" || rc=$?
            [ "$rc" -le 1 ] || fail "$name on $rows: shardtune exited $rc: $(cat "$out.err")"
        done
    done
}

SAMPLES="$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl $top_srcdir/tests/data/fastchat_dummy_conversation.json"
HAND="$T/conversations.jsonl"
MODELS=
for f in "$SCRATCH"/tpl/*.jinja; do
    name=$(basename "$f" .jinja)
    case $name in
    feature_*) run_shardtune --chat_template_path "$f" "$name" "$HAND" ;;
    *) MODELS="$MODELS $f"; run_shardtune --chat_template_path "$f" "$name" $SAMPLES "$HAND" ;;
    esac
done
run_shardtune --model_name_or_path "$SCRATCH/tinyllama-chat" tinyllama-chat $SAMPLES "$HAND"

"$PY" "$T/chat_template_oracle.py" "$SCRATCH/oracle" --rows $SAMPLES "$HAND" \
    --templates $MODELS "$SCRATCH/tinyllama-chat"
"$PY" "$T/chat_template_oracle.py" "$SCRATCH/oracle" --rows "$HAND" --templates "$SCRATCH"/tpl/feature_*.jinja

"$PY" "$T/compare_rendered.py" "$SCRATCH/oracle" "$SCRATCH/ours" | tee "$SCRATCH/summary"
rendered=$(sed -n 's/^rendered \([0-9]*\) templates.*/\1/p' "$SCRATCH/summary")
[ -n "$rendered" ] || fail "no summary from compare_rendered.py"
grep -q ', 0 rows differ$' "$SCRATCH/summary" || fail "shardtune's text differs from transformers'"
[ "$rendered" -ge "$RENDERED_MIN" ] || fail "only $rendered templates render exactly (at least $RENDERED_MIN did)"
echo "PASS: $rendered templates rendered as transformers renders them"
