#!/bin/sh
# Proves: --assistant_only_loss keeps its labels through packing with
# --append_concat_token.  The 16 UltraChat conversations in zephyr's template
# (whose EOS is the tokenizer's own </s>, so the separator's id comes from
# tokenizer.json, not from shardtune), packed wrapped and best-fit, hold
# every document's tokens with the labels the unpacked load gives them
# (data_agreement.sh checks those against tokenizers' offsets), each
# document followed by the EOS separator with no label: the separator
# overlaps no assistant reply, and only tokens that do are trained
# (src/data_rows.c).  No other test combines the two: the planted bug
# concat-eos-trained-assistant-only (tests/mutants/mutations) survived them
# all.  Needs only the system python3.
. "$top_srcdir/tests/lib.sh"

command -v python3 > /dev/null || fail "python3 (the system one is enough) is needed to compare the rows"
DATA_DUMP="$top_builddir/tests/data/data_dump"
[ -x "$DATA_DUMP" ] || fail "$DATA_DUMP is not built (make check builds it)"
tok="$top_srcdir/tests/tokenizer/data/tinyllama-chat"
set -- --tokenizer "$tok" --dataset_name "$top_srcdir/tests/data/ultrachat_200k_sample16.jsonl" \
    --chat_template_format zephyr --assistant_only_loss True
"$DATA_DUMP" "$@" --max_seq_len 100000 --out "$SCRATCH/docs.jsonl" || fail "data_dump, unpacked"
"$DATA_DUMP" "$@" --packing True --append_concat_token True --max_seq_len 512 --out "$SCRATCH/wrapped.jsonl" \
    || fail "data_dump, wrapped packing"
"$DATA_DUMP" "$@" --packing True --packing_strategy bfd --append_concat_token True --max_seq_len 4096 \
    --out "$SCRATCH/bfd.jsonl" || fail "data_dump, bfd packing"

python3 - "$SCRATCH" "$tok" <<'PY' || fail "packed rows lose the assistant-only labels or label the separator"
import json, sys
d, tok = sys.argv[1:]
IGNORE = -100
rows = lambda name: [json.loads(l) for l in open(f"{d}/{name}.jsonl")]
labels = lambda r: r["labels"] if r["labels"] is not None else r["ids"]
eos_token = json.load(open(f"{tok}/tokenizer_config.json"))["eos_token"]
eos = next(a["id"] for a in json.load(open(f"{tok}/tokenizer.json"))["added_tokens"] if a["content"] == eos_token)

docs = [(r["ids"], labels(r)) for r in rows("docs")]
# the masks are on: some tokens trained, some not, in every conversation
assert len(docs) == 16 and all(IGNORE in l and any(x != IGNORE for x in l) for _, l in docs), "no assistant-only masks"
want = [(ids + [eos], l + [IGNORE]) for ids, l in docs]

# wrapped: the documents and their separators end to end, cut every 512
got = rows("wrapped")
stream = [t for r in got for t in r["ids"]], [t for r in got for t in labels(r)]
assert stream == ([t for i, _ in want for t in i], [t for _, l in want for t in l]), \
    "wrapped: the packed stream is not each document's ids and labels, then the EOS without a label"
print(f"ok wrapped: {len(got)} rows carry the {len(docs)} documents' labels, every separator unlabelled")

# bfd: each segment of a row is one whole document and its separator
segs = []
for r in rows("bfd"):
    for s in sorted(set(r["seg"])):
        at = [k for k, x in enumerate(r["seg"]) if x == s]
        segs.append(([r["ids"][k] for k in at], [labels(r)[k] for k in at]))
assert sorted(segs) == sorted(want), "bfd: a segment is not one document's ids and labels, then the unlabelled EOS"
print(f"ok bfd: {len(segs)} segments, each one document with its labels and an unlabelled separator")
PY
echo PASS
