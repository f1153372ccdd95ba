/* gemm.c: matrix products through oneDNN's matmul primitive (see gemm.h).
 *
 * oneDNN's primitives are planned for one shape: creating one costs far more
 * than running it, so each thread keeps the primitives it made, keyed by
 * precision, shape, strides, alpha and beta, with the memory objects that
 * carry the pointers of each call.  The step asks for a few dozen shapes,
 * the same ones every step.  Per-thread tables need no lock on the hot path
 * (attention runs products from every OpenMP thread at once); a global list
 * of them lets gemm_release free everything.
 *
 * bf16: the inputs are rounded to bf16 (nearest even, as torch and cuBLAS
 * round) into per-thread scratch, then a bf16 x bf16 -> fp32 matmul
 * accumulates in fp32. */
#include "gemm.h"

#include <dnnl.h>
#include <omp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"
#include "gemm_thin.h"
#include "log.h"

#define DNNL_CHECK(call)                                                                                   \
    do {                                                                                                    \
        dnnl_status_t st_ = (call);                                                                         \
        if (st_ != dnnl_success)                                                                            \
            die(EXIT_FAILURE_RUN, "gemm: %s failed at %s:%d: oneDNN status %d", #call, __FILE__, __LINE__, \
                (int)st_);                                                                                  \
    } while (0)

typedef struct gemm_key {
    int prec, b_bf16, trans_a, trans_b, m, n, k, lda, ldb, ldc;
    float alpha, beta;
} gemm_key;

typedef struct gemm_entry {
    gemm_key key;
    dnnl_primitive_t prim;
    dnnl_memory_t src, wei, dst, scratch;
} gemm_entry;

/* One thread's table: open addressing, grown at half full. */
typedef struct gemm_table {
    gemm_entry *slots;
    size_t n_slots, n_used;
    dnnl_stream_t stream;
    uint16_t *a16, *b16; /* bf16 copies of the inputs */
    size_t a16_elems, b16_elems;
    void *scratch; /* the primitives' scratchpad, shared: one runs at a time per thread */
    size_t scratch_bytes;
    struct gemm_table *next;
} gemm_table;

static pthread_once_t engine_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t engine;
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;
static gemm_table *tables;
static unsigned tables_generation; /* bumped by gemm_release: older tables are gone */
static __thread gemm_table *my_table;
static __thread unsigned my_generation;

static void engine_create(void) { DNNL_CHECK(dnnl_engine_create(&engine, dnnl_cpu, 0)); }

static gemm_table *table_get(void)
{
    if (my_table && my_generation == __atomic_load_n(&tables_generation, __ATOMIC_ACQUIRE))
        return my_table;
    pthread_once(&engine_once, engine_create);
    gemm_table *t = xcalloc(1, sizeof *t);
    t->n_slots = 64;
    t->slots = xcalloc(t->n_slots, sizeof *t->slots);
    DNNL_CHECK(dnnl_stream_create(&t->stream, engine, dnnl_stream_default_flags));
    pthread_mutex_lock(&tables_lock);
    t->next = tables;
    tables = t;
    my_generation = tables_generation;
    pthread_mutex_unlock(&tables_lock);
    my_table = t;
    return t;
}

static uint64_t key_hash(const gemm_key *k)
{
    const unsigned char *p = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *k; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

static gemm_entry *table_slot(gemm_entry *slots, size_t n_slots, const gemm_key *k)
{
    size_t i = key_hash(k) & (n_slots - 1);
    while (slots[i].prim && memcmp(&slots[i].key, k, sizeof *k) != 0)
        i = (i + 1) & (n_slots - 1);
    return &slots[i];
}

static void table_grow(gemm_table *t)
{
    size_t n = t->n_slots * 2;
    gemm_entry *slots = xcalloc(n, sizeof *slots);
    for (size_t i = 0; i < t->n_slots; i++)
        if (t->slots[i].prim)
            *table_slot(slots, n, &t->slots[i].key) = t->slots[i];
    free(t->slots);
    t->slots = slots;
    t->n_slots = n;
}

/* A row-major [rows, cols] matrix with row stride ld, seen as op(X):
 * transposed means the logical [cols, rows] matrix is X^T. */
static void matrix_desc(dnnl_memory_desc_t *md, int trans, int rows, int cols, int ld, dnnl_data_type_t dt)
{
    dnnl_dims_t dims = {rows, cols}, strides = {ld, 1};
    if (trans) { /* logical [rows, cols] = stored [cols, rows]^T */
        strides[0] = 1;
        strides[1] = ld;
    }
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(md, 2, dims, dt, strides));
}

