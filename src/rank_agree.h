/* rank_agree.h: what every rank must agree on before training starts, and
 * the collective check that names the first rank that does not.  Ranks
 * started with other flags, another accelerate configuration, other model
 * files (a node with a stale copy) or other data would otherwise train
 * apart silently, or hang in a collective of another size. */
#ifndef SHARDTUNE_RANK_AGREE_H
#define SHARDTUNE_RANK_AGREE_H

#include <stdint.h>

#include "comm.h"
#include "data.h"
#include "log.h"

/* The files of a model directory, in three hashes (names, sizes and the
 * first MiB of each file, summed so that the listing order does not count):
 * [0] config.json, [1] the weights (*.safetensors and their index), [2]
 * every other file (tokenizer, chat template, ...).  A missing directory
 * hashes as empty. */
void rank_agree_dir_files(const char *dir, uint64_t out[3]);

/* The tokenized rows (lengths, ids, labels). */
uint64_t rank_agree_dataset(const dataset *d);

/* Collective over the world: every rank's mine[i] must equal rank 0's.  On
 * the first that does not: -1 on every rank, e = "rank R WHAT[i]" (WHAT
 * says "than rank 0" where it reads best). */
int rank_agree_check(comm *cm, const uint64_t *mine, int n, const char *const *what, errbuf *e);

#endif
