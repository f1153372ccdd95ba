#!/bin/sh
# packed_loss.sh: best-fit packing changes nothing but the layout.  On a
# seeded random Llama, 40 documents of 3-60 tokens packed into rows of 64
# (--packing True --packing_strategy bfd: positions restart per document,
# attention stays inside it, no target crosses a boundary) give the loss sum
# and the target count of the same documents run one per row, unpacked,
# to a relative 1e-5.  Python's json only compares the numbers.
. "$top_srcdir/tests/lib.sh"

MAKE_MODEL="$top_builddir/tests/fsdp/make_random_llama"
ST_DUMP="$top_builddir/tests/io/st_dump"
for t in "$MODEL_DUMP" "$MAKE_MODEL" "$ST_DUMP"; do
    [ -x "$t" ] || fail "$t is not built (make check builds it)"
done
need_tool python3 "to read the dumps"
M="$SCRATCH/model"
"$MAKE_MODEL" --out "$M" --rows 40 --min_len 3 --max_len 60 --seed 7 >/dev/null || fail "make_random_llama"
"$MODEL_DUMP" --model "$M" --data "$M/data.jsonl" --rows 1000 --max_seq_len 64 \
    --packing True --packing_strategy bfd --out "$SCRATCH/packed.st" || fail "model_dump (packed)"
"$MODEL_DUMP" --model "$M" --data "$M/data.jsonl" --rows 1000 --max_seq_len 64 \
    --out "$SCRATCH/single.st" || fail "model_dump (one document per row)"
"$ST_DUMP" "$SCRATCH/packed.st" loss_sum n_targets >"$SCRATCH/packed.json" || fail "st_dump"
"$ST_DUMP" "$SCRATCH/single.st" loss_sum n_targets >"$SCRATCH/single.json" || fail "st_dump"
python3 - "$SCRATCH/packed.json" "$SCRATCH/single.json" <<'PYEOF' || fail "packed and unpacked losses differ"
import json, sys
def read(path):
    d = json.load(open(path))
    t = {x["name"]: x for x in d["tensors"]}
    return float(d["metadata"]["loss_sum"]), int(d["metadata"]["n_targets"]), t["logits"]["shape"][0]
(ps, pn, prows), (ss, sn, srows) = read(sys.argv[1]), read(sys.argv[2])
if prows >= srows:
    sys.exit(f"FAIL: {srows} documents were not packed ({prows} rows)")
if pn != sn:
    sys.exit(f"FAIL: {pn} targets packed, {sn} unpacked")
rel = abs(ps - ss) / abs(ss)
if rel > 1e-5:
    sys.exit(f"FAIL: loss sum {ps} packed, {ss} unpacked (rel {rel:.2e})")
print(f"ok: {srows} documents in {prows} packed rows: loss sum {ps:.6f} vs {ss:.6f} (rel {rel:.1e}), "
      f"{pn} targets each")
PYEOF
