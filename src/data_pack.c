/* data_pack.c: packing documents into rows of max_seq_len tokens, as TRL's
 * pack_dataset does (see data.h), and truncation when not packing.
 *
 * Both strategies work on the whole split at once.  (TRL runs them through
 * datasets.map, 1,000 rows per call, so its wrapped packing leaves a short
 * block every 1,000 documents and its bins never mix documents of two such
 * batches; here there is one short block at the end and bins may take any
 * document.) */
#include <stdlib.h>
#include <string.h>

#include "data.h"

static int any_labels(const dataset *docs)
{
    for (size_t i = 0; i < docs->n_rows; i++)
        if (docs->labels[i])
            return 1;
    return 0;
}

void dataset_pack_wrapped(const dataset *docs, int seq, dataset *out)
{
    memset(out, 0, sizeof *out);
    size_t total = 0;
    for (size_t i = 0; i < docs->n_rows; i++)
        total += (size_t)docs->len[i];
    const int with_labels = any_labels(docs);
    size_t doc = 0;
    int at = 0; /* tokens of docs[doc] already taken */
    for (size_t start = 0; start < total; start += (size_t)seq) {
        int n = total - start < (size_t)seq ? (int)(total - start) : seq;
        int32_t *ids = xmalloc((size_t)n * sizeof *ids);
        int32_t *labels = with_labels ? xmalloc((size_t)n * sizeof *labels) : NULL;
        for (int k = 0; k < n;) {
            while (at == docs->len[doc]) {
                doc++;
                at = 0;
            }
            int take = docs->len[doc] - at < n - k ? docs->len[doc] - at : n - k;
            memcpy(ids + k, docs->ids[doc] + at, (size_t)take * sizeof *ids);
            if (labels)
                memcpy(labels + k, (docs->labels[doc] ? docs->labels[doc] : docs->ids[doc]) + at,
                       (size_t)take * sizeof *labels);
            k += take;
            at += take;
        }
        dataset_push(out, ids, labels, NULL, n);
    }
}

typedef struct doc_order {
    int len;
    size_t index;
} doc_order;

static int longest_first(const void *a, const void *b)
{
    const doc_order *x = a, *y = b;
    if (x->len != y->len)
        return x->len > y->len ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

typedef struct bin {
    size_t *docs;
    size_t n_docs, cap;
    int used;
    size_t next_same_space; /* FIFO of bins with equal space: index + 1, 0 = end */
} bin;

void dataset_pack_bfd(const dataset *docs, int seq, dataset *out)
{
    memset(out, 0, sizeof *out);
    const size_t n = docs->n_rows;
    doc_order *order = xmalloc((n ? n : 1) * sizeof *order);
    size_t n_order = 0;
    for (size_t i = 0; i < n; i++)
        if (docs->len[i] > 0) /* TRL drops empty sequences */
            order[n_order++] = (doc_order){docs->len[i] < seq ? docs->len[i] : seq, i};
    qsort(order, n_order, sizeof *order, longest_first);

    /* bins waiting with exactly s free tokens, oldest first: a FIFO per s,
     * as TRL's space_to_bin deques (a linked list through the bins) */
    size_t *head = xcalloc((size_t)seq + 1, sizeof *head), *tail = xcalloc((size_t)seq + 1, sizeof *tail);
    bin *bins = NULL;
    size_t n_bins = 0, cap_bins = 0;
    for (size_t k = 0; k < n_order; k++) {
        int len = order[k].len;
        /* best fit: the least space that still holds len (a full scan of
         * the spaces is O(seq) per document: cheap next to tokenizing) */
        int space = len;
        while (space < seq && !head[space])
            space++;
        size_t b;
        if (space < seq) {
            b = head[space] - 1;
            head[space] = bins[b].next_same_space;
            if (!head[space])
                tail[space] = 0;
        } else {
            if (n_bins == cap_bins) {
                cap_bins = cap_bins ? 2 * cap_bins : 64;
                bins = realloc(bins, cap_bins * sizeof *bins);
                if (!bins)
                    die(EXIT_FAILURE_RUN, "out of memory packing %zu documents", n);
            }
            b = n_bins++;
            memset(&bins[b], 0, sizeof bins[b]);
        }
        bin *bn = &bins[b];
        if (bn->n_docs == bn->cap) {
            bn->cap = bn->cap ? 2 * bn->cap : 4;
            bn->docs = realloc(bn->docs, bn->cap * sizeof *bn->docs);
            if (!bn->docs)
                die(EXIT_FAILURE_RUN, "out of memory packing %zu documents", n);
        }
        bn->docs[bn->n_docs++] = order[k].index;
        bn->used += len;
        int left = seq - bn->used;
        bn->next_same_space = 0;
        if (left > 0) {
            if (tail[left])
                bins[tail[left] - 1].next_same_space = b + 1;
            else
                head[left] = b + 1;
            tail[left] = b + 1;
        }
    }
    for (size_t b = 0; b < n_bins; b++) {
        const bin *bn = &bins[b];
        int32_t *ids = xmalloc((size_t)bn->used * sizeof *ids);
        int32_t *seg = xmalloc((size_t)bn->used * sizeof *seg);
        int32_t *labels = NULL;
        for (size_t j = 0; j < bn->n_docs && !labels; j++)
            if (docs->labels[bn->docs[j]])
                labels = xmalloc((size_t)bn->used * sizeof *labels);
        int at = 0;
        for (size_t j = 0; j < bn->n_docs; j++) {
            size_t d = bn->docs[j];
            int len = docs->len[d] < seq ? docs->len[d] : seq;
            memcpy(ids + at, docs->ids[d], (size_t)len * sizeof *ids);
            if (labels)
                memcpy(labels + at, docs->labels[d] ? docs->labels[d] : docs->ids[d], (size_t)len * sizeof *labels);
            for (int t = 0; t < len; t++)
                seg[at + t] = (int32_t)j;
            at += len;
        }
        dataset_push(out, ids, labels, seg, bn->used);
        free(bn->docs);
    }
    free(bins);
    free(head);
    free(tail);
    free(order);
}

void dataset_truncate(dataset *d, int seq)
{
    for (size_t i = 0; i < d->n_rows; i++)
        if (d->len[i] > seq)
            d->len[i] = seq; /* the arrays keep their tail; only len counts */
}

