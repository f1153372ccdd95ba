# tests/tokenizer: the Hugging Face tokenizer (src/tokenizer*.c), checked
# against llama.cpp's Llama-2 vectors and against PyPI tokenizers itself.
libshardtune_a_SOURCES += src/tokenizer.c src/tokenizer_map.c src/tokenizer_utf8.c \
	src/tokenizer_bpe.c src/tokenizer_pretok.c src/tokenizer_added.c src/tokenizer_json.c \
	src/tokenizer_config.c src/tokenizer_slow.c src/tokenizer_decode.c src/tokenizer_save.c \
	src/tokenize_cmd.c
noinst_HEADERS += src/tokenizer.h src/tokenizer_internal.h src/utf8.h

# tok_cli: `shardtune tokenize` as its own program (no MPI start-up needed).
check_PROGRAMS += tests/tokenizer/tok_cli
tests_tokenizer_tok_cli_SOURCES = tests/tokenizer/tok_cli.c
tests_tokenizer_tok_cli_LDADD = $(LDADD_COMMON)

# tok_batch: encodes and decodes a JSON list of strings in one process, for
# the comparisons with PyPI tokenizers (thousands of strings per run).
check_PROGRAMS += tests/tokenizer/tok_batch
tests_tokenizer_tok_batch_SOURCES = tests/tokenizer/tok_batch.c
tests_tokenizer_tok_batch_LDADD = $(LDADD_COMMON)

# Unit tests (cmocka): llama.cpp's Llama-2 vectors, special tokens, save and
# load, and every refusal of a broken file or text.
check_PROGRAMS += tests/tokenizer/test_tokenizer
tests_tokenizer_test_tokenizer_SOURCES = tests/tokenizer/test_tokenizer.c
tests_tokenizer_test_tokenizer_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_tokenizer_test_tokenizer_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/tokenizer/test_tokenizer

# bench/tokenizer_speed: the C side of bench/tokenizer_speed.sh (built with
# the tests, run only by the benchmark).
check_PROGRAMS += bench/tokenizer_speed
bench_tokenizer_speed_SOURCES = bench/tokenizer_speed.c
bench_tokenizer_speed_LDADD = $(LDADD_COMMON)

# Shell tests: the command, valgrind, and the comparisons with PyPI tokenizers.
TESTS += tests/tokenizer/tokenize_cli.sh tests/tokenizer/tokenizer_valgrind.sh \
	tests/tokenizer/hf_agreement.sh tests/tokenizer/stories_tokenizer.sh
EXTRA_DIST += tests/tokenizer/tokenize_cli.sh tests/tokenizer/tokenizer_valgrind.sh \
	tests/tokenizer/hf_agreement.sh tests/tokenizer/stories_tokenizer.sh \
	tests/tokenizer/hf_agreement.py tests/tokenizer/data