static void entry_create(gemm_table *t, gemm_entry *e, const gemm_key *k)
{
    const dnnl_data_type_t in_dt = k->prec == GEMM_BF16 ? dnnl_bf16 : dnnl_f32;
    dnnl_memory_desc_t a_md, b_md, c_md;
    matrix_desc(&a_md, k->trans_a, k->m, k->k, k->lda, in_dt);
    matrix_desc(&b_md, k->trans_b, k->k, k->n, k->ldb, in_dt);
    matrix_desc(&c_md, 0, k->m, k->n, k->ldc, dnnl_f32);
    dnnl_matmul_desc_t desc;
    DNNL_CHECK(dnnl_matmul_desc_init(&desc, &a_md, &b_md, NULL, &c_md));
    dnnl_primitive_attr_t attr;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr));
    /* the library's own scratchpad is allocated and freed (page faults
     * and all) on every call: ours is kept */
    DNNL_CHECK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    if (k->alpha != 1.0f)
        DNNL_CHECK(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &k->alpha));
    if (k->beta != 0.0f) { /* C = alpha AB + beta C */
        dnnl_post_ops_t ops;
        DNNL_CHECK(dnnl_post_ops_create(&ops));
        DNNL_CHECK(dnnl_post_ops_append_sum(ops, k->beta));
        DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, ops));
        DNNL_CHECK(dnnl_post_ops_destroy(ops));
    }
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL));
    DNNL_CHECK(dnnl_primitive_attr_destroy(attr));
    DNNL_CHECK(dnnl_primitive_create(&e->prim, pd));
    const dnnl_memory_desc_t *scratch_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    const size_t scratch_bytes = dnnl_memory_desc_get_size(scratch_md);
    if (scratch_bytes > t->scratch_bytes) {
        free(t->scratch);
        if (posix_memalign(&t->scratch, 64, scratch_bytes) != 0)
            die(EXIT_FAILURE_RUN, "gemm: out of memory for a %zu-byte scratchpad", scratch_bytes);
        t->scratch_bytes = scratch_bytes;
    }
    DNNL_CHECK(dnnl_memory_create(&e->scratch, scratch_md, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_primitive_desc_destroy(pd));
    DNNL_CHECK(dnnl_memory_create(&e->src, &a_md, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->wei, &b_md, engine, DNNL_MEMORY_NONE));
    DNNL_CHECK(dnnl_memory_create(&e->dst, &c_md, engine, DNNL_MEMORY_NONE));
    e->key = *k;
}

static gemm_entry *entry_get(gemm_table *t, const gemm_key *k)
{
    gemm_entry *e = table_slot(t->slots, t->n_slots, k);
    if (e->prim)
        return e;
    if (2 * (t->n_used + 1) > t->n_slots) {
        table_grow(t);
        e = table_slot(t->slots, t->n_slots, k);
    }
    entry_create(t, e, k);
    t->n_used++;
    return e;
}

static void run(gemm_table *t, gemm_entry *e, const void *a, const void *b, float *c)
{
    DNNL_CHECK(dnnl_memory_set_data_handle(e->src, (void *)a));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->wei, (void *)b));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->dst, c));
    DNNL_CHECK(dnnl_memory_set_data_handle(e->scratch, t->scratch));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->src},
                               {DNNL_ARG_WEIGHTS, e->wei},
                               {DNNL_ARG_DST, e->dst},
                               {DNNL_ARG_SCRATCHPAD, e->scratch}};
    DNNL_CHECK(dnnl_primitive_execute(e->prim, t->stream, 4, args));
}

/* ---- bf16 rounding of the inputs ---- */

/* bf16_from_f32_bits over an array (denormals kept, unlike
 * VCVTNEPS2BF16's); built for AVX-512F,
 * AVX2 and any x86-64 CPU, picked by CPU features at load time ("arch="
 * clones would dispatch on the CPU model, and never on AMD's). */
__attribute__((target_clones("avx512f", "avx2", "default"))) static void round_bf16(uint16_t *restrict d,
                                                                                   const uint32_t *restrict s,
                                                                                   size_t n)
{
#pragma omp simd
    for (size_t j = 0; j < n; j++)
        d[j] = bf16_from_f32_bits(s[j]);
}

void gemm_round_rows_bf16_strided(uint16_t *dst, size_t ld_dst, const float *src, size_t ld, size_t rows,
                                  size_t cols)
{
    const int par = !omp_in_parallel() && rows * cols >= ((size_t)1 << 16);
#pragma omp parallel for schedule(static) if (par)
    for (size_t r = 0; r < rows; r++)
        round_bf16(dst + r * ld_dst, (const uint32_t *)(src + r * ld), cols);
}

void gemm_round_rows_bf16(uint16_t *dst, const float *src, size_t rows, size_t cols, size_t ld)
{
    gemm_round_rows_bf16_strided(dst, cols, src, ld, rows, cols);
}

static uint16_t *scratch16(uint16_t **buf, size_t *have, size_t n_elems)
{
    if (*have < n_elems) {
        free(*buf);
        *buf = xmalloc(n_elems * sizeof **buf);
        *have = n_elems;
    }
    return *buf;
}

/* The stored matrix of op(X) (logical [rows, cols]) as bf16, packed: the
 * copy keeps the orientation, so its row stride is the stored width. */
static const uint16_t *to_bf16(uint16_t **buf, size_t *have, int trans, int rows, int cols, const float *x, int ld,
                               int *ld16)
{
    const int st_rows = trans ? cols : rows, st_cols = trans ? rows : cols;
    uint16_t *d = scratch16(buf, have, (size_t)st_rows * st_cols);
    gemm_round_rows_bf16(d, x, (size_t)st_rows, (size_t)st_cols, (size_t)ld);
    *ld16 = st_cols;
    return d;
}

