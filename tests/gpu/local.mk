# GPU tests: the CUDA backend against the CPU backend.  Registered when the
# CUDA backend is built; each exits 77 (skipped) where no GPU answers.
# tests/gpu/check.sh is the whole GPU check (build, ops, training, timing
# against Hugging Face PEFT) that a GPU machine runs by hand.
EXTRA_DIST += tests/gpu/op_check.c tests/gpu/train_compare.sh tests/gpu/check.sh tests/gpu/pack.sh
if HAVE_CUDA
check_PROGRAMS += tests/gpu/op_check
tests_gpu_op_check_SOURCES = tests/gpu/op_check.c
tests_gpu_op_check_CPPFLAGS = $(AM_CPPFLAGS) -I$(srcdir)/cuda
tests_gpu_op_check_LDADD = $(LIBS_CUDA) $(LDADD_COMMON)
TESTS += tests/gpu/op_check tests/gpu/train_compare.sh
endif
