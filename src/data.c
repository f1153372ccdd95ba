/* data.c: the pre-tokenized .jsonl reader, rows, micro-batches and the
 * sampler (see data.h). */
#include "data.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data_internal.h"
#include "rng.h"

static int read_int_array(json_t *arr, const char *what, const char *path, size_t line, int max_len,
                          int vocab_size, int allow_ignore, int32_t **out, int *n_out, errbuf *e)
{
    if (!json_is_array(arr))
        return err_set(e, "%s:%zu: \"%s\" is not a list of integers", path, line, what);
    size_t n = json_array_size(arr);
    if (n == 0)
        return err_set(e, "%s:%zu: \"%s\" is empty", path, line, what);
    if (n > (size_t)max_len)
        n = (size_t)max_len;
    int32_t *v = xmalloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(arr, i);
        if (!json_is_integer(x)) {
            free(v);
            return err_set(e, "%s:%zu: \"%s\"[%zu] is not an integer", path, line, what, i);
        }
        json_int_t id = json_integer_value(x);
        if (!(allow_ignore && id == IGNORE_INDEX) && (id < 0 || id >= vocab_size)) {
            free(v);
            return err_set(e, "%s:%zu: \"%s\"[%zu] = %lld is outside the vocabulary [0, %d)", path, line,
                           what, i, (long long)id, vocab_size);
        }
        v[i] = (int32_t)id;
    }
    *out = v;
    *n_out = (int)n;
    return 0;
}

int data_row_ids(json_t *row, const char *path, size_t line, int max_len, int vocab_size, int32_t **ids,
                 int32_t **labels, int *n, errbuf *e)
{
    json_t *jids = json_object_get(row, "input_ids");
    int32_t *idv = NULL, *lab = NULL;
    int n_ids = 0, n_lab = 0;
    if (read_int_array(jids, "input_ids", path, line, max_len, vocab_size, 0, &idv, &n_ids, e) != 0)
        return -1;
    json_t *jlabels = json_object_get(row, "labels");
    if (jlabels) {
        if (json_array_size(jlabels) != json_array_size(jids)) {
            free(idv);
            return err_set(e, "%s:%zu: \"labels\" has %zu entries but \"input_ids\" has %zu", path, line,
                           json_array_size(jlabels), json_array_size(jids));
        }
        if (read_int_array(jlabels, "labels", path, line, max_len, vocab_size, 1, &lab, &n_lab, e) != 0) {
            free(idv);
            return -1;
        }
    }
    *ids = idv;
    *labels = lab;
    *n = n_ids;
    return 0;
}

void dataset_push(dataset *d, int32_t *ids, int32_t *labels, int32_t *seg, int len)
{
    size_t i = d->n_rows++;
    if (d->n_rows > d->cap_rows) {
        d->cap_rows = d->cap_rows ? 2 * d->cap_rows : 64;
        d->len = realloc(d->len, d->cap_rows * sizeof *d->len);
        d->ids = realloc(d->ids, d->cap_rows * sizeof *d->ids);
        d->labels = realloc(d->labels, d->cap_rows * sizeof *d->labels);
        if (!d->len || !d->ids || !d->labels)
            die(EXIT_FAILURE_RUN, "out of memory growing a dataset to %zu rows", d->cap_rows);
        if (d->seg || seg) {
            size_t old = d->seg ? i : 0;
            d->seg = realloc(d->seg, d->cap_rows * sizeof *d->seg);
            if (!d->seg)
                die(EXIT_FAILURE_RUN, "out of memory growing a dataset to %zu rows", d->cap_rows);
            memset(d->seg + old, 0, (d->cap_rows - old) * sizeof *d->seg);
        }
    } else if (seg && !d->seg) {
        d->seg = xcalloc(d->cap_rows, sizeof *d->seg);
    }
    d->len[i] = len;
    d->ids[i] = ids;
    d->labels[i] = labels;
    if (d->seg)
        d->seg[i] = seg;
}

