#!/bin/sh
# chat_template_refusals.sh: every template of unsupported.tsv -- a construct
# outside the supported subset, a malformed template, or one that breaks a
# limit (huge loops, deep nesting, runaway output) -- is refused with exactly
# one line "shardtune: error: ... chat template line N: WHAT" and a non-zero
# status, quickly (each within 20 s, bounded memory), never rendered.
. "$top_srcdir/tests/lib.sh"
T="$top_srcdir/tests/chat_template"
head -n 1 "$T/conversations.jsonl" >"$SCRATCH/one.jsonl"
n=0
while IFS="$(printf '\t')" read -r tpl want; do
    case $tpl in '#'*|'') continue ;; esac
    n=$((n + 1))
    printf '%b' "$tpl" >"$SCRATCH/t.jinja" # \n in the table is a newline
    rc=0
    ( ulimit -v 2000000; timeout 20 "$SHARDTUNE" chat-template --chat_template_path "$SCRATCH/t.jinja" \
        "$SCRATCH/one.jsonl" ) >"$SCRATCH/out" 2>"$SCRATCH/err" || rc=$?
    [ "$rc" = 1 ] || fail "template $n ($tpl): exit status $rc, expected 1; stderr: $(cat "$SCRATCH/err")"
    [ ! -s "$SCRATCH/out" ] || fail "template $n ($tpl): printed a rendering: $(head -c 200 "$SCRATCH/out")"
    [ "$(wc -l <"$SCRATCH/err")" = 1 ] || fail "template $n ($tpl): not one line: $(cat "$SCRATCH/err")"
    grep -q '^shardtune: error: ' "$SCRATCH/err" || fail "template $n: not an error line: $(cat "$SCRATCH/err")"
    grep -qF -- "$want" "$SCRATCH/err" || fail "template $n ($tpl): expected \"$want\", got: $(cat "$SCRATCH/err")"
    echo "ok $n: $(cat "$SCRATCH/err")"
done <"$T/unsupported.tsv"
[ "$n" -ge 30 ] || fail "only $n templates in unsupported.tsv"
echo "PASS: $n templates refused with their one-line error"
