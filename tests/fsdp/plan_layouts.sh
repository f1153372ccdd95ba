#!/bin/sh
# Proves, on the PEFT guide's Llama-2-70B runs (doc/plans/llama-2-70b, the
# guide's accelerate files), that `shardtune plan`
# - picks the CUDA backend's layout for --device cuda, and by itself when
#   bf16 is asked for (the LoRA file's mixed_precision: bf16, or --bf16 True)
#   with the device left to auto; the CPU layout for --device cpu, and for
#   auto without bf16 (its fp32 layout: SHARDTUNE_CPU_BF16=0 here, as on a CPU
#   without bf16 instructions; tests/cpu_bf16/plan_matches_bf16.sh holds its
#   bf16 layout to runs);
# - in that layout differs from the CPU layout only in activations, by
#   exactly what the CUDA backend keeps otherwise (stated here from the design,
#   not from the code): the L + 1 layer inputs (the residual stream) in bf16
#   instead of fp32, minus one fp32 scratch row set N x hidden to widen a
#   layer's input in, plus the CUDA ops' scratch (fused attention: rowsum
#   B x T x heads fp32; the loss: a logits chunk of min(N, 256 MiB / (vocab x
#   4)) rows and N doubles; the norm: 512 doubles) and, with 4-bit weights,
#   the 288 fp32 code values of the dequantization; every other category
#   and the traffic equal to the byte; with fsdp_offload_params, comm_buffers
#   also hold NCCL's staging of an offloaded shard: at least the largest
#   unit's frozen shard, at most that plus the CPU layout's comm peak;
# - sizes 4-bit linear weights as the flags say: frozen bytes equal to
#   bitsandbytes' layout (weight4.h) summed over the model, nested
#   (n/2 + n/64 + 4 ceil(n/64/256) + 4 bytes) or plain (n/2 + 4 n/64), fp4 the
#   same bytes as nf4; and as a bitsandbytes 4-bit checkpoint's config.json
#   says (quantization_config, no 4-bit flags), as a run reads it.
. "$top_srcdir/tests/lib.sh"

model="$top_srcdir/doc/plans/llama-2-70b"
lora="--config_file $top_srcdir/jobs/configs/fsdp_config.yaml --model_name_or_path $model --torch_dtype bfloat16 \
    --num_processes 8 --max_length 2048 --per_device_train_batch_size 8 --gradient_accumulation_steps 4 \
    --gradient_checkpointing True --lora_r 8 --lora_alpha 16 --lora_dropout 0.1 --lora_target_modules all-linear"
qlora="--config_file $top_srcdir/jobs/configs/fsdp_config_qlora.yaml --model_name_or_path $model \
    --torch_dtype bfloat16 --use_4bit_quantization True --num_processes 2 --max_length 2048 \
    --per_device_train_batch_size 2 --gradient_accumulation_steps 2 --gradient_checkpointing True --lora_r 8 \
    --lora_alpha 16 --lora_target_modules all-linear"
plan() { # plan NAME DEVICE flags...: DEVICE goes to $SHARDTUNE_DEVICE
    out=$1 dev=$2
    shift 2
    SHARDTUNE_CPU_BF16=0 SHARDTUNE_DEVICE=$dev "$SHARDTUNE" plan --json "$@" > "$SCRATCH/$out.json" 2> "$SCRATCH/$out.err" \
        || { cat "$SCRATCH/$out.err"; fail "plan $out"; }
}
plan lora.cpu cpu $lora
plan lora.cuda cpu $lora --device cuda --bf16 True
plan lora.auto auto $lora
plan qlora.cpu cpu $qlora --use_nested_quant True
plan qlora.cuda auto $qlora --use_nested_quant True --bf16 True
plan qlora.auto auto $qlora --use_nested_quant True
FSDP_OFFLOAD_PARAMS=false plan qlora.cpu.device cpu $qlora --use_nested_quant True
FSDP_OFFLOAD_PARAMS=false plan qlora.cuda.device cpu $qlora --use_nested_quant True --device cuda --bf16 True
plan qlora.plain cpu $qlora
plan qlora.fp4 cpu $qlora --use_nested_quant True --bnb_4bit_quant_type fp4
plan qlora.fp4_plain cpu $qlora --bnb_4bit_quant_type fp4
mkdir "$SCRATCH/bnb"
python3 - "$model/config.json" "$SCRATCH/bnb/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
c["quantization_config"] = {"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_quant_type": "fp4",
                            "bnb_4bit_use_double_quant": False}
json.dump(c, open(sys.argv[2], "w"))
PY
plan qlora.saved cpu $(echo "$qlora" | sed "s|--model_name_or_path [^ ]*|--model_name_or_path $SCRATCH/bnb|; s|--use_4bit_quantization True||")

