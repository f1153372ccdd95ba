#!/bin/sh
# Proves: a bad distributed configuration stops every rank with one clear
# line and no hang: a misspelt key in the accelerate YAML (naming the
# closest key), num_processes that is not the MPI world size, and ranks
# started with different flags.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/fsdp/fsdp_lib.sh"

"$MAKE_MODEL" --out "$SCRATCH/m"
common="--model_name_or_path $SCRATCH/m --dataset_name $SCRATCH/m/data.jsonl --max_seq_len 16 --max_steps 1"

expect_error() { # expect_error WHAT PATTERN command...
    what=$1 pattern=$2
    shift 2
    if timeout 120 "$@" > "$SCRATCH/out" 2> "$SCRATCH/err"; then fail "$what: succeeded"; fi
    [ $? -ne 124 ] || fail "$what: hung"
    grep -q "shardtune: error:.*$pattern" "$SCRATCH/err" || { cat "$SCRATCH/err" >&2; fail "$what: no clear error"; }
    echo "ok: $what: $(grep -m1 'shardtune: error' "$SCRATCH/err")"
}

sed 's/fsdp_sharding_strategy/fsdp_sharding_stratgy/' "$top_srcdir/jobs/configs/fsdp_config.yaml" > "$SCRATCH/typo.yaml"
expect_error "misspelt key" "did you mean 'fsdp_sharding_strategy'" \
    "$MPIRUN" -np 2 "$SHARDTUNE" train $common --output_dir "$SCRATCH/o1" --config_file "$SCRATCH/typo.yaml"
# the shipped file says num_processes: 8
expect_error "num_processes" "num_processes is 8 but the job has 2 MPI ranks" \
    "$MPIRUN" -np 2 "$SHARDTUNE" train $common --output_dir "$SCRATCH/o2" \
    --config_file "$top_srcdir/jobs/configs/fsdp_config.yaml"
expect_error "different flags" "started with other flags" \
    "$MPIRUN" -np 1 "$SHARDTUNE" train $common --output_dir "$SCRATCH/o3" --seed 1 : \
    -np 1 "$SHARDTUNE" train $common --output_dir "$SCRATCH/o3" --seed 2
echo PASS
