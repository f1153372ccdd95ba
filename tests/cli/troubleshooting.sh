#!/bin/sh
# Proves: every row of doc/user-guide.md's troubleshooting table is an error
# a user can meet.  The table's rows are "| id | `message` | cause | fix |";
# `...` in a message stands for any text.  For each row the command below
# (trigger, by id) exits nonzero (not by a signal) with exactly one line on
# stderr, "shardtune: error: " followed by the row's message.  A row without
# a command, or a command without a row, fails the test.
# No Python: the inputs are made from the shipped assets.
. "$top_srcdir/tests/lib.sh"

GUIDE="$top_srcdir/doc/user-guide.md"
A="$ASSETS"
S="$SHARDTUNE"
cd "$SCRATCH"

# inputs: the shipped model, broken copies of it, small data and config files
"$S" convert llama2c --checkpoint "$A/model/stories260K.bin" --tokenizer "$A/model/tok512.bin" --out m >/dev/null
IDS="$A/data/tiny_stories_ids.jsonl"
mkdir -p nost badcfg gpt nohid dd empty
cp m/config.json m/tokenizer* nost/
cp m/* badcfg/ && echo '{not json' >badcfg/config.json
cp m/* gpt/ && sed 's/"model_type": *"llama"/"model_type": "gpt2"/' m/config.json >gpt/config.json
cp m/* nohid/ && grep -v '"hidden_size"' m/config.json >nohid/config.json
cp "$IDS" dd/train.jsonl
: >empty.jsonl
echo 'not json' >bad.jsonl
echo '{"foo": "bar"}' >nocol.jsonl
echo '{"input_ids": [1, 5000, 3]}' >oov.jsonl
echo '{"messages": [{"role": "user", "content": "hi"}]}' >msg.jsonl
echo '{% if %}' >bad.jinja
printf '{{ raise_exception("Conversation roles must alternate") }}' >raise.jinja
printf 'distributed_type: [\n' >inv.yaml
printf 'distributed_type: FSDP\nfsdp_config:\n  fsdp_sharding_stratgy: FULL_SHARD\n' >typo.yaml
printf 'distributed_type: FSDP\nfsdp_offload_params: true\n' >place.yaml
printf 'fsdp_config:\n  fsdp_offload_params: true\n' >nodt.yaml
printf 'distributed_type: DEEPSPEED\n' >ds.yaml
printf 'distributed_type: FSDP\nfsdp_config:\n  fsdp_sharding_strategy: ZERO3\n' >strat.yaml
printf 'distributed_type: FSDP\nfsdp_config:\n  fsdp_offload_params: maybe\n' >bool.yaml
printf 'distributed_type: FSDP\nnum_processes: 8\n' >np.yaml

T="--model_name_or_path m --dataset_name $IDS --max_steps 2 --max_seq_len 32 --per_device_train_batch_size 2 --lora_r 4"
TD="--dataset_name $IDS --output_dir o --max_steps 1 --max_seq_len 32"
# a run with checkpoints to resume from
"$S" train $T --output_dir run --save_steps 1 >run.log 2>&1 || { cat run.log; fail "the run that saves checkpoints"; }
head -c 1000 run/checkpoint-2.h5 >trunc.h5

# trigger ID: the command that produces row ID's message
trigger() {
    case $1 in
    unknown-command) "$S" trian ;;
    unknown-flag) "$S" train --learing_rate 1 ;;
    flag-of-other-command) "$S" generate --model_name_or_path m --prompt hi --learning_rate 1 ;;
    missing-value) "$S" train $T --output_dir o --lora_r ;;
    required) "$S" train --dataset_name "$IDS" --output_dir o ;;
    not-number) "$S" train $T --output_dir o --learning_rate abc ;;
    not-boolean) "$S" train $T --output_dir o --gradient_checkpointing maybe ;;
    not-one-of) "$S" train $T --output_dir o --eval_strategy sometimes ;;
    too-small) "$S" train $T --output_dir o --lora_r 0 ;;
    seq-len) "$S" train $T --output_dir o --max_seq_len 1 ;;
    full-fine-tuning) "$S" train $T --output_dir o --use_peft_lora False ;;
    target-modules) "$S" train $T --output_dir o --lora_target_modules lm_head ;;
    template-both) "$S" train $T --output_dir o --chat_template_path bad.jinja --chat_template_format chatml ;;
    sampling) "$S" generate --model_name_or_path m --prompt hi --top_p 2 ;;
    model-dir) "$S" train --model_name_or_path nosuch $TD ;;
    no-weights) "$S" train --model_name_or_path nost $TD ;;
    config-json) "$S" train --model_name_or_path badcfg $TD ;;
    not-llama) "$S" train --model_name_or_path gpt $TD ;;
    config-key) "$S" generate --model_name_or_path nohid --prompt hi ;;
    dataset-missing) "$S" train $T --output_dir o --dataset_name nosuch.jsonl ;;
    split-missing) "$S" train $T --output_dir o --dataset_name dd --splits training ;;
    no-rows) "$S" train $T --output_dir o --dataset_name empty.jsonl ;;
    row-json) "$S" train $T --output_dir o --dataset_name bad.jsonl ;;
    row-column) "$S" train $T --output_dir o --dataset_name nocol.jsonl ;;
    out-of-vocabulary) "$S" train $T --output_dir o --dataset_name oov.jsonl ;;
    messages-no-template) "$S" train $T --output_dir o --dataset_name "$A/data/ultrachat_200k_sample16.jsonl" ;;
    assistant-only) "$S" train $T --output_dir o --assistant_only_loss True ;;
    template-missing) "$S" train $T --output_dir o --chat_template_path nosuch.jinja ;;
    template-syntax) "$S" train $T --output_dir o --dataset_name msg.jsonl --chat_template_path bad.jinja ;;
    template-raise) "$S" chat-template --chat_template_path raise.jinja msg.jsonl ;;
    chat-no-template) "$S" generate --model_name_or_path m --chat --prompt hi ;;
    yaml-invalid) "$S" train $T --output_dir o --config_file inv.yaml ;;
    yaml-unknown-key) "$S" train $T --output_dir o --config_file typo.yaml ;;
    yaml-misplaced-key) "$S" train $T --output_dir o --config_file place.yaml ;;
    yaml-no-distributed-type) "$S" train $T --output_dir o --config_file nodt.yaml ;;
    yaml-distributed-type) "$S" train $T --output_dir o --config_file ds.yaml ;;
    yaml-value) "$S" train $T --output_dir o --config_file strat.yaml ;;
    yaml-boolean) "$S" train $T --output_dir o --config_file bool.yaml ;;
    num-processes) "$S" train $T --output_dir o --config_file np.yaml ;;
    environment) FSDP_SHARDING_STRATEGY=ZERO3 "$S" train $T --output_dir o ;;
    no-latest) "$S" train $T --output_dir o --resume_from_checkpoint latest ;;
    bad-checkpoint) "$S" train $T --output_dir o --resume_from_checkpoint trunc.h5 ;;
    foreign-checkpoint) "$S" train $T --output_dir o --lora_r 8 --resume_from_checkpoint run/checkpoint-1.h5 ;;
    resume-batch) "$S" train $T --output_dir o --per_device_train_batch_size 4 --resume_from_checkpoint run/checkpoint-1.h5 ;;
    resume-seed) "$S" train $T --output_dir o --seed 7 --resume_from_checkpoint run/checkpoint-1.h5 ;;
    no-eval-split) "$S" train $T --output_dir o --eval_strategy epoch ;;
    adapter-missing) "$S" train $T --output_dir o --adapter nosuch ;;
    output-dir) "$S" train $T --output_dir /proc/nosuch/out ;;
    run-locked) mkdir -p lk && (exec 9> lk/shardtune.lock && echo "pid 1 host h since t" >&9 && flock -x 9 &&
        "$S" train $T --output_dir lk) ;;
    diverged) "$S" train $T --output_dir o --save_strategy no --learning_rate 1e30 --max_steps 4 --max_bad_steps 2 ;;
    plot-no-metrics) "$S" plot nosuchdir ;;
    plot-extension) "$S" plot run --out loss.pdf ;;
    merge-required) "$S" merge --model_name_or_path m --adapter run ;;
    decode-id) "$S" tokenize --tokenizer m --decode "1 99999" ;;
    *) return 200 ;;
    esac
}
# the ids above, for the "command without a row" check
ids_in_script=$(sed -n 's/^    \([a-z][a-z0-9-]*\)) .*/\1/p' "$top_srcdir/tests/cli/troubleshooting.sh")

