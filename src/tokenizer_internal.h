/* tokenizer_internal.h: the parts of the tokenizer that its own files share.
 *
 * The tokenizer is split by concern: hash tables (tokenizer_map.c), UTF-8
 * and the byte-level alphabet (tokenizer_utf8.c), the BPE model
 * (tokenizer_bpe.c), normalizers and pre-tokenizers (tokenizer_pretok.c),
 * added tokens (tokenizer_added.c), reading tokenizer.json,
 * tokenizer_config.json and the GPT-2 slow files (tokenizer_json.c,
 * tokenizer_config.c, tokenizer_slow.c), decoding
 * (tokenizer_decode.c), saving (tokenizer_save.c), the pipeline that ties
 * them together (tokenizer.c) with its offset-tracking twin
 * (tokenizer_offsets.c).  Nothing outside those files includes this. */
#ifndef SHARDTUNE_TOKENIZER_INTERNAL_H
#define SHARDTUNE_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"
#include "tokenizer.h"
#include "utf8.h"

/* U+2581 LOWER ONE EIGHTH BLOCK, SentencePiece's visible space. */
#define META_SPACE "\xe2\x96\x81"
#define META_SPACE_LEN 3

/* ---------------------------------------------------------------------------
 * Growable arrays and a scratch arena (tokenizer_map.c). */

typedef struct idvec {
    int32_t *v;
    size_t n, cap;
} idvec;

void idvec_push(idvec *a, int32_t id);
void idvec_append(idvec *a, const int32_t *ids, size_t n_ids);

/* Bump allocator for the strings that normalizers and pre-tokenizers make
 * during one encode call; freed in one go. */
typedef struct arena_block arena_block;
typedef struct arena {
    arena_block *head;
} arena;

char *arena_alloc(arena *a, size_t n_bytes);
void arena_free(arena *a);

/* ---------------------------------------------------------------------------
 * Open-addressing hash tables (tokenizer_map.c). */

uint64_t hash_bytes(const char *p, size_t n_bytes);

/* Byte string -> int32.  Keys are copied into the map's own pool. */
typedef struct strmap_slot {
    uint64_t hash;
    uint32_t off, len; /* key in pool; len == UINT32_MAX: empty slot */
    int32_t val;
} strmap_slot;

typedef struct strmap {
    strmap_slot *slots;
    size_t cap, n; /* cap: a power of two */
    char *pool;
    size_t pool_len, pool_cap;
} strmap;

void strmap_init(strmap *m, size_t n_expected);
void strmap_free(strmap *m);
void strmap_clear(strmap *m);
/* Inserts or replaces; returns the previous value, or -1 when it was new. */
int32_t strmap_put(strmap *m, const char *key, size_t len, int32_t val);
/* The value, or -1 when absent. */
int32_t strmap_get(const strmap *m, const char *key, size_t len);

/* (left id, right id) -> (merge rank, merged id), for BPE merges. */
typedef struct pairmap_slot {
    uint64_t key; /* UINT64_MAX: empty */
    int32_t rank, id;
} pairmap_slot;

typedef struct pairmap {
    pairmap_slot *slots;
    size_t cap, n;
} pairmap;

void pairmap_init(pairmap *m, size_t n_expected);
void pairmap_free(pairmap *m);
void pairmap_put(pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t id);
const pairmap_slot *pairmap_get(const pairmap *m, int32_t left, int32_t right);

/* ---------------------------------------------------------------------------
 * UTF-8 and the byte-level alphabet (tokenizer_utf8.c). */

/* utf8_valid: utf8.h */
/* Length of the character that starts with this (valid) lead byte. */
static inline size_t utf8_len(unsigned char lead)
{
    return lead < 0x80 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4;
}
/* Decodes the (valid) character at s; *len gets its length. */
uint32_t utf8_decode(const char *s, size_t *len);
size_t utf8_encode(uint32_t cp, char out[4]);
/* Unicode White_Space, as Rust's char::is_whitespace. */
int unicode_is_whitespace(uint32_t cp);
/* Rust's String::from_utf8_lossy: each maximal invalid subsequence becomes
 * U+FFFD.  Returns a malloc'ed NUL-terminated string. */
