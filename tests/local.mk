# Tests: C unit tests (cmocka) and shell tests that drive the program and
# compare it with the Python reference stack.
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = top_srcdir='$(abs_top_srcdir)' top_builddir='$(abs_top_builddir)' \
	MPIRUN='$(MPIRUN)' SHARDTUNE_CUDA_PLUGIN="$${SHARDTUNE_CUDA_PLUGIN:-$(abs_top_builddir)/shardtune-cuda.so}"; \
	export top_srcdir top_builddir MPIRUN SHARDTUNE_CUDA_PLUGIN;
EXTRA_DIST += tests/lib.sh

check_PROGRAMS += tests/model_dump
tests_model_dump_SOURCES = tests/model_dump.c
tests_model_dump_LDADD = $(LDADD_COMMON)

# TensorBoard event files: CRC32C vectors, records read back (cmocka)
check_PROGRAMS += tests/test_tb_events
tests_test_tb_events_SOURCES = tests/test_tb_events.c
tests_test_tb_events_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_test_tb_events_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/test_tb_events
