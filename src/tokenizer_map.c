/* tokenizer_map.c: the small containers the tokenizer is built on: growable
 * id arrays, a bump arena, and two open-addressing hash tables (byte string
 * -> id for vocabularies, id pair -> merge for BPE).  Linear probing at a
 * load factor of at most 1/2 keeps a lookup to one or two cache lines. */
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

void idvec_push(idvec *a, int32_t id)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? 2 * a->cap : 64;
        int32_t *grown = realloc(a->v, a->cap * sizeof *a->v);
        if (!grown)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing an id list to %zu", a->cap);
        a->v = grown;
    }
    a->v[a->n++] = id;
}

void idvec_append(idvec *a, const int32_t *ids, size_t n_ids)
{
    /* an empty list's ids may be NULL, and memcpy from NULL is undefined
     * even for 0 bytes (UBSan, tests/fuzz/fuzz_tokenizer) */
    if (n_ids == 0)
        return;
    if (a->n + n_ids > a->cap) {
        size_t cap = a->cap ? a->cap : 64;
        while (cap < a->n + n_ids)
            cap *= 2;
        int32_t *grown = realloc(a->v, cap * sizeof *a->v);
        if (!grown)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing an id list to %zu", cap);
        a->v = grown;
        a->cap = cap;
    }
    memcpy(a->v + a->n, ids, n_ids * sizeof *ids);
    a->n += n_ids;
}

/* ------------------------------------------------------------------------- */

struct arena_block {
    arena_block *next;
    size_t used, cap;
    char data[];
};

char *arena_alloc(arena *a, size_t n_bytes)
{
    arena_block *b = a->head;
    if (!b || b->cap - b->used < n_bytes) {
        size_t cap = n_bytes > 60000 ? n_bytes : 60000;
        b = xmalloc(sizeof *b + cap);
        b->used = 0;
        b->cap = cap;
        b->next = a->head;
        a->head = b;
    }
    char *p = b->data + b->used;
    b->used += n_bytes;
    return p;
}

void arena_free(arena *a)
{
    while (a->head) {
        arena_block *next = a->head->next;
        free(a->head);
        a->head = next;
    }
}

/* ------------------------------------------------------------------------- */

/* A multiply-xorshift hash over 8-byte words: tokens are short, so the
 * per-call cost matters more than the quality on long keys. */
uint64_t hash_bytes(const char *p, size_t n_bytes)
{
    uint64_t h = 0x9E3779B97F4A7C15ull ^ (n_bytes * 0xff51afd7ed558ccdull);
    while (n_bytes >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        h = (h ^ v) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n_bytes -= 8;
    }
    uint64_t v = 0;
    memcpy(&v, p, n_bytes);
    h = (h ^ v) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static size_t cap_for(size_t n_expected)
{
    size_t cap = 16;
    while (cap < 2 * n_expected)
        cap *= 2;
    return cap;
}

static strmap_slot *strmap_slots_new(size_t cap)
{
    strmap_slot *s = xmalloc(cap * sizeof *s);
    for (size_t i = 0; i < cap; i++)
        s[i].len = UINT32_MAX;
    return s;
}

void strmap_init(strmap *m, size_t n_expected)
{
    m->cap = cap_for(n_expected);
    m->slots = strmap_slots_new(m->cap);
    m->n = 0;
    m->pool = NULL;
    m->pool_len = m->pool_cap = 0;
}

void strmap_free(strmap *m)
{
    free(m->slots);
    free(m->pool);
    memset(m, 0, sizeof *m);
}

void strmap_clear(strmap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        m->slots[i].len = UINT32_MAX;
    m->n = 0;
    m->pool_len = 0;
}

static void strmap_grow(strmap *m)
{
    size_t cap = m->cap * 2;
    strmap_slot *slots = strmap_slots_new(cap);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].len == UINT32_MAX)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (slots[j].len != UINT32_MAX)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

