/* checkpoint.h: training checkpoints in one HDF5 file, written and read by
 * every rank at once with collective MPI-IO; readable at any world size.
 * doc/checkpoint-format.md specifies the layout (format version 1). */
#ifndef SHARDTUNE_CHECKPOINT_H
#define SHARDTUNE_CHECKPOINT_H

#include <stdint.h>

#include "fsdp.h"
#include "optim.h"

enum { CKPT_FORMAT_VERSION = 1 };

typedef enum ckpt_layout { CKPT_SHARDED, CKPT_FULL } ckpt_layout;

typedef struct ckpt_meta {
    ckpt_layout layout;
    int global_step;       /* optimizer steps done */
    int epoch;             /* epochs begun: global_step / steps_per_epoch */
    int steps_per_epoch;
    int adam_step;
    int64_t seed;          /* the RNG streams are counter-based on (seed, epoch, step) */
    int world_size;        /* of the run that wrote it (information only) */
    uint64_t fingerprint;  /* of the base weights */
} ckpt_meta;

/* Writes PATH.tmp with every rank's shards of the trainable tensors and
 * AdamW moments (SHARDED: per unit flat buffers; FULL: one dataset per
 * tensor under PEFT's names), each dataset with a checksum, then, when all
 * of it is on disk, renames it to PATH.  config_json: the run's flags. */
int ckpt_save(fsdp *f, const optimizer *o, const ckpt_meta *meta, const char *config_json, const char *path,
              errbuf *e);
/* Reads PATH (either layout, any world size) into the shards, verifying
 * format, base-model fingerprint and every checksum; fills meta. */
int ckpt_load(fsdp *f, optimizer *o, ckpt_meta *meta, const char *path, errbuf *e);

/* The flags of the run that wrote PATH (a JSON list, malloc'ed). */
int ckpt_read_config(const char *path, char **config_json, errbuf *e);

/* Rank 0 only: points DIR/latest at NAME (atomically), and removes the
 * oldest checkpoint-*.h5 of DIR beyond `limit` (0: keep all). */
int ckpt_mark_latest(const char *dir, const char *name, int limit, errbuf *e);
/* DIR/latest's checkpoint path into buf; -1 and e when there is none. */
int ckpt_resolve_latest(const char *dir, char *buf, size_t n_bytes, errbuf *e);

#endif