# the table: "| id | `message` | ..." lines of the Troubleshooting section
awk '/^## /{on = ($0 == "## Troubleshooting")} on && /^\| [a-z][a-z0-9-]* \| `/' "$GUIDE" >rows
[ -s rows ] || fail "no troubleshooting rows in $GUIDE"

n=0
while IFS= read -r row; do
    id=$(printf '%s\n' "$row" | sed 's/^| \([a-z0-9-]*\) | .*/\1/')
    msg=$(printf '%s\n' "$row" | sed 's/^| [a-z0-9-]* | `\([^`]*\)` |.*/\1/')
    [ "$msg" != "$row" ] || fail "row $id: no message in backticks"
    # the message as an extended regular expression: ... is any text
    re=$(printf '%s\n' "shardtune: error: $msg" | LC_ALL=C awk '{
        k = split($0, p, /\.\.\./); out = ""
        for (i = 1; i <= k; i++) { s = p[i]; gsub(/[][\\^$.|()*+?{}]/, "\\\\&", s); out = out s (i < k ? ".*" : "") }
        print out }')
    rc=0
    trigger "$id" </dev/null >out 2>err || rc=$?
    [ "$rc" -ne 200 ] || fail "row $id has no command in tests/cli/troubleshooting.sh"
    if [ "$rc" -eq 0 ] || [ "$rc" -ge 128 ]; then cat err; fail "row $id: exit status $rc, expected a clean failure"; fi
    [ "$(wc -l <err)" -eq 1 ] || { cat err; fail "row $id: stderr is not one line"; }
    LC_ALL=C grep -Eqx -- "$re" err || { cat err; fail "row $id: stderr does not match \"$msg\""; }
    echo "$id: exit $rc: $(cat err)"
    n=$((n + 1))
done <rows

for id in $ids_in_script; do
    grep -q "^| $id | " rows || fail "command $id has no row in the troubleshooting table"
done
echo "$n rows, each produced by its command"
echo PASS