int32_t strmap_put(strmap *m, const char *key, size_t len, int32_t val)
{
    if (2 * (m->n + 1) > m->cap)
        strmap_grow(m);
    uint64_t h = hash_bytes(key, len);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        strmap_slot *s = &m->slots[j];
        if (s->len == UINT32_MAX)
            break;
        if (s->hash == h && s->len == len && memcmp(m->pool + s->off, key, len) == 0) {
            int32_t old = s->val;
            s->val = val;
            return old;
        }
    }
    /* an empty first key (a vocabulary may hold "") still allocates the
     * pool: pool + 0 on a NULL pool is undefined (UBSan, tests/fuzz) */
    if (!m->pool || m->pool_len + len > m->pool_cap || m->pool_len + len > UINT32_MAX) {
        size_t cap = m->pool_cap ? 2 * m->pool_cap : 4096;
        while (cap < m->pool_len + len)
            cap *= 2;
        if (cap > UINT32_MAX)
            die(EXIT_FAILURE_RUN, "tokenizer: a string table outgrew 4 GiB");
        char *grown = realloc(m->pool, cap);
        if (!grown)
            die(EXIT_FAILURE_RUN, "tokenizer: out of memory growing a string table to %zu bytes",
                cap);
        m->pool = grown;
        m->pool_cap = cap;
    }
    memcpy(m->pool + m->pool_len, key, len);
    m->slots[j] = (strmap_slot){h, (uint32_t)m->pool_len, (uint32_t)len, val};
    m->pool_len += len;
    m->n++;
    return -1;
}

int32_t strmap_get(const strmap *m, const char *key, size_t len)
{
    uint64_t h = hash_bytes(key, len);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const strmap_slot *s = &m->slots[j];
        if (s->len == UINT32_MAX)
            return -1;
        if (s->hash == h && s->len == len && memcmp(m->pool + s->off, key, len) == 0)
            return s->val;
    }
}

/* ------------------------------------------------------------------------- */

static uint64_t pair_key(int32_t left, int32_t right)
{
    return ((uint64_t)(uint32_t)left << 32) | (uint32_t)right;
}

static size_t pair_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdull;
    key ^= key >> 33;
    return (size_t)key;
}

static pairmap_slot *pairmap_slots_new(size_t cap)
{
    pairmap_slot *s = xmalloc(cap * sizeof *s);
    for (size_t i = 0; i < cap; i++)
        s[i].key = UINT64_MAX;
    return s;
}

void pairmap_init(pairmap *m, size_t n_expected)
{
    m->cap = cap_for(n_expected);
    m->slots = pairmap_slots_new(m->cap);
    m->n = 0;
}

void pairmap_free(pairmap *m)
{
    free(m->slots);
    memset(m, 0, sizeof *m);
}

static void pairmap_grow(pairmap *m)
{
    size_t cap = m->cap * 2;
    pairmap_slot *slots = pairmap_slots_new(cap);
    for (size_t i = 0; i < m->cap; i++) {
        if (m->slots[i].key == UINT64_MAX)
            continue;
        size_t j = pair_hash(m->slots[i].key) & (cap - 1);
        while (slots[j].key != UINT64_MAX)
            j = (j + 1) & (cap - 1);
        slots[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

/* A repeated pair takes the later rank, as Hugging Face's HashMap collect does. */
void pairmap_put(pairmap *m, int32_t left, int32_t right, int32_t rank, int32_t id)
{
    if (2 * (m->n + 1) > m->cap)
        pairmap_grow(m);
    uint64_t key = pair_key(left, right);
    size_t j = pair_hash(key) & (m->cap - 1);
    while (m->slots[j].key != UINT64_MAX && m->slots[j].key != key)
        j = (j + 1) & (m->cap - 1);
    if (m->slots[j].key == UINT64_MAX)
        m->n++;
    m->slots[j] = (pairmap_slot){key, rank, id};
}

const pairmap_slot *pairmap_get(const pairmap *m, int32_t left, int32_t right)
{
    uint64_t key = pair_key(left, right);
    for (size_t j = pair_hash(key) & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        const pairmap_slot *s = &m->slots[j];
        if (s->key == key)
            return s;
        if (s->key == UINT64_MAX)
            return NULL;
    }
}