python3 - "$SCRATCH" <<'PY' || fail "plans differ from the layouts' rules"
import json, math, sys
d = sys.argv[1]
P = {k: json.load(open(f"{d}/{k}.json")) for k in
     ("lora.cpu", "lora.cuda", "lora.auto", "qlora.cpu", "qlora.cuda", "qlora.auto", "qlora.plain", "qlora.fp4",
      "qlora.fp4_plain", "qlora.cpu.device", "qlora.cuda.device", "qlora.saved")}
bad = []
def check(what, got, want):
    print(f"{what}: {got}" + ("" if got == want else f"  EXPECTED {want}"))
    if got != want:
        bad.append(what)

L, D, I, H, KV, V, hd = 80, 8192, 28672, 64, 8, 32000, 128
for k, want in (("lora.cpu", "cpu"), ("lora.cuda", "cuda-bf16"), ("lora.auto", "cuda-bf16"), ("qlora.cpu", "cpu"),
                ("qlora.cuda", "cuda-bf16"), ("qlora.auto", "cpu")):
    check(f"{k} layout", P[k]["layout"], want)

def cuda_delta(B, T, four_bit):
    N = B * T
    chunk = min(N, (256 << 20) // (V * 4))
    scratch = B * T * H * 4 + chunk * V * 4 + N * 8 + 512 * 8 + (288 * 4 if four_bit else 0)
    return -(L + 1) * N * D * 2 + N * D * 4 + scratch

def plain(n): return (n + 1) // 2 + 4 * math.ceil(n / 64)
def nested(n):
    blocks = math.ceil(n / 64)
    return (n + 1) // 2 + blocks + 4 * math.ceil(blocks / 256) + 4
linears = [D * D, KV * hd * D, KV * hd * D, D * D, I * D, I * D, D * I]

# the largest frozen shard of the offloaded QLoRA run (2 ranks, units padded
# to 64 x 2 bytes): embedding, a layer (nested 4-bit linears, 2 bf16 norms),
# final norm + lm_head
units = [V * D * 2, sum(nested(n) for n in linears) + 2 * D * 2, (D + V * D) * 2]
largest_shard = max(-(-u // 128) * 128 // 2 for u in units)

for run, c, g, B, T, four, offload in (("lora", "lora.cpu", "lora.cuda", 8, 2048, False, False),
                                       ("qlora on device", "qlora.cpu.device", "qlora.cuda.device", 2, 2048, True, False),
                                       ("qlora offloaded", "qlora.cpu", "qlora.cuda", 2, 2048, True, True)):
    cpu, gpu = P[c], P[g]
    delta = cuda_delta(B, T, four)
    for cat in cpu["peak_bytes"]:
        if cat == "comm_buffers" and offload:
            got = gpu["peak_bytes"][cat]
            ok = largest_shard <= got <= largest_shard + cpu["peak_bytes"][cat]
            check(f"{run} cuda {cat} {got} within [{largest_shard}, {largest_shard + cpu['peak_bytes'][cat]}]", ok, True)
            continue
        want = cpu["peak_bytes"][cat] + (delta if cat == "activations" else 0)
        check(f"{run} cuda {cat}", gpu["peak_bytes"][cat], want)
    if offload:
        got, lo = gpu["peak_total_bytes"], cpu["peak_total_bytes"] + delta
        check(f"{run} cuda total {got} within [{lo}, {lo + largest_shard}]", lo <= got <= lo + largest_shard, True)
    else:
        check(f"{run} cuda total", gpu["peak_total_bytes"], cpu["peak_total_bytes"] + delta)
    check(f"{run} cuda host offload", gpu["host_offload_bytes"], cpu["host_offload_bytes"])
    check(f"{run} cuda traffic", gpu["bytes_sent_per_step"], cpu["bytes_sent_per_step"])

# 4-bit frozen bytes: bitsandbytes' layout per linear weight, bf16 for the rest
rest = 2 * (V * D + D + V * D + L * 2 * D)
for k, f, name in (("qlora.cpu", nested, "nf4"), ("qlora.plain", plain, "nf4 (fp32 absmax)"),
                   ("qlora.fp4", nested, "fp4"), ("qlora.fp4_plain", plain, "fp4 (fp32 absmax)"),
                   ("qlora.saved", plain, "fp4 (fp32 absmax)")):
    check(f"{k} frozen bytes", P[k]["frozen_bytes"], rest + L * sum(f(n) for n in linears))
    check(f"{k} linear dtype", P[k]["frozen_linear_dtype"], name)
print(f"plain absmax adds {P['qlora.plain']['frozen_bytes'] - P['qlora.cpu']['frozen_bytes']} bytes to the nested model")
sys.exit(1 if bad else 0)
PY
echo PASS
