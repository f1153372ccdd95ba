#!/bin/sh
# tests/sanitize/run.sh: the sanitizer build and what runs under it.
# Configures _build_san (--enable-sanitizers: AddressSanitizer with
# LeakSanitizer, and UndefinedBehaviorSanitizer; -O1), builds the program
# and the unit tests, and runs:
# - every cmocka unit test (the parsers among them), leaks reported;
# - a 2-rank training run that saves checkpoints, and a run resumed from
#   one, whose losses must equal the uninterrupted run's bitwise.
# Any sanitizer report fails (exit 1).  Leaks inside Open MPI, OpenBLAS and
# other libraries are suppressed by tests/sanitize/lsan.supp, each entry
# with its reason; shardtune's own code must be leak-free.  CI runs this
# after tests/run-all.sh (.ci/run).
#   tests/sanitize/run.sh     (from the source tree; SHARDTUNE_SAN_BUILD=DIR for another build directory)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${SHARDTUNE_SAN_BUILD:-$top/_build_san}
unit="tests/io/test_safetensors tests/io/test_hf_config tests/data/test_data tests/data/test_sampler
      tests/tokenizer/test_tokenizer tests/fsdp/test_accel_config tests/quant/test_quant4 tests/test_tb_events"
start=$(date +%s)
[ -f "$top/configure" ] || (cd "$top" && autoreconf -fi > /dev/null)
mkdir -p "$build"
cd "$build"
[ -f Makefile ] || "$top/configure" -q --enable-sanitizers --disable-fuzzing CFLAGS="-g -O1"
make -j"$(nproc)" shardtune tests/fsdp/make_random_llama $unit > make.log 2>&1 || { tail -n 30 make.log; exit 1; }
echo "sanitize: built in $(( $(date +%s) - start )) s"

# halt at the first report; leaks on, with our suppressions
export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:exitcode=86:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:exitcode=86"
# full stacks (the fast unwinder stops in libraries built without frame
# pointers), so that the suppressions see whose allocation a leak is; and
# Open MPI's components stay loaded, so that their frames have names
export LSAN_OPTIONS="suppressions=$top/tests/sanitize/lsan.supp:print_suppressions=0:fast_unwind_on_malloc=0"
export OMPI_MCA_mca_component_disable_dlclose=1
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=1 top_srcdir="$top" top_builddir="$build"
work=$(mktemp -d "${TMPDIR:-/tmp}/shardtune-san.XXXXXX")
trap 'rm -rf "$work"' EXIT
bad=0
for t in $unit; do
    if ./"$t" > "$work/unit.log" 2>&1; then
        echo "sanitize: $t: clean"
    else
        cat "$work/unit.log"
        echo "sanitize: $t: FAILED"
        bad=1
    fi
done

./tests/fsdp/make_random_llama --out "$work/m" --rows 24 --layers 2 > /dev/null
train() { # train NAME [flags]: 2 ranks, 4 steps, a checkpoint every 2
    name=$1
    shift
    mpirun -np 2 ./shardtune train --model_name_or_path "$work/m" --dataset_name "$work/m/data.jsonl" \
        --max_seq_len 32 --output_dir "$work/$name" --per_device_train_batch_size 1 --gradient_accumulation_steps 3 \
        --learning_rate 1e-2 --lr_scheduler_type cosine --warmup_steps 1 --logging_steps 1 --lora_r 4 \
        --lora_alpha 8 --lora_dropout 0.1 --lora_target_modules all-linear --seed 3 --max_steps 4 --save_steps 2 \
        "$@" > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; echo "sanitize: train $name: FAILED"; bad=1; }
}
# losses DIR FROM: the "step, epoch, loss" of the steps from FROM on
losses() { grep -o '"step": [0-9]*, "epoch": [^,]*, "loss": [^,]*' "$1/metrics.jsonl" | awk -F'[:,]' "\$2 >= $2"; }
train ref
train resumed --resume_from_checkpoint "$work/ref/checkpoint-2.h5"
if [ "$bad" = 0 ]; then
    if [ "$(losses "$work/ref" 3)" = "$(losses "$work/resumed" 3)" ] && [ -n "$(losses "$work/ref" 3)" ] &&
        cmp -s "$work/ref/adapter_model.safetensors" "$work/resumed/adapter_model.safetensors"; then
        echo "sanitize: 2-rank train + save + resume: clean, the resumed losses and adapter equal the uninterrupted run's"
    else
        echo "sanitize: the resumed run differs from the uninterrupted one"
        bad=1
    fi
fi
echo "sanitize: $( [ "$bad" = 0 ] && echo PASS || echo FAIL ) in $(( $(date +%s) - start )) s"
exit "$bad"
