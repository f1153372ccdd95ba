/* data.h: pre-tokenized datasets and micro-batches.
 *
 * A dataset is a .jsonl file, one sequence per line: {"input_ids": [...]}
 * with an optional "labels" of the same length (-100 = not trained on).
 * Micro-batches are right-padded to their longest row; targets are the
 * labels shifted by one, as Hugging Face's causal-LM loss does. */
#ifndef SHARDTUNE_DATA_H
#define SHARDTUNE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

enum { IGNORE_INDEX = -100 };

typedef struct dataset {
    size_t n_rows;
    int *len;           /* tokens per row after truncation */
    int32_t **ids;
    int32_t **labels;   /* NULL entry: labels = ids */
    int32_t **seg;      /* NULL entry: one document; else the document of each
                         * token (best-fit packing: positions restart at each
                         * document, attention stays inside it) */
} dataset;

/* Reads PATH; every row truncated to max_seq_len, every id checked to be in
 * [0, vocab_size).  Errors name the file and line. */
int dataset_load_jsonl(const char *path, int max_seq_len, int vocab_size, dataset *d, errbuf *e);
void dataset_free(dataset *d);

/* A host micro-batch, [batch * seq] each. */
typedef struct host_batch {
    int batch, seq;
    int32_t *ids, *targets, *pos;
    int32_t *seg;       /* NULL unless a row has documents (then padding is -1) */
    size_t n_targets;   /* targets != IGNORE_INDEX */
} host_batch;

/* Builds the micro-batch of rows[0..n-1], padding with pad_id. */
void dataset_batch(const dataset *d, const size_t *rows, int n, int pad_id, host_batch *hb);
void host_batch_free(host_batch *hb);

/* The data order of the training loop: micro-batch k of epoch e holds rows
 * perm_e[k*B .. (k+1)*B), perm_e a seeded permutation (rng.h). */
typedef struct sampler {
    size_t n_rows;
    int batch_size;
    uint64_t seed;
    int epoch;          /* of the current permutation */
    size_t *perm;
} sampler;

void sampler_init(sampler *s, size_t n_rows, int batch_size, uint64_t seed);
size_t sampler_n_batches(const sampler *s);
/* Rows of micro-batch k of epoch e (returns their count, <= batch_size). */
int sampler_batch(sampler *s, int epoch, size_t k, const size_t **rows);
void sampler_free(sampler *s);

#endif
