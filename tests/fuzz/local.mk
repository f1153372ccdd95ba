# tests/fuzz: libFuzzer targets for parsers of untrusted input, built by
# clang with AddressSanitizer and UndefinedBehaviorSanitizer (configure:
# SHARDTUNE_CHECK_FUZZING) straight from the sources they test.  make check
# runs each on its seeds and then for a short, fixed time (fuzz_run.sh);
# bench/fuzz.sh runs them for millions of inputs.
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 \
	-I$(srcdir)/src -I$(srcdir)/io -I$(srcdir)/tests/fuzz $(JANSSON_CFLAGS) $(PCRE2_CFLAGS) $(YAML_CFLAGS)
FUZZ_JINJA_SRC = $(srcdir)/tests/fuzz/fuzz_jinja.c $(srcdir)/tests/fuzz/fuzz_file.c $(srcdir)/src/jinja_lex.c $(srcdir)/src/jinja_parse.c \
	$(srcdir)/src/jinja_value.c $(srcdir)/src/jinja_builtins.c $(srcdir)/src/jinja_eval.c $(srcdir)/src/log.c \
	$(srcdir)/src/tokenizer_utf8.c
FUZZ_TOKENIZER_SRC = $(srcdir)/src/tokenizer.c $(srcdir)/src/tokenizer_added.c $(srcdir)/src/tokenizer_bpe.c \
	$(srcdir)/src/tokenizer_config.c $(srcdir)/src/tokenizer_decode.c $(srcdir)/src/tokenizer_json.c \
	$(srcdir)/src/tokenizer_map.c $(srcdir)/src/tokenizer_offsets.c $(srcdir)/src/tokenizer_pretok.c \
	$(srcdir)/src/tokenizer_save.c $(srcdir)/src/tokenizer_slow.c $(srcdir)/src/tokenizer_utf8.c \
	$(srcdir)/src/file_read.c $(srcdir)/src/log.c
FUZZ_ROWS_SRC = $(srcdir)/tests/fuzz/fuzz_rows.c $(srcdir)/tests/fuzz/fuzz_file.c $(srcdir)/src/data_load.c \
	$(srcdir)/src/data_rows.c $(srcdir)/src/data.c $(srcdir)/src/data_pack.c $(srcdir)/src/rng.c $(srcdir)/src/chat.c \
	$(srcdir)/src/chat_model.c $(srcdir)/src/jinja_lex.c $(srcdir)/src/jinja_parse.c $(srcdir)/src/jinja_value.c \
	$(srcdir)/src/jinja_builtins.c $(srcdir)/src/jinja_eval.c $(FUZZ_TOKENIZER_SRC)
EXTRA_DIST += tests/fuzz/fuzz_tokenizer.c tests/fuzz/tokenizer_fuzz.sh tests/fuzz/tokenizer_seeds.sh tests/fuzz/tokenizer.dict \
	tests/fuzz/fuzz_rows.c tests/fuzz/rows_fuzz.sh tests/fuzz/rows_seeds.sh tests/fuzz/rows.dict
# The targets of file parsers: the input as a file, one-line refusals.
FUZZ_FILE_SRC = $(srcdir)/tests/fuzz/fuzz_file.c $(srcdir)/src/log.c
FUZZ_FILE_H = $(srcdir)/tests/fuzz/fuzz_file.h $(srcdir)/src/log.h
# st_tensor_to_f32 is in src/dtype.c, whose 4-bit dtypes pull in weight4.c
# and quant4.c.  clang 14 has no _Float16 on x86-64 (dtype.c's fp32 -> fp16,
# used by the writer only); __fp16, its storage-only half, converts the same
# through compiler-rt (__gnu_f2h_ieee, which libgcc lacks).
FUZZ_DTYPE_SRC = $(srcdir)/src/dtype.c $(srcdir)/src/weight4.c $(srcdir)/src/quant4.c
FUZZ_ST_SRC = $(FUZZ_FILE_SRC) $(srcdir)/tests/fuzz/fuzz_st_check.c $(srcdir)/io/safetensors.c $(FUZZ_DTYPE_SRC)
FUZZ_ST_H = $(FUZZ_FILE_H) $(srcdir)/tests/fuzz/fuzz_st_check.h $(srcdir)/io/safetensors.h $(srcdir)/src/dtype.h
FUZZ_ST_CFLAGS = -D_Float16=__fp16 -rtlib=compiler-rt
FUZZ_SAFETENSORS_SRC = $(srcdir)/tests/fuzz/fuzz_safetensors.c $(FUZZ_ST_SRC)
FUZZ_SAFETENSORS_INDEX_SRC = $(srcdir)/tests/fuzz/fuzz_safetensors_index.c $(FUZZ_ST_SRC)
FUZZ_HF_CONFIG_SRC = $(srcdir)/tests/fuzz/fuzz_hf_config.c $(FUZZ_FILE_SRC) $(srcdir)/io/hf_config.c
FUZZ_PEFT_CONFIG_SRC = $(srcdir)/tests/fuzz/fuzz_peft_config.c $(FUZZ_ST_SRC) $(srcdir)/io/peft_adapter.c \
	$(srcdir)/src/lora.c
