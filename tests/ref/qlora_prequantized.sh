#!/bin/sh
# Proves (QLoRA, pre-quantized "*-bnb-4bit" checkpoints): a model directory
# that transformers 5 + bitsandbytes 0.50.2 saved with 4-bit weights (tiny
# Llama; nf4 nested, nf4 plain, fp4 plain; quant storage bfloat16) loads in
# shardtune with 4-bit on by itself (no flag), its codes and block state
# used as saved; tests/model_dump's logits, loss, every LoRA gradient and dx
# equal transformers + peft on that same saved directory (fp32 compute) to
# rel 1e-5; 2 ranks (cpu_ram_efficient_loading; for nf4 nested also rank 0
# broadcasting) equal 1 rank bit for bit, and the stored bytes on 2 and 3
# ranks (uneven byte ranges) equal 1 rank's and, split by weight4.h's layout,
# the saved tensors byte for byte (codes used as saved); shardtune quantizing
# the bf16 directory on load stores the same bytes as the saved ones (packed codes
# and fp32 absmax bit for bit; nested codes but for bitsandbytes' CPU lookup,
# counted and bounded by qlora_prequantized.py compare); and a conflicting
# --bnb_4bit_quant_type / --use_nested_quant, a malformed quant_state JSON, a
# packed tensor of the wrong size, an unknown quant_type and a blocksize
# other than 64, and an 8-bit or GPTQ quantization_config are each refused
# with one line naming the file or flag; a DoRA adapter's gradients on the
# saved checkpoint equal PEFT's too; `shardtune merge` of an adapter on
# the saved checkpoint writes what PEFT's Linear4bit.merge computes there.
. "$top_srcdir/tests/lib.sh"
. "$top_srcdir/tests/ref/qlora_lib.sh"
D="$SCRATCH/q"
ROWS=4 T=32
cases="nf4:True nf4:False fp4:False"

"$PY" "$REF/qdora_reference.py" make "$D" >"$SCRATCH/make.log" 2>&1 \
    || { cat "$SCRATCH/make.log"; fail "qdora_reference.py make"; }
set --
for c in $cases; do set -- "$@" "$D/model" "$D/m4.${c%:*}.${c#*:}" "${c%:*}" "${c#*:}"; done
"$PY" "$REF/qlora_prequantized.py" save "$@" >"$SCRATCH/save.log" 2>&1 \
    || { cat "$SCRATCH/save.log"; fail "qlora_prequantized.py save"; }
grep '^qlora_prequantized:' "$SCRATCH/save.log" | grep 'nf4.True'

# dump RUN NP EFFICIENT MODEL FLAGS...: model_dump's outputs in $SCRATCH/RUN.out,
# the stored frozen bytes in $SCRATCH/RUN.frozen
dump() {
    run=$1 np=$2 eff=$3 model=$4
    shift 4
    MODEL_DUMP_FROZEN="$SCRATCH/$run.frozen" FSDP_SHARDING_STRATEGY=FULL_SHARD FSDP_CPU_RAM_EFFICIENT_LOADING=$eff \
        timeout 300 "$MPIRUN" -np "$np" "$MODEL_DUMP" --model "$model" --adapter "$D/adapter" \
        --data "$D/data.jsonl" --rows $ROWS --max_seq_len $T --out "$SCRATCH/$run.out" "$@" \
        >"$SCRATCH/$run.log" 2>&1 || { cat "$SCRATCH/$run.log"; fail "model_dump $run"; }
}

