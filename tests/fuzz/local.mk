# tests/fuzz: libFuzzer targets for parsers of untrusted input, built by
# clang with AddressSanitizer and UndefinedBehaviorSanitizer (configure:
# SHARDTUNE_CHECK_FUZZING) straight from the sources they test.  make check
# runs each on its seeds and then for a short, fixed time (fuzz_run.sh);
# bench/fuzz.sh runs them for millions of inputs.
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 \
	-I$(srcdir)/src -I$(srcdir)/tests/fuzz $(JANSSON_CFLAGS) $(PCRE2_CFLAGS) $(YAML_CFLAGS)
FUZZ_JINJA_SRC = $(srcdir)/tests/fuzz/fuzz_jinja.c $(srcdir)/tests/fuzz/fuzz_error.c $(srcdir)/src/jinja_lex.c $(srcdir)/src/jinja_parse.c \
	$(srcdir)/src/jinja_value.c $(srcdir)/src/jinja_builtins.c $(srcdir)/src/jinja_eval.c $(srcdir)/src/log.c \
	$(srcdir)/src/tokenizer_utf8.c
EXTRA_DIST += tests/fuzz/fuzz_jinja.c tests/fuzz/fuzz_run.sh tests/fuzz/jinja_fuzz.sh tests/fuzz/jinja_seeds.sh tests/fuzz/jinja.dict \
	tests/fuzz/README bench/fuzz.sh tests/fuzz/fuzz_file.c tests/fuzz/fuzz_file.h tests/fuzz/fuzz_error.c \
	tests/fuzz/fuzz_error.h tests/fuzz/accel_check.c tests/fuzz/accel_check.h

# Chat templates (src/jinja*.c), seeded with the templates of tests/chat_template.
TESTS += tests/fuzz/jinja_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_jinja
CLEANFILES += tests/fuzz/fuzz_jinja
tests/fuzz/fuzz_jinja: $(FUZZ_JINJA_SRC) $(srcdir)/src/jinja.h $(srcdir)/src/jinja_internal.h $(srcdir)/src/utf8.h \
		$(srcdir)/tests/fuzz/fuzz_error.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_JINJA_SRC) $(JANSSON_LIBS) -lm -o $@
endif

# accelerate's config file (src/accel_config.c), seeded with the shipped and
# the unit-tested configs.
FUZZ_ACCEL_SRC = $(srcdir)/tests/fuzz/accel_check.c $(srcdir)/tests/fuzz/fuzz_error.c $(srcdir)/src/accel_config.c \
	$(srcdir)/src/suggest.c $(srcdir)/src/checksum.c $(srcdir)/src/log.c
FUZZ_ACCEL_YAML_SRC = $(srcdir)/tests/fuzz/fuzz_accel_yaml.c $(srcdir)/tests/fuzz/fuzz_file.c $(FUZZ_ACCEL_SRC)
EXTRA_DIST += tests/fuzz/fuzz_accel_yaml.c tests/fuzz/accel_yaml_fuzz.sh tests/fuzz/accel_yaml_seeds.sh \
	tests/fuzz/accel_yaml.dict
TESTS += tests/fuzz/accel_yaml_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_accel_yaml
CLEANFILES += tests/fuzz/fuzz_accel_yaml
tests/fuzz/fuzz_accel_yaml: $(FUZZ_ACCEL_YAML_SRC) $(srcdir)/src/accel_config.h $(srcdir)/tests/fuzz/accel_check.h \
		$(srcdir)/tests/fuzz/fuzz_error.h $(srcdir)/tests/fuzz/fuzz_file.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ACCEL_YAML_SRC) $(YAML_LIBS) -lm -o $@
endif

# The launcher's FSDP_* / ACCELERATE_* variables (accel_config_apply_env).
FUZZ_ACCEL_ENV_SRC = $(srcdir)/tests/fuzz/fuzz_accel_env.c $(FUZZ_ACCEL_SRC)
EXTRA_DIST += tests/fuzz/fuzz_accel_env.c tests/fuzz/accel_env_fuzz.sh tests/fuzz/accel_env_seeds.sh \
	tests/fuzz/accel_env.dict
TESTS += tests/fuzz/accel_env_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_accel_env
CLEANFILES += tests/fuzz/fuzz_accel_env
tests/fuzz/fuzz_accel_env: $(FUZZ_ACCEL_ENV_SRC) $(srcdir)/src/accel_config.h $(srcdir)/tests/fuzz/accel_check.h \
		$(srcdir)/tests/fuzz/fuzz_error.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ACCEL_ENV_SRC) $(YAML_LIBS) -lm -o $@
endif

# llama2.c checkpoints and tokenizers (src/convert_llama2c.c), seeded with
# small models made from assets/model and malformed variants.
FUZZ_LLAMA2C_SRC = $(srcdir)/tests/fuzz/fuzz_llama2c.c $(srcdir)/tests/fuzz/fuzz_file.c $(srcdir)/tests/fuzz/fuzz_error.c \
	$(srcdir)/src/convert_llama2c.c $(srcdir)/io/safetensors.c $(srcdir)/io/hf_config.c $(srcdir)/src/dir_make.c \
	$(srcdir)/src/log.c
EXTRA_DIST += tests/fuzz/fuzz_llama2c.c tests/fuzz/llama2c_fuzz.sh tests/fuzz/llama2c_seeds.sh tests/fuzz/llama2c.dict
TESTS += tests/fuzz/llama2c_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_llama2c
CLEANFILES += tests/fuzz/fuzz_llama2c
tests/fuzz/fuzz_llama2c: $(FUZZ_LLAMA2C_SRC) $(srcdir)/src/convert_llama2c.h $(srcdir)/io/safetensors.h \
		$(srcdir)/io/hf_config.h $(srcdir)/tests/fuzz/fuzz_error.h $(srcdir)/tests/fuzz/fuzz_file.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) -I$(srcdir)/io $(FUZZ_LLAMA2C_SRC) $(JANSSON_LIBS) -lm -o $@
endif
