#!/bin/sh
# jinja_seeds.sh DIR: the seed inputs of the chat-template fuzz target, one
# file each: tests/chat_template's model templates, its feature templates and
# the templates it must refuse (unsupported.tsv).
set -eu
T="$(cd "$(dirname "$0")/../chat_template" && pwd)"
mkdir -p "$1"
cp "$T"/templates/*.jinja "$T/generation_zephyr.jinja" "$1/"
awk -v dir="$1" '/^#### /{f=dir "/feature_" $2 ".jinja"; printf "" > f; next} {print >> f}' "$T/features.jinja-list"
n=0
while IFS="$(printf '\t')" read -r tpl _; do
    case $tpl in '#'*|'') continue ;; esac
    n=$((n + 1))
    printf '%b' "$tpl" >"$1/refused_$n.jinja"
done <"$T/unsupported.tsv"