char *utf8_lossy(const char *s, size_t n, size_t *n_out);

/* GPT-2's bytes_to_unicode: byte b is written as code point
 * bytelevel_cp(b); bytelevel_byte(cp) inverts it (-1 when cp is none). */
uint32_t bytelevel_cp(unsigned char b);
int bytelevel_byte(uint32_t cp);
/* The raw bytes of a byte-level token: 0 when every character is one of
 * the 256 (then *out, malloc'ed, holds *n_out bytes), -1 otherwise. */
int bytelevel_to_raw(const char *tok, size_t len, char **out, size_t *n_out);

/* ---------------------------------------------------------------------------
 * The BPE model (tokenizer_bpe.c). */

/* Per-call scratch for merging one word. */
typedef struct bpe_symbol {
    int32_t id, prev, next;
    uint32_t len; /* bytes covered; 0 once merged into its left neighbour */
} bpe_symbol;

typedef struct bpe_merge {
    int32_t rank, pos, id;
} bpe_merge;

typedef struct bpe_scratch {
    bpe_symbol *sym;
    size_t sym_cap;
    bpe_merge *heap;
    size_t heap_cap;
} bpe_scratch;

typedef struct bpe_model {
    strmap vocab;     /* token as written in the file -> id */
    char **tokens;    /* id -> token (NUL-terminated; NULL for a hole) */
    size_t n_tokens;  /* largest id + 1 */
    size_t tokens_cap;
    pairmap merges;
    size_t n_merges;
    int32_t unk_id;   /* -1: none */
    int fuse_unk, byte_fallback, ignore_merges;
    int32_t fallback_ids[256]; /* ids of <0x00>..<0xFF>; -1 when absent */
    /* Byte-level: words arrive as raw bytes, each byte one initial symbol. */
    int byte_level;
    strmap raw_vocab;          /* raw bytes -> id */
    int32_t byte_ids[256];
    /* Words may be cut before every U+2581 that follows another character:
     * true when no token holds U+2581 after a different character, so no
     * merge can cross such a point (SentencePiece vocabularies).  Makes
     * whole-text BPE cacheable word by word. */
    int cut_at_meta;
    /* word -> ids cache; guarded by cache_lock because tokenizer_encode
     * takes a const tokenizer and may run on several threads. */
    pthread_mutex_t cache_lock;
    strmap cache_index;        /* word -> entry */
    int64_t *cache_entries;    /* (offset << 16) | n_ids into cache_ids */
    size_t cache_n, cache_cap;
    int32_t *cache_ids;
    size_t cache_ids_len, cache_ids_cap;
} bpe_model;

void bpe_init(bpe_model *m);
void bpe_free(bpe_model *m);
/* Adds a vocabulary entry; a repeated token or id is an error. */
int bpe_add_token(bpe_model *m, const char *tok, size_t len, int32_t id, const char *path,
                  errbuf *e);
/* Adds the merge (left, right) with the next rank; both tokens and their
 * concatenation must be in the vocabulary. */
int bpe_add_merge(bpe_model *m, const char *left, size_t left_len, const char *right,
                  size_t right_len, const char *path, errbuf *e);
/* A merge written "a b" (tokenizer.json's legacy form, merges.txt): split at
 * the space.  A line with several spaces (a token that holds a space) is
 * split where both sides are tokens, when exactly one place works. */
int bpe_add_merge_line(bpe_model *m, const char *line, size_t len, const char *path, errbuf *e);
/* After the vocabulary and merges: byte tables, the raw-byte vocabulary
 * when byte_level, and cut_at_meta. */
