# tests/fuzz: libFuzzer targets for parsers of untrusted input, built by
# clang with AddressSanitizer and UndefinedBehaviorSanitizer (configure:
# SHARDTUNE_CHECK_FUZZING) straight from the sources they test.  make check
# runs each on its seeds and then for a short, fixed time (fuzz_run.sh);
# bench/fuzz.sh runs them for millions of inputs.
FUZZ_CFLAGS = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -std=gnu11 \
	-I$(srcdir)/src $(JANSSON_CFLAGS) $(PCRE2_CFLAGS)
FUZZ_JINJA_SRC = $(srcdir)/tests/fuzz/fuzz_jinja.c $(srcdir)/src/jinja_lex.c $(srcdir)/src/jinja_parse.c \
	$(srcdir)/src/jinja_value.c $(srcdir)/src/jinja_builtins.c $(srcdir)/src/jinja_eval.c $(srcdir)/src/log.c \
	$(srcdir)/src/tokenizer_utf8.c
EXTRA_DIST += tests/fuzz/fuzz_jinja.c tests/fuzz/fuzz_run.sh tests/fuzz/jinja_fuzz.sh tests/fuzz/jinja_seeds.sh tests/fuzz/jinja.dict \
	tests/fuzz/README bench/fuzz.sh

# Chat templates (src/jinja*.c), seeded with the templates of tests/chat_template.
TESTS += tests/fuzz/jinja_fuzz.sh
if FUZZING
check_DATA += tests/fuzz/fuzz_jinja
CLEANFILES += tests/fuzz/fuzz_jinja
tests/fuzz/fuzz_jinja: $(FUZZ_JINJA_SRC) $(srcdir)/src/jinja.h $(srcdir)/src/jinja_internal.h $(srcdir)/src/utf8.h
	$(MKDIR_P) tests/fuzz
	OMPI_CC="$(FUZZ_CLANG)" $(MPICC) $(FUZZ_CFLAGS) $(FUZZ_JINJA_SRC) $(JANSSON_LIBS) -lm -o $@
endif
