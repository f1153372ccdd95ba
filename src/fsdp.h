/* fsdp.h: fully sharded data parallelism over the model's units.
 *
 * Each unit's frozen storage bytes and trainable fp32 tensors are padded to
 * a multiple of the shard-group size and split into equal contiguous
 * shards; a rank holds one shard of each (plus its gradient and AdamW
 * moments).  Before a unit computes, its shards are all-gathered (the frozen
 * bytes widened to fp32 on the way); after, the gathered copy is released as
 * the strategy says; only trainable gradients are reduce-scattered.  With a
 * shard group of one rank (NO_SHARD, or a single process) the shard is the
 * full buffer and nothing is gathered. */
#ifndef SHARDTUNE_FSDP_H
#define SHARDTUNE_FSDP_H

#include <stddef.h>
#include <stdint.h>

#include "accel_config.h"
#include "backend.h"
#include "comm.h"
#include "model.h"

typedef struct fsdp_unit fsdp_unit; /* private to fsdp.c */

typedef struct fsdp {
    model *m;
    backend *be;
    comm *cm;
    accel_config opt;
    int shard_size, shard_index;  /* the shard group */
    int replica_size;
    fsdp_unit *units;
    /* the flat ranges AdamW and clipping work on: this rank's shards */
    int n_ranges;
    float **param_shards, **grad_shards;
    size_t *shard_elems;
    /* of the base weights as loaded (tensor table and bytes), the same at
     * any world size: checkpoints refuse to resume on other weights */
    uint64_t fingerprint;
} fsdp;

/* The communicator layout a strategy needs. */
comm_layout fsdp_comm_layout(fsdp_strategy s);

/* Sizes and allocates this rank's shards for every unit of m. */
void fsdp_init(fsdp *f, model *m, backend *be, comm *cm, const accel_config *opt);
void fsdp_free(fsdp *f);

/* Fills the frozen shards from the model directory: with
 * cpu_ram_efficient_loading each rank reads only its own byte ranges of the
 * safetensors files (of a 4-bit weight quantized on load, the values behind
 * its bytes; the block state is agreed over the shard group); without, rank
 * 0 reads each unit and broadcasts it.  Logs one line: each rank's bytes
 * read and peak resident memory.  With sync_module_states, ranks then check that they read
 * the same files and that replicas of a shard hold the same bytes.  Units
 * with a resized vocabulary or embedding layers from the adapter (may be
 * NULL) are built whole on each rank (one unit at a time). */
int fsdp_load_frozen(fsdp *f, const char *model_dir, const safetensors *adapter, errbuf *e);
/* Binds the units whose shard is their whole buffer (a one-rank shard
 * group) for good; fsdp_load_frozen does it, plans call it alone. */
void fsdp_bind_resident(fsdp *f);
/* Fills the trainable shards: LoRA's initialisation from seed (DoRA's
 * magnitudes from the gathered weights: collective; modules_to_save copies
 * of model_dir's tensors), or the tensors of a PEFT adapter's weights when
 * adapter is not NULL. */
int fsdp_load_trainable(fsdp *f, const char *model_dir, uint64_t seed, const safetensors *adapter, errbuf *e);

/* One micro-batch through every unit with the strategy's gather / release
 * / prefetch schedule; adapter gradients are reduce-scattered into this
 * rank's gradient shards (accumulating).  Returns this rank's loss sum. */
double fsdp_forward_backward(fsdp *f, const model_batch *b, float grad_scale, int do_backward, float *logits);
void fsdp_zero_grads(fsdp *f);
/* The forward half of the schedule with any per-unit computation (fn is
 * called with the unit bound; generation uses it): gather, prefetch, call,
 * release.  keep_for_backward keeps what SHARD_GRAD_OP keeps. */
typedef void (*fsdp_unit_fn)(model *m, int ui, void *arg);
void fsdp_forward_each(fsdp *f, fsdp_unit_fn fn, void *arg, int keep_for_backward);
/* Completes gradient reduction (outstanding reduce-scatters, then the
 * replica all-reduce) and returns the global L2 norm of the gradients. */
double fsdp_finish_grads(fsdp *f);
/* All-gathers unit ui's trainable tensors (or, with gradients, their
 * gradients) into host_train on every rank. */
void fsdp_gather_trainable(fsdp *f, int ui, int gradients, float *host_train);

/* Collects frozen tensor p of unit ui in its storage format into host_out
 * on every rank (for saving the resized embedding layers). */
void fsdp_gather_frozen_tensor(fsdp *f, int ui, const param_entry *p, void *host_out);

#endif
