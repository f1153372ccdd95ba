# The CPU backend's GEMM path (src/gemm.c, oneDNN), its bf16 compute and its
# vectorised loops (src/cpu_vec.c).

# bench/gemm_ceiling: the GEMM ceiling on a step's shapes, for
# bench/cpu_lora_step.sh (built with the tests, run only by the benchmark).
check_PROGRAMS += bench/gemm_ceiling
bench_gemm_ceiling_SOURCES = bench/gemm_ceiling.c
bench_gemm_ceiling_LDADD = $(LDADD_COMMON)

# bf16 ops against fp32 ops on bf16-rounded inputs (cmocka)
check_PROGRAMS += tests/cpu_bf16/test_cpu_bf16_ops
tests_cpu_bf16_test_cpu_bf16_ops_SOURCES = tests/cpu_bf16/test_cpu_bf16_ops.c
tests_cpu_bf16_test_cpu_bf16_ops_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_cpu_bf16_test_cpu_bf16_ops_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/cpu_bf16/test_cpu_bf16_ops

# bf16 training: against transformers + peft under bf16 autocast, N ranks
# against one, the fp32 fallback (SHARDTUNE_CPU_BF16=0), plans of bf16 runs
TESTS += tests/cpu_bf16/train_matches_autocast.sh tests/cpu_bf16/fsdp_ranks_bf16.sh tests/cpu_bf16/fallback_forced.sh \
	tests/cpu_bf16/plan_matches_bf16.sh
EXTRA_DIST += tests/cpu_bf16/lib.sh tests/cpu_bf16/train_matches_autocast.sh tests/cpu_bf16/fsdp_ranks_bf16.sh \
	tests/cpu_bf16/fallback_forced.sh tests/cpu_bf16/plan_matches_bf16.sh

# the CPU backend's vectorised exponentials (src/cpu_vec.c) against libm (cmocka)
check_PROGRAMS += tests/cpu_bf16/test_cpu_vec
tests_cpu_bf16_test_cpu_vec_SOURCES = tests/cpu_bf16/test_cpu_vec.c
tests_cpu_bf16_test_cpu_vec_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_cpu_bf16_test_cpu_vec_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/cpu_bf16/test_cpu_vec

# gemm()'s kernels for products with a short side (src/gemm_thin.c) against
# oneDNN's dnnl_sgemm, fp32 and bf16, AVX-512 and portable (cmocka)
check_PROGRAMS += tests/cpu_bf16/test_gemm_thin
tests_cpu_bf16_test_gemm_thin_SOURCES = tests/cpu_bf16/test_gemm_thin.c
tests_cpu_bf16_test_gemm_thin_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_cpu_bf16_test_gemm_thin_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/cpu_bf16/test_gemm_thin
