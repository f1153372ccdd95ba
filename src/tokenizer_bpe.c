/* tokenizer_bpe.c: the BPE model of Hugging Face tokenizers.
 *
 * A word starts as one symbol per character (per byte for byte-level
 * vocabularies); characters missing from the vocabulary become their
 * <0xXX> byte tokens (byte_fallback) or the unknown token (consecutive ones
 * fused with fuse_unk).  Then the lowest-ranked mergeable pair is merged,
 * leftmost first on ties, until no pair has a merge: a binary heap of
 * candidate merges over a linked list of symbols, as tokenizers' Word does,
 * so a word of n symbols costs O(n log n).  Words shorter than 256 bytes go
 * through a word -> ids cache: natural text repeats its words. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

enum { CACHE_MAX_WORD = 256, CACHE_MAX_ENTRIES = 1 << 18, CACHE_MAX_IDS = 1 << 22 };

void bpe_init(bpe_model *m)
{
    memset(m, 0, sizeof *m);
    strmap_init(&m->vocab, 1024);
    strmap_init(&m->raw_vocab, 16);
    pairmap_init(&m->merges, 1024);
    strmap_init(&m->cache_index, 4096);
    pthread_mutex_init(&m->cache_lock, NULL);
    m->unk_id = -1;
    for (int b = 0; b < 256; b++)
        m->fallback_ids[b] = m->byte_ids[b] = -1;
}

void bpe_free(bpe_model *m)
{
    strmap_free(&m->vocab);
    strmap_free(&m->raw_vocab);
    pairmap_free(&m->merges);
    strmap_free(&m->cache_index);
    pthread_mutex_destroy(&m->cache_lock);
    for (size_t i = 0; i < m->n_tokens; i++)
        free(m->tokens[i]);
    free(m->tokens);
    free(m->cache_entries);
    free(m->cache_ids);
}

int bpe_add_token(bpe_model *m, const char *tok, size_t len, int32_t id, const char *path,
                  errbuf *e)
{
    if (id < 0)
        return err_set(e, "%s: model.vocab: token \"%s\" has the negative id %d", path, tok, id);
    if ((size_t)id >= m->tokens_cap) {
        size_t cap = m->tokens_cap ? m->tokens_cap : 1024;
        while (cap <= (size_t)id)
            cap *= 2;
        char **grown = realloc(m->tokens, cap * sizeof *grown);
        if (!grown)
            return err_set(e, "%s: out of memory for %zu tokens", path, cap);
        memset(grown + m->tokens_cap, 0, (cap - m->tokens_cap) * sizeof *grown);
        m->tokens = grown;
        m->tokens_cap = cap;
    }
    if ((size_t)id >= m->n_tokens)
        m->n_tokens = (size_t)id + 1;
    if (m->tokens[id])
        return err_set(e, "%s: model.vocab: id %d is given to both \"%s\" and \"%s\"", path, id,
                       m->tokens[id], tok);
    if (strmap_put(&m->vocab, tok, len, id) >= 0)
        return err_set(e, "%s: model.vocab: token \"%s\" appears twice", path, tok);
    m->tokens[id] = xmalloc(len + 1);
    memcpy(m->tokens[id], tok, len);
    m->tokens[id][len] = '\0';
    return 0;
}

int bpe_add_merge(bpe_model *m, const char *left, size_t left_len, const char *right,
                  size_t right_len, const char *path, errbuf *e)
{
    size_t rank = m->n_merges;
    int32_t l = strmap_get(&m->vocab, left, left_len);
    int32_t r = strmap_get(&m->vocab, right, right_len);
    if (l < 0 || r < 0)
        return err_set(e, "%s: merge %zu (\"%.*s\" \"%.*s\") names \"%.*s\", which is not in the "
                       "vocabulary", path, rank + 1, (int)left_len, left, (int)right_len, right,
                       (int)(l < 0 ? left_len : right_len), l < 0 ? left : right);
    char buf[512], *cat = left_len + right_len <= sizeof buf ? buf : xmalloc(left_len + right_len);
    memcpy(cat, left, left_len);
    memcpy(cat + left_len, right, right_len);
    int32_t id = strmap_get(&m->vocab, cat, left_len + right_len);
    if (cat != buf)
        free(cat);
    if (id < 0)
        return err_set(e, "%s: merge %zu (\"%.*s\" \"%.*s\"): the merged token \"%.*s%.*s\" is not "
                       "in the vocabulary", path, rank + 1, (int)left_len, left, (int)right_len,
                       right, (int)left_len, left, (int)right_len, right);
    if (rank >= INT32_MAX)
        return err_set(e, "%s: more than 2^31 merges", path);
    pairmap_put(&m->merges, l, r, (int32_t)rank, id);
    m->n_merges++;
    return 0;
}

int bpe_add_merge_line(bpe_model *m, const char *line, size_t len, const char *path, errbuf *e)
{
    size_t n_spaces = 0, only = 0;
    for (size_t i = 0; i < len; i++)
        if (line[i] == ' ') {
            n_spaces++;
            only = i;
        }
    if (n_spaces == 1)
        return bpe_add_merge(m, line, only, line + only + 1, len - only - 1, path, e);
    /* A token that holds a space (seen in copies of Llama-2's vocabulary
     * where U+00A0 became a plain space): the one split into two known
     * tokens whose concatenation is known. */
    size_t found = 0, at = 0;
    char *cat = xmalloc(len + 1);
    for (size_t i = 0; n_spaces > 1 && i < len; i++) {
        if (line[i] != ' ' || strmap_get(&m->vocab, line, i) < 0 ||
            strmap_get(&m->vocab, line + i + 1, len - i - 1) < 0)
            continue;
        memcpy(cat, line, i);
        memcpy(cat + i, line + i + 1, len - i - 1);
        if (strmap_get(&m->vocab, cat, len - 1) >= 0) {
            found++;
            at = i;
        }
    }
    free(cat);
    if (found != 1)
        return err_set(e, "%s: merge %zu \"%.*s\" is not two tokens separated by one space%s", path,
                       m->n_merges + 1, (int)len, line,
                       found > 1 ? " (it splits into known tokens in several ways)" : "");
    return bpe_add_merge(m, line, at, line + at + 1, len - at - 1, path, e);
}