int bpe_finish(bpe_model *m, int byte_level, const char *path, errbuf *e);
/* Appends the ids of one pre-tokenized word. */
void bpe_encode_word(const bpe_model *m, bpe_scratch *s, const char *w, size_t n, idvec *out);
void bpe_scratch_free(bpe_scratch *s);
/* As bpe_encode_word, and also appends to lens how many bytes of the word
 * each token covers (no cache: for offsets, tokenizer_offsets.c). */
void bpe_encode_word_lens(const bpe_model *m, bpe_scratch *s, const char *w, size_t n, idvec *out,
                          idvec *lens);

/* ---------------------------------------------------------------------------
 * Normalizers and pre-tokenizers (tokenizer_pretok.c). */

typedef struct piece {
    const char *p;
    size_t n;
    int at_start; /* starts at offset 0 of the original text */
} piece;

typedef struct piecevec {
    piece *v;
    size_t n, cap;
} piecevec;

void piecevec_push(piecevec *a, const char *p, size_t n, int at_start);

enum norm_kind { NORM_PREPEND, NORM_REPLACE, NORM_STRIP };

typedef struct norm_step {
    int kind;
    char *a, *b;     /* PREPEND: a; REPLACE: pattern a (literal) -> b */
    size_t a_len, b_len;
    pcre2_code *re;  /* REPLACE with a Regex pattern */
    int left, right; /* STRIP */
} norm_step;

enum pre_kind { PRE_METASPACE, PRE_BYTELEVEL, PRE_SPLIT };
enum split_behavior { SPLIT_REMOVED, SPLIT_ISOLATED, SPLIT_MERGED_PREV, SPLIT_MERGED_NEXT,
                      SPLIT_CONTIGUOUS };
enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

typedef struct pre_step {
    int kind;
    char *rep;          /* METASPACE replacement (UTF-8) */
    size_t rep_len;
    int prepend_scheme; /* METASPACE */
    int split;          /* METASPACE */
    int add_prefix_space; /* BYTELEVEL */
    pcre2_code *re;     /* SPLIT, and BYTELEVEL with use_regex */
    char *literal;      /* SPLIT with a String pattern */
    size_t literal_len;
    int behavior, invert; /* SPLIT */
} pre_step;

/* GPT-2's pre-tokenization regex (the ByteLevel pre-tokenizer's). */
extern const char *const GPT2_REGEX;

/* Compiles a pattern with UTF and UCP (\p{L}, \s of Unicode) and JIT. */
pcre2_code *regex_compile(const char *pattern, size_t len, const char *path, const char *what,
                          errbuf *e);

/* Applies the normalizer steps to s[0..n); the result lives in ar (or is s). */
void normalize_run(const norm_step *steps, size_t n_steps, const char *s, size_t n,
                   const char **out, size_t *n_out, arena *ar, pcre2_match_data *md);
/* Runs the pre-tokenizer steps over in (consumed); words land in out. */
void pretok_run(const pre_step *steps, size_t n_steps, piecevec *in, piecevec *out, arena *ar,
                pcre2_match_data *md);
void norm_steps_free(norm_step *steps, size_t n);
/* The matches of a regex (re) or a literal in s[0..n), as malloc'ed
 * (start, end) pairs: *n_vals values, twice the number of matches. */
size_t *pretok_find(const pcre2_code *re, const char *literal, size_t literal_len, const char *s, size_t n,
                    size_t *n_vals, pcre2_match_data *md);
/* Cuts pc at the matches spans[0..n_vals) with a Split behavior; the pieces
 * are substrings of pc->p. */
void pretok_split(const piece *pc, const size_t *spans, size_t n_vals, int behavior, int invert, piecevec *out);
void pre_steps_free(pre_step *steps, size_t n);

/* ---------------------------------------------------------------------------
 * Added tokens (tokenizer_added.c). */