/* ---- entry points ---- */

void gemm_round_bf16(uint16_t *dst, const float *src, size_t n_elems)
{
    enum { CHUNK = 1 << 16 };
    const size_t n_chunks = (n_elems + CHUNK - 1) / CHUNK;
#pragma omp parallel for schedule(static) if (!omp_in_parallel() && n_chunks > 1)
    for (size_t c = 0; c < n_chunks; c++) {
        size_t lo = c * CHUNK, n = n_elems - lo < CHUNK ? n_elems - lo : CHUNK;
        round_bf16(dst + lo, (const uint32_t *)(src + lo), n);
    }
}

void gemm(gemm_precision prec, int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
          const float *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) { /* an empty sum: C = beta C */
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
                c[(size_t)i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[(size_t)i * ldc + j];
        return;
    }
    if (gemm_thin_applies(m, n, k)) { /* an adapter's products: see gemm_thin.h */
        gemm_thin(prec, trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    gemm_table *t = table_get();
    const void *a_in = a, *b_in = b;
    if (prec == GEMM_BF16) {
        a_in = to_bf16(&t->a16, &t->a16_elems, trans_a, m, k, a, lda, &lda);
        b_in = to_bf16(&t->b16, &t->b16_elems, trans_b, k, n, b, ldb, &ldb);
    }
    gemm_key key = {prec, 0, trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta};
    run(t, entry_get(t, &key), a_in, b_in, c);
}

void gemm_bf16_b(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda,
                 const uint16_t *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0 || k <= 0)
        die(EXIT_FAILURE_RUN, "gemm_bf16_b: empty product %dx%dx%d", m, n, k);
    gemm_table *t = table_get();
    const uint16_t *a16 = to_bf16(&t->a16, &t->a16_elems, trans_a, m, k, a, lda, &lda);
    gemm_key key = {GEMM_BF16, 1, trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta};
    run(t, entry_get(t, &key), a16, b, c);
}

void gemm_bf16_b_cat(int trans_b, int m, int n, int k, const float *a, int lda, int k2, const float *a2, int lda2,
                     const uint16_t *b, int ldb, float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0 || k <= 0 || k2 < 0)
        die(EXIT_FAILURE_RUN, "gemm_bf16_b_cat: empty product %dx%dx(%d+%d)", m, n, k, k2);
    gemm_table *t = table_get();
    const int kk = k + k2;
    uint16_t *a16 = scratch16(&t->a16, &t->a16_elems, (size_t)m * kk);
    gemm_round_rows_bf16_strided(a16, (size_t)kk, a, (size_t)lda, (size_t)m, (size_t)k);
    if (k2)
        gemm_round_rows_bf16_strided(a16 + k, (size_t)kk, a2, (size_t)lda2, (size_t)m, (size_t)k2);
    gemm_key key = {GEMM_BF16, 1, 0, trans_b, m, n, kk, kk, ldb, ldc, 1.0f, beta};
    run(t, entry_get(t, &key), a16, b, c);
}

int gemm_cpu_has_bf16(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
}

void gemm_library_version(char *buf, size_t n_bytes)
{
    const dnnl_version_t *v = dnnl_version();
    static const char *const isa[] = {"avx512_core_amx", "avx512_core_bf16", "avx512_core", "avx2", "sse41"};
    static const dnnl_cpu_isa_t isa_id[] = {dnnl_cpu_isa_avx512_core_amx, dnnl_cpu_isa_avx512_core_bf16,
                                            dnnl_cpu_isa_avx512_core, dnnl_cpu_isa_avx2, dnnl_cpu_isa_sse41};
    const dnnl_cpu_isa_t eff = dnnl_get_effective_cpu_isa();
    const char *name = "other";
    for (size_t i = 0; i < sizeof isa / sizeof isa[0]; i++)
        if ((eff & isa_id[i]) == isa_id[i]) {
            name = isa[i];
            break;
        }
    snprintf(buf, n_bytes, "oneDNN %d.%d.%d (%s; up to %s)", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other threading", name);
}

void gemm_release(void)
{
    pthread_mutex_lock(&tables_lock);
    for (gemm_table *t = tables, *next; t; t = next) {
        next = t->next;
        for (size_t i = 0; i < t->n_slots; i++) {
            gemm_entry *e = &t->slots[i];
            if (!e->prim)
                continue;
            dnnl_primitive_destroy(e->prim);
            dnnl_memory_destroy(e->src);
            dnnl_memory_destroy(e->wei);
            dnnl_memory_destroy(e->dst);
            dnnl_memory_destroy(e->scratch);
        }
        free(t->slots);
        free(t->a16);
        free(t->b16);
        free(t->scratch);
        dnnl_stream_destroy(t->stream);
        free(t);
    }
    tables = NULL;
    __atomic_add_fetch(&tables_generation, 1, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&tables_lock);
    my_table = NULL;
}