EXTRA_DIST += tests/fuzz/fuzz_jinja.c tests/fuzz/fuzz_run.sh tests/fuzz/jinja_fuzz.sh tests/fuzz/jinja_seeds.sh tests/fuzz/jinja.dict \
	tests/fuzz/README bench/fuzz.sh \
	tests/fuzz/fuzz_file.c tests/fuzz/fuzz_file.h tests/fuzz/seeds_lib.sh tests/fuzz/fuzz_st_check.c tests/fuzz/fuzz_st_check.h \
	tests/fuzz/fuzz_safetensors.c tests/fuzz/safetensors_fuzz.sh tests/fuzz/safetensors_seeds.sh \
	tests/fuzz/safetensors.dict tests/fuzz/fuzz_safetensors_index.c tests/fuzz/safetensors_index_fuzz.sh \
	tests/fuzz/fuzz_hf_config.c tests/fuzz/hf_config_fuzz.sh tests/fuzz/hf_config_seeds.sh tests/fuzz/hf_config.dict \
	tests/fuzz/fuzz_peft_config.c tests/fuzz/peft_config_fuzz.sh tests/fuzz/peft_config_seeds.sh \
	tests/fuzz/peft_config.dict \
	tests/fuzz/accel_check.c tests/fuzz/accel_check.h

# Chat templates (src/jinja*.c), seeded with the templates of tests/chat_template.
TESTS += tests/fuzz/jinja_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_jinja
CLEANFILES += tests/fuzz/fuzz_jinja
tests/fuzz/fuzz_jinja: $(FUZZ_JINJA_SRC) $(srcdir)/src/jinja.h $(srcdir)/src/jinja_internal.h $(srcdir)/src/utf8.h \
		$(srcdir)/tests/fuzz/fuzz_file.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_JINJA_SRC) $(JANSSON_LIBS) -lm -o $@
endif

# Tokenizer files (src/tokenizer*.c): tokenizer.json [+ tokenizer_config.json]
# or vocab.json + merges.txt, seeded with tests/tokenizer's and hand-made ones.
TESTS += tests/fuzz/tokenizer_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_tokenizer
CLEANFILES += tests/fuzz/fuzz_tokenizer
tests/fuzz/fuzz_tokenizer: $(srcdir)/tests/fuzz/fuzz_tokenizer.c $(srcdir)/tests/fuzz/fuzz_file.c $(FUZZ_TOKENIZER_SRC) \
		$(srcdir)/tests/fuzz/fuzz_file.h $(srcdir)/src/tokenizer.h $(srcdir)/src/tokenizer_internal.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(srcdir)/tests/fuzz/fuzz_tokenizer.c $(srcdir)/tests/fuzz/fuzz_file.c \
		$(FUZZ_TOKENIZER_SRC) $(JANSSON_LIBS) $(PCRE2_LIBS) -lm -o $@
endif

# Dataset rows (src/data_load.c, src/data_rows.c) under each option of a run,
# tokenized by GPT-2's slow files; seeded with tests/data's and
# tests/chat_template's rows and hand-made bad ones.
TESTS += tests/fuzz/rows_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_rows
CLEANFILES += tests/fuzz/fuzz_rows
tests/fuzz/fuzz_rows: $(FUZZ_ROWS_SRC) $(srcdir)/tests/fuzz/fuzz_file.h $(srcdir)/src/data.h \
		$(srcdir)/src/data_internal.h $(srcdir)/src/chat.h $(srcdir)/src/chat_model.h $(srcdir)/src/jinja.h \
		$(srcdir)/src/tokenizer.h $(srcdir)/src/tokenizer_internal.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) -DFUZZ_GPT2_DIR='"$(abs_top_srcdir)/tests/tokenizer/data/gpt2"' \
		$(FUZZ_ROWS_SRC) $(JANSSON_LIBS) $(PCRE2_LIBS) -lm -o $@
endif

# The .safetensors reader (io/safetensors.c): one file, and a sharded
# directory (index + shard); seeded with the converted stories260K and
# hand-made malformed files (safetensors_seeds.sh).
TESTS += tests/fuzz/safetensors_fuzz.sh tests/fuzz/safetensors_index_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_safetensors tests/fuzz/fuzz_safetensors_index
CLEANFILES += tests/fuzz/fuzz_safetensors tests/fuzz/fuzz_safetensors_index
tests/fuzz/fuzz_safetensors: $(FUZZ_SAFETENSORS_SRC) $(FUZZ_ST_H)
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ST_CFLAGS) $(FUZZ_SAFETENSORS_SRC) $(JANSSON_LIBS) -lm -o $@
tests/fuzz/fuzz_safetensors_index: $(FUZZ_SAFETENSORS_INDEX_SRC) $(FUZZ_ST_H)
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ST_CFLAGS) $(FUZZ_SAFETENSORS_INDEX_SRC) $(JANSSON_LIBS) -lm -o $@
endif

