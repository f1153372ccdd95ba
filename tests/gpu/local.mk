# GPU tests: the CUDA backend against the CPU backend, through the CUDA
# plugin the tests find ($SHARDTUNE_CUDA_PLUGIN).  With the real plugin they
# skip (77) where no GPU answers; tests/gpu/emulated.sh runs them on the CPU
# emulation of CUDA (tests/cuda_emu), which every machine builds.
# tests/gpu/check.sh is the whole GPU check (build, ops, training, timing
# against Hugging Face PEFT) that a GPU machine runs by hand.
EXTRA_DIST += tests/gpu/train_compare.sh tests/gpu/check.sh tests/gpu/pack.sh tests/gpu/emulated.sh
check_PROGRAMS += tests/gpu/op_check
tests_gpu_op_check_SOURCES = tests/gpu/op_check.c
# the plugin takes its symbols from the program: all of the library, exported
tests_gpu_op_check_LDFLAGS = $(AM_LDFLAGS) -Wl,--whole-archive,libshardtune.a,--no-whole-archive
tests_gpu_op_check_LDADD = $(LDADD_COMMON)
TESTS += tests/gpu/op_check tests/gpu/train_compare.sh tests/gpu/emulated.sh
TESTS += tests/gpu/plan_matches_cuda.sh
EXTRA_DIST += tests/gpu/plan_matches_cuda.sh
