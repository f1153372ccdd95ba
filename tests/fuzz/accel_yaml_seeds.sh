#!/bin/sh
# accel_yaml_seeds.sh DIR: the seed inputs of the accelerate-config fuzz
# target, one file each: the shipped configs (jobs/configs), every one-line
# config that tests/fsdp/test_accel_config.c loads or refuses, and a few
# that reach the rest of the key table (data parallelism, FSDP2's keys,
# ignored keys, nulls, flow style, a second document).
set -eu
top="$(cd "$(dirname "$0")/../.." && pwd)"
mkdir -p "$1"
cp "$top"/jobs/configs/*.yaml "$1/"
n=0
sed -n 's/.*(state, "\(distributed_type[^"]*\)".*/\1/p' "$top/tests/fsdp/test_accel_config.c" |
    while IFS= read -r text; do
        n=$((n + 1))
        printf '%b' "$text" >"$1/unit_$n.yaml"
    done
cat >"$1/fsdp2.yaml" <<'YAML'
compute_environment: LOCAL_MACHINE
debug: false
distributed_type: FSDP
downcast_bf16: 'no'
fsdp_config:
  fsdp_version: 2
  fsdp_reshard_after_forward: false
  fsdp_auto_wrap_policy: SIZE_BASED_WRAP
  fsdp_min_num_params: 100000
  fsdp_transformer_layer_cls_to_wrap: MyLayer
  fsdp_backward_prefetch_policy: BACKWARD_POST
  fsdp_state_dict_type: FULL_STATE_DICT
  fsdp_activation_checkpointing: true
  fsdp_cpu_ram_efficient_loading: false
  fsdp_sync_module_states: false
machine_rank: 1
num_machines: 2
num_processes: 16
mixed_precision: fp16
fp16: true
rdzv_backend: static
same_network: true
tpu_env: []
use_cpu: false
YAML
cat >"$1/multi_gpu.yaml" <<'YAML'
distributed_type: MULTI_GPU
fsdp_config: {fsdp_sharding_strategy: 2, fsdp_offload_params: ~}
gpu_ids: all
main_training_function: main
num_processes: -1
YAML
printf 'distributed_type: FSDP\nfp16: true\n---\ndistributed_type: NO\n' >"$1/two_documents.yaml"
printf 'distributed_type: FSDP\nfsdp_config:\n  fsdp_sharding_strategy: HYBRID_SHARD_ZERO2\n' >"$1/zero2.yaml"
printf '{distributed_type: &t FSDP, mixed_precision: bf16, fsdp_config: {fsdp_backward_prefetch: *t}}\n' >"$1/flow.yaml"
# Regressions: a value or key quoted with a newline made the error (and a
# note) two lines; now control characters are escaped.
printf 'distributed_type: "a\\nb"\n' >"$1/regress_newline_error.yaml"
printf 'distributed_type: FSDP\nfsdp_config:\n  fsdp_transformer_layer_cls_to_wrap: "A\\nB"\n' >"$1/regress_newline_note.yaml"