/* Whether some token holds U+2581 right after a different character. */
static int meta_inside_token(const char *tok)
{
    const char *p = tok;
    while ((p = strstr(p, META_SPACE)) != NULL) {
        if (p != tok && !(p - tok >= META_SPACE_LEN &&
                          memcmp(p - META_SPACE_LEN, META_SPACE, META_SPACE_LEN) == 0))
            return 1;
        p += META_SPACE_LEN;
    }
    return 0;
}

int bpe_finish(bpe_model *m, int byte_level, const char *path, errbuf *e)
{
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        m->fallback_ids[b] = strmap_get(&m->vocab, name, strlen(name));
    }
    m->byte_level = byte_level;
    if (byte_level) {
        for (size_t id = 0; id < m->n_tokens; id++) {
            char *raw;
            size_t n_raw;
            if (m->tokens[id] &&
                bytelevel_to_raw(m->tokens[id], strlen(m->tokens[id]), &raw, &n_raw) == 0) {
                strmap_put(&m->raw_vocab, raw, n_raw, (int32_t)id);
                free(raw);
            }
        }
        for (int b = 0; b < 256; b++) {
            char c = (char)b;
            m->byte_ids[b] = strmap_get(&m->raw_vocab, &c, 1);
        }
        m->cut_at_meta = 0;
    } else {
        m->cut_at_meta = strmap_get(&m->vocab, META_SPACE, META_SPACE_LEN) >= 0;
        for (size_t id = 0; m->cut_at_meta && id < m->n_tokens; id++)
            if (m->tokens[id] && meta_inside_token(m->tokens[id]))
                m->cut_at_meta = 0;
    }
    return 0;
}

void bpe_scratch_free(bpe_scratch *s)
{
    free(s->sym);
    free(s->heap);
    memset(s, 0, sizeof *s);
}

/* ------------------------------------------------------------------------- */
/* The cache. */

static int cache_get(bpe_model *m, const char *w, size_t n, idvec *out)
{
    int found = 0;
    pthread_mutex_lock(&m->cache_lock);
    int32_t entry = strmap_get(&m->cache_index, w, n);
    if (entry >= 0) {
        int64_t v = m->cache_entries[entry];
        idvec_append(out, m->cache_ids + (v >> 16), (size_t)(v & 0xFFFF));
        found = 1;
    }
    pthread_mutex_unlock(&m->cache_lock);
    return found;
}

