# io/: Hugging Face model files in and out (safetensors, config.json, PEFT adapters).
libshardtune_a_SOURCES += io/safetensors.c io/hf_config.c io/peft_adapter.c io/checkpoint.c
noinst_HEADERS += io/safetensors.h io/hf_config.h io/peft_adapter.h io/checkpoint.h

# Unit tests (cmocka): round trips and every refusal of a malformed file.
check_PROGRAMS += tests/io/test_safetensors tests/io/test_hf_config
tests_io_test_safetensors_SOURCES = tests/io/test_safetensors.c
tests_io_test_safetensors_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_io_test_safetensors_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
tests_io_test_hf_config_SOURCES = tests/io/test_hf_config.c
tests_io_test_hf_config_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_io_test_hf_config_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/io/test_safetensors tests/io/test_hf_config

# st_dump: the C side of the cross-check with PyPI safetensors/transformers.
check_PROGRAMS += tests/io/st_dump
tests_io_st_dump_SOURCES = tests/io/st_dump.c
tests_io_st_dump_LDADD = $(LDADD_COMMON)

TESTS += tests/io/safetensors_valgrind.sh tests/io/safetensors_python.sh
EXTRA_DIST += tests/io/safetensors_valgrind.sh tests/io/safetensors_python.sh