set --
for c in $cases; do
    qt=${c%:*} nested=${c#*:} m4="$D/m4.$qt.$nested"
    dump "$qt.$nested.1" 1 True "$m4"
    grep -q "^4-bit: linear weights as $qt.*as bitsandbytes saved them" "$SCRATCH/$qt.$nested.1.log" \
        || { cat "$SCRATCH/$qt.$nested.1.log"; fail "$qt nested=$nested: no pre-quantized 4-bit line"; }
    dump "$qt.$nested.2eff" 2 True "$m4"
    [ "$nested" = False ] || dump "$qt.$nested.2root" 2 False "$m4"
    dump "$qt.$nested.3eff" 3 True "$m4"
    # the bf16 directory quantized on load, for the byte comparison
    dump "$qt.$nested.onload" 1 True "$D/model" --use_4bit_quantization True --bnb_4bit_quant_type "$qt" \
        --use_nested_quant "$nested"
    set -- "$@" "$qt" "$nested" "$m4" "$D/adapter" "$D/data.jsonl" $ROWS $T "$SCRATCH/$qt.$nested.ref"
done
"$PY" "$REF/qlora_prequantized.py" grads "$@" >"$SCRATCH/ref.log" 2>&1 \
    || { cat "$SCRATCH/ref.log"; fail "qlora_prequantized.py grads"; }

status=0
set --
for c in $cases; do
    qt=${c%:*} nested=${c#*:} o="$SCRATCH/${c%:*}.${c#*:}"
    echo "== $qt nested=$nested: the saved 4-bit model, 1 rank against transformers + peft on it"
    "$PY" "$REF/compare_tensors.py" "$o.1.out" "$o.ref" --rtol 1e-5 >"$SCRATCH/cmp.log" \
        || { cat "$SCRATCH/cmp.log"; echo "FAIL: $qt nested=$nested differs from transformers + peft"; status=1; }
    tail -1 "$SCRATCH/cmp.log"
    for run in 2eff 2root; do
        [ -f "$o.$run.out" ] || continue
        "$PY" "$REF/compare_tensors.py" "$o.$run.out" "$o.1.out" --rtol 0 >"$SCRATCH/cmp.log" \
            || { cat "$SCRATCH/cmp.log"; echo "FAIL: $qt nested=$nested: 2 ranks ($run) differ from 1"; status=1; }
    done
    for run in 2eff 2root 3eff; do
        [ -f "$o.$run.frozen" ] || continue
        cmp "$o.$run.frozen" "$o.1.frozen" || { echo "FAIL: $qt nested=$nested: stored bytes ($run)"; status=1; }
    done
    echo "== $qt nested=$nested: 2 ranks equal 1 rank; stored bytes on 2 and 3 ranks equal"
    # exact: the stored bytes of the saved model against its tensors; onload:
    # those of the bf16 directory quantized on load against the same tensors
    set -- "$@" "$o.1.frozen" "$D/m4.$qt.$nested" "$qt" "$nested" exact \
        "$o.onload.frozen" "$D/m4.$qt.$nested" "$qt" "$nested" onload
done
"$PY" "$REF/qlora_prequantized.py" compare "$@" || status=1
[ $status = 0 ] || fail "pre-quantized checkpoints"

# QDoRA on the saved checkpoint: a PEFT DoRA adapter's A, B and magnitude
# gradients (DoRA's row norm of the weight dequantized as saved)
timeout 300 "$MODEL_DUMP" --model "$D/m4.nf4.True" --adapter "$D/adapter_dora" \
    --data "$D/data.jsonl" --rows $ROWS --max_seq_len $T --out "$SCRATCH/dora.out" >"$SCRATCH/dora.log" 2>&1 \
    || { cat "$SCRATCH/dora.log"; fail "model_dump QDoRA on the saved checkpoint"; }
"$PY" "$REF/qlora_prequantized.py" grads nf4 True "$D/m4.nf4.True" "$D/adapter_dora" "$D/data.jsonl" $ROWS $T \
    "$SCRATCH/dora.ref" >"$SCRATCH/dora.ref.log" 2>&1 || { cat "$SCRATCH/dora.ref.log"; fail "QDoRA reference"; }
grep -q 'lora tensors=42' "$SCRATCH/dora.ref.log" || fail "the QDoRA reference did not see A, B and m of 14 layers"
echo "== nf4 nested, QDoRA: the saved 4-bit model, 1 rank against transformers + peft on it"
"$PY" "$REF/compare_tensors.py" "$SCRATCH/dora.out" "$SCRATCH/dora.ref" --rtol 1e-5 >"$SCRATCH/cmp.log" \
    || { cat "$SCRATCH/cmp.log"; fail "QDoRA on the saved checkpoint differs from transformers + peft"; }
tail -1 "$SCRATCH/cmp.log"

# Refusals: one line naming the flag or the file and tensor, exit status 1.
# refused WHAT PATTERN MODEL FLAGS...
refused() {
    what=$1 pattern=$2 model=$3
    shift 3
    if "$MODEL_DUMP" --model "$model" --data "$D/data.jsonl" --rows 1 --max_seq_len 8 --out "$SCRATCH/x.out" "$@" \
        >"$SCRATCH/refused.log" 2>&1; then
        fail "$what: accepted"
    fi
    n=$(grep -c 'error' "$SCRATCH/refused.log" || true)
    grep -q "$pattern" "$SCRATCH/refused.log" && [ "$n" = 1 ] \
        || { cat "$SCRATCH/refused.log"; fail "$what: not one line matching '$pattern'"; }
    echo "refused ($what): $(grep error "$SCRATCH/refused.log")"
}
M4="$D/m4.nf4.True"
refused "quant type flag" "^shardtune: error: --bnb_4bit_quant_type fp4: .*config.json" "$M4" --bnb_4bit_quant_type fp4
refused "nested flag" "^shardtune: error: --use_nested_quant False: .*config.json" "$M4" --use_nested_quant False
set --
for kind in json shape quant_type blocksize 8bit gptq; do set -- "$@" "$SCRATCH/bad_$kind" $kind; done
"$PY" "$REF/qlora_prequantized.py" corrupt "$M4" "$@" || fail "qlora_prequantized.py corrupt"
refused "malformed JSON" "bad_json/model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight.quant_state.bitsandbytes__nf4': quant_state is not valid JSON" "$SCRATCH/bad_json"
refused "packed bytes" "bad_shape/model.safetensors: tensor 'model.layers.0.self_attn.q_proj.weight' holds 4096 bytes" "$SCRATCH/bad_shape"
refused "quant_type" "bad_quant_type/model.safetensors: tensor '.*q_proj.weight.quant_state.bitsandbytes__nf4': quant_type 'int4' is not one of nf4, fp4" "$SCRATCH/bad_quant_type"
refused "blocksize" "bad_blocksize/model.safetensors: tensor '.*q_proj.*': blocksize 128 is not supported" "$SCRATCH/bad_blocksize"
refused "8-bit" "bad_8bit/config.json: \"quantization_config\": load_in_8bit checkpoints are not supported" "$SCRATCH/bad_8bit"
refused "GPTQ" "bad_gptq/config.json: \"quantization_config\": quant_method 'gptq' is not supported" "$SCRATCH/bad_gptq"

# merge on the saved 4-bit checkpoints (2 ranks, several files): each linear
# weight dequantized from its saved codes with the adapter merged in, written
# in the checkpoint's bf16, against the sums PEFT's Linear4bit.merge computes
# on the same directory; no 4-bit state or quantization_config left
for c in nf4:True fp4:False; do
    qt=${c%:*} nested=${c#*:} out="$SCRATCH/merged.${c%:*}.${c#*:}"
    timeout 300 "$MPIRUN" -np 2 "$SHARDTUNE" merge --model_name_or_path "$D/m4.$qt.$nested" --adapter "$D/adapter" \
        --out "$out" --max_shard_size 100KB >"$out.log" 2>&1 || { cat "$out.log"; fail "merge of m4.$qt.$nested"; }
    "$PY" "$REF/qlora_prequantized.py" merge "$D/m4.$qt.$nested" "$qt" "$nested" "$D/adapter" "$out" \
        >"$out.check" 2>&1 || { cat "$out.check"; fail "merge of m4.$qt.$nested differs from PEFT's"; }
    grep '^merge' "$out.check"
    ! grep -q quantization_config "$out/config.json" || fail "merged config.json still has quantization_config"
done
echo PASS