static void cache_put(bpe_model *m, const char *w, size_t n, const int32_t *ids, size_t n_ids)
{
    pthread_mutex_lock(&m->cache_lock);
    if (strmap_get(&m->cache_index, w, n) >= 0) {
        /* another thread cached it meanwhile */
        pthread_mutex_unlock(&m->cache_lock);
        return;
    }
    if (m->cache_n >= CACHE_MAX_ENTRIES || m->cache_ids_len + n_ids > CACHE_MAX_IDS) {
        /* full: start again rather than track recency */
        strmap_clear(&m->cache_index);
        m->cache_n = m->cache_ids_len = 0;
    }
    if (m->cache_n == m->cache_cap) {
        m->cache_cap = m->cache_cap ? 2 * m->cache_cap : 4096;
        m->cache_entries = realloc(m->cache_entries, m->cache_cap * sizeof *m->cache_entries);
        if (!m->cache_entries)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing the word cache");
    }
    if (m->cache_ids_len + n_ids > m->cache_ids_cap) {
        size_t cap = m->cache_ids_cap ? 2 * m->cache_ids_cap : 65536;
        while (cap < m->cache_ids_len + n_ids)
            cap *= 2;
        m->cache_ids = realloc(m->cache_ids, cap * sizeof *m->cache_ids);
        if (!m->cache_ids)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing the word cache");
        m->cache_ids_cap = cap;
    }
    strmap_put(&m->cache_index, w, n, (int32_t)m->cache_n);
    memcpy(m->cache_ids + m->cache_ids_len, ids, n_ids * sizeof *ids);
    m->cache_entries[m->cache_n++] = ((int64_t)m->cache_ids_len << 16) | (int64_t)n_ids;
    m->cache_ids_len += n_ids;
    pthread_mutex_unlock(&m->cache_lock);
}

/* ------------------------------------------------------------------------- */
/* Merging. */

static int merge_less(const bpe_merge *a, const bpe_merge *b)
{
    return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(bpe_scratch *s, size_t *n, bpe_merge m)
{
    if (*n == s->heap_cap) {
        s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 256;
        s->heap = realloc(s->heap, s->heap_cap * sizeof *s->heap);
        if (!s->heap)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing the merge queue");
    }
    size_t i = (*n)++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!merge_less(&m, &s->heap[parent]))
            break;
        s->heap[i] = s->heap[parent];
        i = parent;
    }
    s->heap[i] = m;
}

