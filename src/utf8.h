/* utf8.h: the UTF-8 check that text read from files (tokenizers, chat
 * templates) passes before anything parses it (tokenizer_utf8.c). */
#ifndef SHARDTUNE_UTF8_H
#define SHARDTUNE_UTF8_H

#include <stddef.h>

/* 1 when s[0..n) is valid UTF-8 (Rust's and Python's rules: no overlong
 * forms, no surrogates, nothing above U+10FFFF); otherwise 0 and *bad_at
 * (when not NULL) is the offset of the first byte that is not. */
int utf8_valid(const char *s, size_t n, size_t *bad_at);

#endif
