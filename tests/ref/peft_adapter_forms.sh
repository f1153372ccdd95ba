#!/bin/sh
# Proves: adapters that PEFT itself saved (get_peft_model(...).save_pretrained,
# tests/ref/make_adapter_forms.py) load with --adapter in every form peft writes
# their targets: a list of names, "all-linear" as peft 0.21 saves it (full
# paths in set order), a regex string, layers_to_transform (with layers_pattern,
# or an int), partial and full paths, exclude_modules (a list, a regex) and
# rank_pattern / alpha_pattern (also with rsLoRA).  For each:
#  - `shardtune eval --adapter` gives PEFT's eval loss (PeftModel.from_pretrained,
#    fp32, eval mode) to rel 1e-5;
#  - continued training that changes nothing (learning rate 0) saves an
#    adapter_config.json that PEFT loads to the same modules, r and alpha:
#    PEFT's loss of shardtune's saved adapter is the same;
#  - `shardtune merge` of it gives a model whose eval loss is PEFT's.
# Forms that do not fit the model (lm_head or embed_tokens as a target, a
# module that is not linear, targets matching nothing, r 0 in rank_pattern,
# layers_to_transform with a regex, a layer index beyond int) stop with one line naming
# adapter_config.json and a non-zero exit.
. "$top_srcdir/tests/lib.sh"
need_reference_python

"$PY" "$top_srcdir/tests/ref/make_adapter_forms.py" "$SCRATCH" > "$SCRATCH/make.log" 2>&1 ||
    { cat "$SCRATCH/make.log"; fail "make_adapter_forms.py"; }
model="--model_name_or_path $SCRATCH/model"
data="--dataset_name $SCRATCH/data.jsonl"
. "$top_srcdir/tests/ref/adapter_roundtrip.sh"

: > "$SCRATCH/results"
n=0
for a in "$SCRATCH"/ok_*; do
    roundtrip "$a"
    n=$((n + 1))
done
[ "$n" -eq 10 ] || fail "expected 10 accepted forms, found $n"

n=0
for a in "$SCRATCH"/no_*; do
    f=${a##*/}
    if "$SHARDTUNE" eval $model --adapter "$a" $data > "$SCRATCH/$f.out" 2> "$SCRATCH/$f.err"; then
        fail "$f: loaded, but should be refused"
    fi
    [ "$(wc -l < "$SCRATCH/$f.err")" -eq 1 ] || { cat "$SCRATCH/$f.err"; fail "$f: not one line"; }
    grep -q "^shardtune: error: $a/adapter_config.json: " "$SCRATCH/$f.err" ||
        { cat "$SCRATCH/$f.err"; fail "$f: the line does not name adapter_config.json"; }
    echo "$f: $(cat "$SCRATCH/$f.err")"
    n=$((n + 1))
done
[ "$n" -eq 7 ] || fail "expected 7 refused forms, found $n"

"$PY" "$top_srcdir/tests/ref/peft_eval_losses.py" "$SCRATCH/model" "$SCRATCH/data.jsonl" "$SCRATCH/results" ||
    fail "shardtune against PEFT (above)"
echo PASS