static bpe_merge heap_pop(bpe_scratch *s, size_t *n)
{
    bpe_merge top = s->heap[0], last = s->heap[--(*n)];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && merge_less(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!merge_less(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (*n > 0)
        s->heap[i] = last;
    return top;
}

static void sym_push(bpe_scratch *s, size_t *n, int32_t id, uint32_t len)
{
    if (*n == s->sym_cap) {
        s->sym_cap = s->sym_cap ? 2 * s->sym_cap : 256;
        s->sym = realloc(s->sym, s->sym_cap * sizeof *s->sym);
        if (!s->sym)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing a word's symbols");
    }
    s->sym[*n] = (bpe_symbol){id, (int32_t)*n - 1, (int32_t)*n + 1, len};
    (*n)++;
}

/* The initial symbols of a word, as tokenizers' merge_word makes them. */
static size_t word_symbols(const bpe_model *m, bpe_scratch *s, const char *w, size_t n)
{
    size_t n_sym = 0;
    if (m->byte_level) {
        for (size_t i = 0; i < n; i++) {
            int32_t id = m->byte_ids[(unsigned char)w[i]];
            if (id >= 0)
                sym_push(s, &n_sym, id, 1);
            else if (m->unk_id >= 0) {
                if (m->fuse_unk && n_sym > 0 && s->sym[n_sym - 1].id == m->unk_id)
                    s->sym[n_sym - 1].len++;
                else
                    sym_push(s, &n_sym, m->unk_id, 1);
            }
        }
    } else {
        int32_t pending_unk_len = 0; /* an unknown stretch not yet added */
        for (size_t i = 0; i < n;) {
            size_t k = utf8_len((unsigned char)w[i]);
            if (k > n - i)
                k = n - i;
            int32_t id = strmap_get(&m->vocab, w + i, k);
            if (id >= 0) {
                if (pending_unk_len) {
                    sym_push(s, &n_sym, m->unk_id, (uint32_t)pending_unk_len);
                    pending_unk_len = 0;
                }
                sym_push(s, &n_sym, id, (uint32_t)k);
            } else {
                int all_bytes = m->byte_fallback;
                for (size_t j = 0; all_bytes && j < k; j++)
                    all_bytes = m->fallback_ids[(unsigned char)w[i + j]] >= 0;
                if (all_bytes) {
                    /* as in tokenizers, a pending unknown is not flushed here */
                    for (size_t j = 0; j < k; j++)
                        sym_push(s, &n_sym, m->fallback_ids[(unsigned char)w[i + j]], 1);
                } else if (m->unk_id >= 0) {
                    if (pending_unk_len && !m->fuse_unk) {
                        sym_push(s, &n_sym, m->unk_id, (uint32_t)pending_unk_len);
                        pending_unk_len = 0;
                    }
                    pending_unk_len += (int32_t)k;
                }
            }
            i += k;
        }
        if (pending_unk_len)
            sym_push(s, &n_sym, m->unk_id, (uint32_t)pending_unk_len);
    }
    if (n_sym > 0)
        s->sym[n_sym - 1].next = -1;
    return n_sym;
}

static void merge_all(const bpe_model *m, bpe_scratch *s, size_t n_sym)
{
    size_t n_heap = 0;
    for (size_t i = 0; i + 1 < n_sym; i++) {
        const pairmap_slot *p = pairmap_get(&m->merges, s->sym[i].id, s->sym[i + 1].id);
        if (p)
            heap_push(s, &n_heap, (bpe_merge){p->rank, (int32_t)i, p->id});
    }
    while (n_heap > 0) {
        bpe_merge top = heap_pop(s, &n_heap);
        bpe_symbol *cur = &s->sym[top.pos];
        if (cur->len == 0 || cur->next < 0)
            continue;
        bpe_symbol *right = &s->sym[cur->next];
        const pairmap_slot *p = pairmap_get(&m->merges, cur->id, right->id);
        if (!p || p->id != top.id)
            continue; /* a stale candidate: one side was merged since */
        cur->id = top.id;
        cur->len += right->len;
        cur->next = right->next;
        right->len = 0;
        if (cur->next >= 0)
            s->sym[cur->next].prev = top.pos;
        if (cur->prev >= 0) {
            p = pairmap_get(&m->merges, s->sym[cur->prev].id, cur->id);
            if (p)
                heap_push(s, &n_heap, (bpe_merge){p->rank, cur->prev, p->id});
        }
        if (cur->next >= 0) {
            p = pairmap_get(&m->merges, cur->id, s->sym[cur->next].id);
            if (p)
                heap_push(s, &n_heap, (bpe_merge){p->rank, top.pos, p->id});
        }
    }
}

/* One chunk of a word: its ids, and with lens the bytes of the word each
 * token covers (for offsets, tokenizer_offsets.c).  Without lens the cache
 * of merged words serves repeated words; it keeps ids only, so with lens
 * every chunk is merged: the same merges, so the same ids. */
static void encode_chunk(const bpe_model *m, bpe_scratch *s, const char *w, size_t n, idvec *out, idvec *lens)
{
    if (n == 0)
        return;
    if (m->ignore_merges) {
        int32_t id = strmap_get(m->byte_level ? &m->raw_vocab : &m->vocab, w, n);
        if (id >= 0) {
            idvec_push(out, id);
            if (lens)
                idvec_push(lens, (int32_t)n);
            return;
        }
    }
    bpe_model *mm = (bpe_model *)m; /* the cache is the only mutable part */
    const int cached = !lens && n < CACHE_MAX_WORD;
    if (cached && cache_get(mm, w, n, out))
        return;
    size_t n_sym = word_symbols(m, s, w, n);
    if (n_sym > 1)
        merge_all(m, s, n_sym);
    size_t first = out->n;
    for (size_t i = 0; i < n_sym; i++)
        if (s->sym[i].len) {
            idvec_push(out, s->sym[i].id);
            if (lens)
                idvec_push(lens, (int32_t)s->sym[i].len);
        }
    /* a word that gave no ids is not cached: out->v may still be NULL, and
     * NULL + 0 is undefined behaviour (UBSan, tests/fuzz/fuzz_tokenizer) */
    if (cached && out->n > first)
        cache_put(mm, w, n, out->v + first, out->n - first);
}

/* Encodes a word chunk by chunk (one chunk unless cut_at_meta). */
static void encode_by_chunks(const bpe_model *m, bpe_scratch *s, const char *w, size_t n, idvec *out, idvec *lens)
{
    if (!m->cut_at_meta) {
        encode_chunk(m, s, w, n, out, lens);
        return;
    }
    /* cut before each U+2581 that follows another character */
    size_t start = 0, i = 0;
    while (i + META_SPACE_LEN <= n) {
        const char *p = memchr(w + i, '\xe2', n - i);
        if (!p || (size_t)(p - w) + META_SPACE_LEN > n)
            break;
        i = (size_t)(p - w);
        if (memcmp(p, META_SPACE, META_SPACE_LEN) != 0) {
            i++;
            continue;
        }
        if (i > start && !(i >= META_SPACE_LEN &&
                           memcmp(w + i - META_SPACE_LEN, META_SPACE, META_SPACE_LEN) == 0)) {
            encode_chunk(m, s, w + start, i - start, out, lens);
            start = i;
        }
        i += META_SPACE_LEN;
    }
    encode_chunk(m, s, w + start, n - start, out, lens);
}

void bpe_encode_word(const bpe_model *m, bpe_scratch *s, const char *w, size_t n, idvec *out)
{
    encode_by_chunks(m, s, w, n, out, NULL);
}

/* ------------------------------------------------------------------------- */
/* Encoding with each token's length, for offsets (tokenizer_offsets.c). */

void bpe_encode_word_lens(const bpe_model *m, bpe_scratch *s, const char *w, size_t n, idvec *out, idvec *lens)
{
    /* the same cuts as bpe_encode_word: they change nothing in the result */
    encode_by_chunks(m, s, w, n, out, lens);
}
