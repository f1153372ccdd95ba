# tests/data: datasets, chat templates and packing (src/data*.c, src/chat.c),
# checked against transformers' apply_chat_template, tokenizers' offsets and
# TRL's packing rules.
libshardtune_a_SOURCES += src/chat.c src/data_load.c src/data_rows.c src/data_pack.c src/tokenizer_offsets.c
noinst_HEADERS += src/chat.h src/data_internal.h

# chat_dump: renders conversations and encodes with offsets, for the
# comparisons with transformers and tokenizers.
check_PROGRAMS += tests/data/chat_dump
tests_data_chat_dump_SOURCES = tests/data/chat_dump.c
tests_data_chat_dump_LDADD = $(LDADD_COMMON)

# data_dump: loads a split with train's data flags and writes its rows.
check_PROGRAMS += tests/data/data_dump
tests_data_data_dump_SOURCES = tests/data/data_dump.c
tests_data_data_dump_LDADD = $(LDADD_COMMON)

# Unit tests (cmocka): templates, special tokens, schemas, splits, every
# refusal of a bad row, packing.
check_PROGRAMS += tests/data/test_data
tests_data_test_data_SOURCES = tests/data/test_data.c
tests_data_test_data_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_data_test_data_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/data/test_data

# Shell tests: valgrind, and the comparisons with transformers, tokenizers,
# TRL's packing and the model's loss.
TESTS += tests/data/data_valgrind.sh tests/data/chat_agreement.sh tests/data/data_agreement.sh \
	tests/data/packed_loss.sh
EXTRA_DIST += tests/data/data_valgrind.sh tests/data/chat_agreement.sh tests/data/data_agreement.sh \
	tests/data/packed_loss.sh tests/data/chat_agreement.py tests/data/data_agreement.py \
	tests/data/README tests/data/LICENSE.1.5-Pints tests/data/LICENSE.FastChat \
	tests/data/ultrachat_200k_sample16.jsonl tests/data/fastchat_dummy_conversation.json

# the data-parallel split of the sampler
check_PROGRAMS += tests/data/test_sampler
tests_data_test_sampler_SOURCES = tests/data/test_sampler.c
tests_data_test_sampler_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_data_test_sampler_LDADD = $(LDADD_COMMON) $(CMOCKA_LIBS)
TESTS += tests/data/test_sampler
TESTS += tests/data/guide_command.sh
EXTRA_DIST += tests/data/guide_command.sh
TESTS += tests/data/guide_qlora_command.sh
EXTRA_DIST += tests/data/guide_qlora_command.sh tests/ref/qlora_adapter_eval.py