void dataset_free(dataset *d)
{
    for (size_t i = 0; i < d->n_rows; i++) {
        free(d->ids[i]);
        free(d->labels[i]);
        if (d->seg)
            free(d->seg[i]);
    }
    free(d->len);
    free(d->ids);
    free(d->labels);
    free(d->seg);
    memset(d, 0, sizeof *d);
}

void dataset_batch(const dataset *d, const size_t *rows, int n, int pad_id, host_batch *hb)
{
    int seq = 1;
    for (int i = 0; i < n; i++)
        if (d->len[rows[i]] > seq)
            seq = d->len[rows[i]];
    size_t total = (size_t)n * seq;
    hb->batch = n;
    hb->seq = seq;
    hb->ids = xmalloc(total * sizeof(int32_t));
    hb->targets = xmalloc(total * sizeof(int32_t));
    hb->pos = xmalloc(total * sizeof(int32_t));
    hb->seg = NULL;
    for (int b = 0; b < n && d->seg && !hb->seg; b++)
        if (d->seg[rows[b]])
            hb->seg = xmalloc(total * sizeof(int32_t));
    hb->n_targets = 0;
    for (int b = 0; b < n; b++) {
        size_t r = rows[b];
        int len = d->len[r];
        const int32_t *labels = d->labels[r] ? d->labels[r] : d->ids[r];
        const int32_t *seg = d->seg ? d->seg[r] : NULL;
        int doc_start = 0;
        for (int t = 0; t < seq; t++) {
            size_t k = (size_t)b * seq + t;
            hb->ids[k] = t < len ? d->ids[r][t] : pad_id;
            if (seg && t > 0 && t < len && seg[t] != seg[t - 1])
                doc_start = t; /* a new document: positions restart */
            hb->pos[k] = t < len ? t - doc_start : t;
            if (hb->seg)
                hb->seg[k] = t >= len ? -1 : seg ? seg[t] : 0;
            /* position t predicts token t+1, never across a document boundary */
            int same_doc = !seg || (t + 1 < len && seg[t + 1] == seg[t]);
            hb->targets[k] = t + 1 < len && same_doc ? labels[t + 1] : IGNORE_INDEX;
            if (hb->targets[k] != IGNORE_INDEX)
                hb->n_targets++;
        }
    }
}

void host_batch_free(host_batch *hb)
{
    free(hb->ids);
    free(hb->targets);
    free(hb->pos);
    free(hb->seg);
    memset(hb, 0, sizeof *hb);
}

void sampler_init(sampler *s, size_t n_rows, int batch_size, uint64_t seed)
{
    s->n_rows = n_rows;
    s->batch_size = batch_size;
    s->seed = seed;
    s->epoch = -1;
    s->perm = xmalloc(n_rows * sizeof *s->perm);
}

size_t sampler_n_batches(const sampler *s) { return (s->n_rows + (size_t)s->batch_size - 1) / (size_t)s->batch_size; }

int sampler_batch(sampler *s, int epoch, size_t k, const size_t **rows)
{
    if (s->epoch != epoch) {
        rng r;
        rng_init(&r, s->seed, (uint64_t)epoch);
        rng_permutation(&r, s->perm, s->n_rows);
        s->epoch = epoch;
    }
    size_t lo = k * (size_t)s->batch_size;
    size_t hi = lo + (size_t)s->batch_size < s->n_rows ? lo + (size_t)s->batch_size : s->n_rows;
    *rows = s->perm + lo;
    return (int)(hi - lo);
}

void sampler_free(sampler *s)
{
    free(s->perm);
    s->perm = NULL;
}

long sampler_step_micro(size_t step_in_epoch, int G, int world, int rank, int t, size_t n_batches)
{
    size_t per_step = (size_t)G * (size_t)world;
    size_t k0 = step_in_epoch * per_step;
    size_t k1 = k0 + per_step < n_batches ? k0 + per_step : n_batches;
    size_t k = k0 + (size_t)rank + (size_t)t * (size_t)world;
    return k < k1 ? (long)k : -1;
}
