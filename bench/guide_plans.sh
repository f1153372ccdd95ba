#!/usr/bin/env bash
# bench/guide_plans.sh: `shardtune plan` for the PEFT guide's two Llama-2-70B
# runs, in the CPU backend's layout and the CUDA backend's (bf16), against the
# guide's measured figures and this project's targets:
#   LoRA:  8 ranks, micro-batch 8 x 2048, guide 72-80 GB per GPU, target <= 50 GB
#   QLoRA: 2 ranks, micro-batch 2 x 2048, offloaded (the guide's file): guide
#          19.6 GB per GPU, target <= 10 GB; without offload: guide 35.6 GB,
#          target <= 28 GB; host RAM per node target <= 48 GB
# The flags that size a run are taken from the guide's command lines as the
# repository keeps them verbatim (tests/data/guide_command.sh,
# tests/data/guide_qlora_command.sh), with their accelerate files
# (jobs/configs/); the model is doc/plans/llama-2-70b/config.json (Llama-2-70B:
# hidden 8192, 80 layers, 64 heads, 8 KV heads, intermediate 28672, vocab
# 32000), weights bf16.  GB = 1e9 bytes (the guide's and the targets' unit),
# GiB = 2^30.
#   bench/guide_plans.sh [BUILD_DIR]      (default: _build)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$top/_build}" && pwd)
work=$(mktemp -d /tmp/shardtune-plans.XXXXXX)
trap 'rm -rf "$work"' EXIT
make -C "$build" -s shardtune > "$work/make.log" 2>&1 || { cat "$work/make.log"; exit 1; }

# guide_flags FILE: the sizing flags of the train command line in FILE, one
# "--name value" line each in the script, the last one followed by the
# redirection (other flags are data, logging and hub settings a plan does
# not take)
guide_flags() {
    sed -n 's/^\(--[a-z0-9_]*\) "\{0,1\}\([^" ]*\)"\{0,1\}.*$/\1 \2/p' "$1" | grep -E \
        '^--(max_length|max_seq_len|per_device_train_batch_size|gradient_accumulation_steps|gradient_checkpointing|bf16|lora_r|lora_alpha|lora_dropout|lora_target_modules|use_peft_lora|use_4bit_quantization|use_nested_quant|bnb_4bit_quant_type|bnb_4bit_compute_dtype|bnb_4bit_quant_storage_dtype) ' \
        | tr '\n' ' '
}
lora_flags=$(guide_flags "$top/tests/data/guide_command.sh")
qlora_flags=$(guide_flags "$top/tests/data/guide_qlora_command.sh")
echo "LoRA flags (tests/data/guide_command.sh): $lora_flags"
echo "QLoRA flags (tests/data/guide_qlora_command.sh): $qlora_flags"
model="$top/doc/plans/llama-2-70b"

plan() { # plan NAME CONFIG NP DEVICE FLAGS...
    name=$1 cfg=$2 np=$3 dev=$4
    shift 4
    "$build/shardtune" plan --config_file "$top/jobs/configs/$cfg" --model_name_or_path "$model" \
        --torch_dtype bfloat16 --num_processes "$np" --device "$dev" "$@" --json > "$work/$name.json"
}
# shellcheck disable=SC2086  # the flag lists split into words
for dev in cpu cuda; do
    plan "lora.$dev" fsdp_config.yaml 8 $dev $lora_flags
    plan "qlora_offload.$dev" fsdp_config_qlora.yaml 2 $dev $qlora_flags
    FSDP_OFFLOAD_PARAMS=false plan "qlora_device.$dev" fsdp_config_qlora.yaml 2 $dev $qlora_flags
done

python3 - "$work" <<'PY'
import json, sys
d = sys.argv[1]
runs = [  # name, title, guide's figure (GB per GPU), target (GB per GPU)
    ("lora", "LoRA, 8 ranks, mb 8", "72-80", 50),
    ("qlora_offload", "QLoRA, 2 ranks, offload", "19.6", 10),
    ("qlora_device", "QLoRA, 2 ranks, no offload", "35.6", 28),
]
host_target_gb = 48
cols = [(r, dev) for r in runs for dev in ("cpu", "cuda")]
P = {(r[0], dev): json.load(open(f"{d}/{r[0]}.{dev}.json")) for r, dev in cols}
GiB, GB = 2 ** 30, 1e9
print()
print("| per rank, GiB | " + " | ".join(f"{r[1]}, {'CPU' if dev == 'cpu' else 'GPU'} layout" for r, dev in cols) + " |")
print("| --- |" + " ---: |" * len(cols))
cats = list(P[("lora", "cpu")]["peak_bytes"])
for cat in cats:
    print(f"| {cat} | " + " | ".join(f"{P[(r[0], dev)]['peak_bytes'][cat] / GiB:.2f}" for r, dev in cols) + " |")
row = lambda label, f: print(f"| {label} | " + " | ".join(f(r, P[(r[0], dev)]) for r, dev in cols) + " |")
row("**device total, GiB**", lambda r, p: f"**{p['peak_total_bytes'] / GiB:.2f}**")
row("device total, GB", lambda r, p: f"{p['peak_total_bytes'] / GB:.1f}")
row("guide, GB per GPU", lambda r, p: r[2])
row("target, GB per GPU", lambda r, p: f"<= {r[3]}")
row("offloaded to host per rank, GiB", lambda r, p: f"{p['host_offload_bytes'] / GiB:.2f}" if p["host_offload_bytes"] else "-")
row(f"host per node (ranks x offload), GB; target <= {host_target_gb}",
    lambda r, p: f"{p['host_offload_bytes'] * p['ranks_per_node'] / GB:.1f}" if p["host_offload_bytes"] else "-")
print()
for r in runs:
    p = P[(r[0], "cuda")]
    total = p["peak_total_bytes"] / GB
    verdict = "met" if total <= r[3] else f"MISSED by {total - r[3]:.1f} GB"
    big = sorted(p["peak_bytes"].items(), key=lambda kv: -kv[1])[:3]
    print(f"{r[1]}, GPU layout: {total:.1f} GB per GPU against <= {r[3]} GB: {verdict}; largest: "
          + ", ".join(f"{k} {v / GB:.1f} GB" for k, v in big))
    if p["host_offload_bytes"]:
        host = p["host_offload_bytes"] * p["ranks_per_node"] / GB
        print(f"  host RAM per node ({p['ranks_per_node']} ranks): {host:.1f} GB against <= {host_target_gb} GB: "
              + ("met" if host <= host_target_gb else f"MISSED by {host - host_target_gb:.1f} GB"))
PY
