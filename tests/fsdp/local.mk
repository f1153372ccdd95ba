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
