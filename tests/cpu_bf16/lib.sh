# tests/cpu_bf16/lib.sh: sourced by the CPU bf16 tests after tests/lib.sh.
# skip_without_cpu_bf16: exit 77 (skip) on a CPU without bf16 instructions,
# where --bf16 computes in fp32 (tests/cpu_bf16/fallback_forced.sh covers that).
skip_without_cpu_bf16() {
    "$SHARDTUNE" --version | grep -q "computes in bf16: yes" && return 0
    echo "SKIP: this CPU has no bf16 instructions (AVX512-BF16 or AMX-BF16)"
    exit 77
}