typedef struct added_token {
    char *content;
    size_t len;
    char *norm;      /* content after the normalizer: what normalized=true matches */
    size_t norm_len;
    int32_t id;
    unsigned special : 1, lstrip : 1, rstrip : 1, single_word : 1, normalized : 1;
} added_token;

/* One matching set: the tokens matched against raw text, or against
 * normalized text. */
typedef struct added_set {
    strmap map;        /* content -> index into added_vocab.v */
    size_t *lens;      /* distinct content lengths, longest first */
    size_t n_lens;
    uint8_t first[32]; /* bitmap of first bytes */
} added_set;

typedef struct added_vocab {
    added_token *v;
    size_t n, cap;
    strmap by_content; /* content -> index */
    strmap by_id;      /* decimal id -> index */
    added_set raw, norm;
} added_vocab;

/* A stretch of text, or one added token (token >= 0: index into v). */
typedef struct added_segment {
    size_t start, end;
    int token;
} added_segment;

typedef struct segvec {
    added_segment *v;
    size_t n, cap;
} segvec;

void added_init(added_vocab *a);
void added_free(added_vocab *a);
/* Adds (or updates, when the content is known) a token; returns its index. */
size_t added_put(added_vocab *a, const char *content, size_t len, int32_t id, int special,
                 int lstrip, int rstrip, int single_word, int normalized);
int added_find_content(const added_vocab *a, const char *content, size_t len); /* index or -1 */
int added_find_id(const added_vocab *a, int32_t id);                         /* index or -1 */
/* Rebuilds the two matching sets after tokens were added; tokens with
 * normalized=true are matched as the normalizer writes them (as tokenizers
 * does: with a Prepend normalizer "hello" matches "\u2581hello"). */
void added_refresh(added_vocab *a, const norm_step *norm, size_t n_norm);
/* Cuts s[0..n) into text and added-token segments (appended to out). */
void added_split(const added_vocab *a, int normalized_set, const char *s, size_t n, segvec *out);

/* ---------------------------------------------------------------------------
 * Decoders (tokenizer_decode.c). */

enum dec_kind { DEC_REPLACE, DEC_BYTEFALLBACK, DEC_FUSE, DEC_STRIP, DEC_BYTELEVEL,
                DEC_METASPACE };

typedef struct dec_step {
    int kind;
    char *a, *b; /* REPLACE: a -> b; STRIP: a is the character; METASPACE: a */
    size_t a_len, b_len;
    int start, stop;    /* STRIP */
    int prepend_scheme; /* METASPACE */
} dec_step;

void dec_steps_free(dec_step *steps, size_t n);

/* ---------------------------------------------------------------------------
 * The tokenizer. */

struct tokenizer {
    char *path;            /* what was loaded, for messages */
    bpe_model bpe;
    added_vocab added;
    norm_step *norm;
    size_t n_norm;
    pre_step *pre;
    size_t n_pre;
    dec_step *dec;
    size_t n_dec;
    int has_decoder;
    /* post-processing with add_special_tokens: prefix + ids + suffix */
    idvec post_prefix, post_suffix;
    int32_t bos_id, eos_id, pad_id, unk_id;
    json_t *json;          /* the tokenizer.json tree, for tokenizer_save */
    json_t *config;        /* tokenizer_config.json, or NULL */
};

/* tokenizer_json.c: fills t from a tokenizer.json tree (t->json). */
int tokenizer_from_json(tokenizer *t, const char *path, errbuf *e);
/* tokenizer_config.c: applies t->config (tokenizer_config.json): special
 * tokens and add_bos/eos_token. */
int tokenizer_apply_config(tokenizer *t, const char *path, errbuf *e);
/* tokenizer_slow.c: builds the tokenizer.json tree of a byte-level BPE
 * from vocab.json + merges.txt (GPT-2's). */
json_t *tokenizer_slow_json(const char *vocab_path, const char *merges_path, errbuf *e);

#endif