# config.json (io/hf_config.c), seeded with the converted model's and
# hand-made ones (hf_config_seeds.sh).
TESTS += tests/fuzz/hf_config_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_hf_config
CLEANFILES += tests/fuzz/fuzz_hf_config
tests/fuzz/fuzz_hf_config: $(FUZZ_HF_CONFIG_SRC) $(FUZZ_FILE_H) $(srcdir)/io/hf_config.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_HF_CONFIG_SRC) $(JANSSON_LIBS) -lm -o $@
endif

# adapter_config.json (io/peft_adapter.c) and its rules (src/lora.c),
# seeded with PEFT's forms (peft_config_seeds.sh).
TESTS += tests/fuzz/peft_config_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_peft_config
CLEANFILES += tests/fuzz/fuzz_peft_config
tests/fuzz/fuzz_peft_config: $(FUZZ_PEFT_CONFIG_SRC) $(FUZZ_ST_H) $(srcdir)/io/peft_adapter.h $(srcdir)/src/lora.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ST_CFLAGS) $(FUZZ_PEFT_CONFIG_SRC) $(JANSSON_LIBS) $(PCRE2_LIBS) -lm -o $@
endif

# accelerate's config file (src/accel_config.c), seeded with the shipped and
# the unit-tested configs.
FUZZ_ACCEL_SRC = $(srcdir)/tests/fuzz/accel_check.c $(srcdir)/tests/fuzz/fuzz_file.c $(srcdir)/src/accel_config.c \
	$(srcdir)/src/suggest.c $(srcdir)/src/checksum.c $(srcdir)/src/log.c
FUZZ_ACCEL_YAML_SRC = $(srcdir)/tests/fuzz/fuzz_accel_yaml.c $(FUZZ_ACCEL_SRC)
EXTRA_DIST += tests/fuzz/fuzz_accel_yaml.c tests/fuzz/accel_yaml_fuzz.sh tests/fuzz/accel_yaml_seeds.sh \
	tests/fuzz/accel_yaml.dict
TESTS += tests/fuzz/accel_yaml_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_accel_yaml
CLEANFILES += tests/fuzz/fuzz_accel_yaml
tests/fuzz/fuzz_accel_yaml: $(FUZZ_ACCEL_YAML_SRC) $(srcdir)/src/accel_config.h $(srcdir)/tests/fuzz/accel_check.h \
		$(srcdir)/tests/fuzz/fuzz_file.h
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
		$(srcdir)/tests/fuzz/fuzz_file.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ACCEL_ENV_SRC) $(YAML_LIBS) -lm -o $@
endif

# llama2.c checkpoints and tokenizers (src/convert_llama2c.c), seeded with
# small models made from assets/model and malformed variants.
FUZZ_LLAMA2C_SRC = $(srcdir)/tests/fuzz/fuzz_llama2c.c $(FUZZ_FILE_SRC) $(srcdir)/src/convert_llama2c.c \
	$(srcdir)/io/safetensors.c $(srcdir)/io/hf_config.c $(srcdir)/src/dir_make.c $(FUZZ_DTYPE_SRC)
EXTRA_DIST += tests/fuzz/fuzz_llama2c.c tests/fuzz/llama2c_fuzz.sh tests/fuzz/llama2c_seeds.sh tests/fuzz/llama2c.dict
TESTS += tests/fuzz/llama2c_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_llama2c
CLEANFILES += tests/fuzz/fuzz_llama2c
tests/fuzz/fuzz_llama2c: $(FUZZ_LLAMA2C_SRC) $(srcdir)/src/convert_llama2c.h $(srcdir)/io/safetensors.h \
		$(srcdir)/io/hf_config.h $(srcdir)/tests/fuzz/fuzz_file.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_ST_CFLAGS) $(FUZZ_LLAMA2C_SRC) $(JANSSON_LIBS) -lm -o $@
endif

# shardtune's own checkpoint validation above HDF5 (io/checkpoint.c): each
# input describes a checkpoint, written with the HDF5 API and loaded
# (fuzz_checkpoint.c); seeds: checkpoint_seeds.sh.
FUZZ_CHECKPOINT_SRC = $(srcdir)/tests/fuzz/fuzz_checkpoint.c $(FUZZ_FILE_SRC) $(srcdir)/io/checkpoint.c \
	$(srcdir)/src/checksum.c $(srcdir)/src/fault_inject.c
EXTRA_DIST += tests/fuzz/fuzz_checkpoint.c tests/fuzz/checkpoint_fuzz.sh tests/fuzz/checkpoint_seeds.sh
TESTS += tests/fuzz/checkpoint_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_checkpoint
CLEANFILES += tests/fuzz/fuzz_checkpoint
tests/fuzz/fuzz_checkpoint: $(FUZZ_CHECKPOINT_SRC) $(srcdir)/io/checkpoint.h $(srcdir)/src/checksum.h \
		$(srcdir)/src/fault_inject.h $(srcdir)/src/fsdp.h $(srcdir)/src/model.h $(FUZZ_FILE_H)
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(HDF5_CFLAGS) $(FUZZ_CHECKPOINT_SRC) \
		$(HDF5_LIBS) -lm -o $@
endif
