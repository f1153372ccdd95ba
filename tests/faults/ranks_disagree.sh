#!/bin/sh
# Proves: ranks that disagree stop at start, within seconds, every rank with
# one line naming the rank that differs and what differs: flags, the
# accelerate configuration (an FSDP_* variable on one rank), config.json,
# the weight files, another file of the model directory, the data.  The
# ranks get the same flags (relative paths) but different working
# directories (mpirun's -wdir), so that rank 1 reads other files, as a node
# with a stale copy would.  A run whose ranks agree trains (the baseline).
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"
. "$top_srcdir/tests/ckpt/ckpt_lib.sh"

mkdir "$SCRATCH/a"
"$MAKE_MODEL" --out "$SCRATCH/a/m" --rows 12 --layers 1 > /dev/null
cp "$SCRATCH/a/m/data.jsonl" "$SCRATCH/a/d.jsonl"
echo '{"max_new_tokens": 8}' > "$SCRATCH/a/m/generation_config.json"
# rank 1's directory: B, a copy of A and then changed as each case says
copy_a() { rm -rf "$SCRATCH/b" && cp -r "$SCRATCH/a" "$SCRATCH/b"; }
flags="--model_name_or_path m --dataset_name d.jsonl --max_seq_len 16 --max_steps 1 --lora_r 4 --save_strategy no"

# disagree NAME PATTERN [ARGS of rank 1...]: rank 0 in A, rank 1 in B;
# rank 1 runs ARGS before shardtune's flags when given (env VAR=...)
disagree() {
    name=$1 pattern=$2
    shift 2
    t0=$(date +%s)
    if timeout 120 "$MPIRUN" -np 1 -wdir "$SCRATCH/a" "$SHARDTUNE" train $flags --output_dir "$SCRATCH/o.$name" : \
        -np 1 -wdir "$SCRATCH/b" "$@" "$SHARDTUNE" train $flags --output_dir "$SCRATCH/o.$name" \
        > "$SCRATCH/$name.log" 2>&1; then
        fail "$name: the run started"
    else
        status=$?
    fi
    [ "$status" -ne 124 ] || fail "$name: hung"
    one_error "$name" "rank 1 $pattern"
    [ $(( $(date +%s) - t0 )) -le 60 ] || fail "$name: took over 60 s to stop"
    [ ! -e "$SCRATCH/o.$name/metrics.jsonl" ] || fail "$name: a step was logged"
}

copy_a
fsdp_agree() {
    timeout 120 "$MPIRUN" -np 1 -wdir "$SCRATCH/a" "$SHARDTUNE" train $flags --output_dir "$SCRATCH/o.agree" : \
        -np 1 -wdir "$SCRATCH/b" "$SHARDTUNE" train $flags --output_dir "$SCRATCH/o.agree" > "$SCRATCH/agree.log" 2>&1
}
fsdp_agree || { cat "$SCRATCH/agree.log"; fail "ranks that agree did not train"; }
echo "agree: trained"

if timeout 120 "$MPIRUN" -np 1 -wdir "$SCRATCH/a" "$SHARDTUNE" train $flags --output_dir "$SCRATCH/o.flags" --seed 1 : \
    -np 1 -wdir "$SCRATCH/b" "$SHARDTUNE" train $flags --output_dir "$SCRATCH/o.flags" --seed 2 \
    > "$SCRATCH/flags.log" 2>&1; then fail "flags: the run started"; fi
one_error flags "rank 1 was started with other flags than rank 0$"

disagree accelerate "has another accelerate configuration than rank 0 (config file or FSDP_\* environment)$" \
    env FSDP_BACKWARD_PREFETCH=BACKWARD_POST

copy_a
sed -i 's/"rms_norm_eps": [^,]*/"rms_norm_eps": 1e-06/' "$SCRATCH/b/m/config.json"
cmp -s "$SCRATCH/a/m/config.json" "$SCRATCH/b/m/config.json" && fail "the config.json edit changed nothing"
disagree config "read another config.json than rank 0 (in m)$"

copy_a
"$MAKE_MODEL" --out "$SCRATCH/other" --rows 12 --layers 1 --seed 2 > /dev/null
cp "$SCRATCH/other/model.safetensors" "$SCRATCH/b/m/model.safetensors"
disagree weights "read other weight files than rank 0 (the \*.safetensors of m: names, sizes or first MiB)$"

copy_a
echo '{"max_new_tokens": 16}' > "$SCRATCH/b/m/generation_config.json"
disagree files "read other tokenizer or model files than rank 0 (the other files of m)$"

copy_a
sed -i '1s/\[[0-9]*/[7/' "$SCRATCH/b/d.jsonl"
cmp -s "$SCRATCH/a/d.jsonl" "$SCRATCH/b/d.jsonl" && fail "the data edit changed nothing"
disagree data "read other data than rank 0 (--dataset_name d.jsonl: the tokenized rows differ)$"
echo PASS
