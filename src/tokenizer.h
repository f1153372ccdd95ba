/* tokenizer.h: Hugging Face tokenizers (BPE) in C.
 *
 * Loads tokenizer.json with a BPE model of either kind Llama-family models
 * use: SentencePiece-style (Prepend/Replace U+2581 normalizer, byte
 * fallback, fuse_unk) and byte-level (ByteLevel pre-tokenizer/decoder,
 * Split pre-tokenizers with their regex through PCRE2).  Added tokens are
 * matched before the model; the TemplateProcessing post-processor adds
 * BOS/EOS as the file says.  Also loads byte-level vocab.json + merges.txt. */
#ifndef SHARDTUNE_TOKENIZER_H
#define SHARDTUNE_TOKENIZER_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

typedef struct tokenizer tokenizer;

/* PATH is a tokenizer.json file, or a directory holding tokenizer.json
 * (and optionally tokenizer_config.json, which gives bos/eos/pad/unk and
 * add_bos_token), or vocab.json + merges.txt. */
tokenizer *tokenizer_load(const char *path, errbuf *e);
void tokenizer_free(tokenizer *t);

/* Encodes n_bytes of UTF-8 text (invalid UTF-8 is an error).  With
 * add_special_tokens the post-processor's BOS/EOS are added.  *ids is
 * malloc'ed, the caller frees it.  Several threads may encode and decode
 * with one tokenizer at once (its word cache has a lock); adding tokens
 * must not overlap with that. */
int tokenizer_encode(const tokenizer *t, const char *text, size_t n_bytes, int add_special_tokens,
                     int32_t **ids, size_t *n_ids, errbuf *e);
/* As tokenizer_encode, and *offsets (malloc'ed, 2 per id) gets each token's
 * byte span [start, end) in text: Hugging Face's offsets, in bytes (a byte
 * stands for its whole character; a prepended U+2581 or space for the
 * character it precedes; post-processor BOS/EOS get [0, 0)).  The ids are
 * tokenizer_encode's. */
int tokenizer_encode_offsets(const tokenizer *t, const char *text, size_t n_bytes, int add_special_tokens,
                             int32_t **ids, size_t **offsets, size_t *n_ids, errbuf *e);
/* Decodes ids to UTF-8 text (malloc'ed, NUL-terminated); special tokens are
 * dropped when skip_special_tokens. */
int tokenizer_decode(const tokenizer *t, const int32_t *ids, size_t n_ids, int skip_special_tokens,
                     char **text, size_t *n_bytes, errbuf *e);

size_t tokenizer_vocab_size(const tokenizer *t);   /* largest id + 1, added tokens included */
int tokenizer_token_to_id(const tokenizer *t, const char *token); /* -1 when absent */
const char *tokenizer_id_to_token(const tokenizer *t, int id);   /* NULL when absent */
/* Special token ids from tokenizer_config.json / the file; -1 when none. */
int tokenizer_bos_id(const tokenizer *t);
int tokenizer_eos_id(const tokenizer *t);
int tokenizer_pad_id(const tokenizer *t);
int tokenizer_unk_id(const tokenizer *t);
/* Adds a special token (matched whole before the model, as an added token
 * with special=true) with the next free id; returns its id (the existing id
 * when already present). */
int tokenizer_add_special_token(tokenizer *t, const char *content);
/* Sets which token is bos / eos / pad / unk (by content; added as a special
 * token when absent).  Returns its id, or -1 (with e set) for another role. */
int tokenizer_set_special(tokenizer *t, const char *role, const char *content, errbuf *e);
/* Writes tokenizer.json and tokenizer_config.json into DIR (with added
 * tokens), so that a tuned model directory carries its tokenizer. */
int tokenizer_save(const tokenizer *t, const char *dir, errbuf *e);

/* `shardtune tokenize --tokenizer PATH [--add_special_tokens True|False]
 * [--decode] TEXT...`: one line per input. */
int tokenize_main(int argc, char **argv);

#endif
