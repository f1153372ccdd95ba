# FSDP and accelerate-config tests (fragment)

# accelerate configuration: the YAML files and launch variables accelerate
# users already have (jobs/configs/ holds the PEFT guide's two files).
libshardtune_a_SOURCES += src/accel_config.c
noinst_HEADERS += src/accel_config.h
check_PROGRAMS += tests/fsdp/test_accel_config
tests_fsdp_test_accel_config_SOURCES = tests/fsdp/test_accel_config.c
tests_fsdp_test_accel_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_fsdp_test_accel_config_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/fsdp/test_accel_config

# make_random_llama: seeded random Llama models (F32 or BF16) and token data
# without Python, for the multi-rank tests and the benchmarks.
check_PROGRAMS += tests/fsdp/make_random_llama
tests_fsdp_make_random_llama_SOURCES = tests/fsdp/make_random_llama.c
tests_fsdp_make_random_llama_LDADD = $(LDADD_COMMON)

# multi-rank runs (mpirun, 1 to 4 ranks on the two cores)
TESTS += tests/fsdp/fsdp_equivalence.sh tests/fsdp/prefetch_identical.sh tests/fsdp/memory_sharded.sh \
	tests/fsdp/bad_config.sh tests/fsdp/plan_matches_run.sh tests/fsdp/profile_identical.sh
EXTRA_DIST += tests/fsdp/fsdp_lib.sh tests/fsdp/compare_runs.py tests/fsdp/fsdp_equivalence.sh \
	tests/fsdp/prefetch_identical.sh tests/fsdp/memory_sharded.sh tests/fsdp/bad_config.sh tests/fsdp/plan_matches_run.sh \
	tests/fsdp/profile_identical.sh
TESTS += tests/fsdp/fsdp_equivalence_4bit.sh
EXTRA_DIST += tests/fsdp/fsdp_equivalence_4bit.sh
TESTS += tests/fsdp/plan_layouts.sh
EXTRA_DIST += tests/fsdp/plan_layouts.sh tests/fsdp/plan_lib.sh
