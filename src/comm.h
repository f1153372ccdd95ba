/* comm.h: the collectives interface.  Model and FSDP code call only this;
 * comm_mpi.c implements it with MPI (CPU runs and tests), cuda/comm_nccl.c
 * with NCCL for device buffers (GPU runs).
 *
 * Three groups: the world, the shard group (ranks that split a unit's flat
 * buffer between them) and the replica group (ranks that hold the same
 * shard: across nodes with HYBRID_SHARD, the whole world with NO_SHARD).
 * Every collective can be issued asynchronously; it then returns a request
 * to wait on, and runs while the caller computes. */
#ifndef SHARDTUNE_COMM_H
#define SHARDTUNE_COMM_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

typedef enum comm_group { COMM_WORLD, COMM_SHARD, COMM_REPLICA, COMM_N_GROUPS } comm_group;

typedef enum comm_op_kind {
    COMM_ALL_GATHER, COMM_REDUCE_SCATTER, COMM_ALL_REDUCE, COMM_BROADCAST, COMM_N_OPS
} comm_op_kind;

typedef enum comm_dtype { COMM_F32, COMM_F64, COMM_U64, COMM_BYTE } comm_dtype;

/* How the world splits into shard and replica groups. */
typedef enum comm_layout {
    COMM_SHARD_WORLD,   /* FULL_SHARD, SHARD_GRAD_OP: one shard group */
    COMM_SHARD_NONE,    /* NO_SHARD: every rank a full replica */
    COMM_SHARD_NODE,    /* HYBRID_SHARD: shard within a node, replicate across */
} comm_layout;

typedef struct comm_request comm_request;
typedef struct comm comm;

struct comm {
    int rank[COMM_N_GROUPS], size[COMM_N_GROUPS];
    /* The nodes the world found: groups of ranks sharing memory (or
     * SHARDTUNE_RANKS_PER_NODE's blocks), and the fewest and most ranks
     * on one of them.  What the run reports, not accelerate's num_machines. */
    int n_nodes, node_ranks_min, node_ranks_max;
    /* traffic and overlap, for the end-of-run summary */
    size_t bytes_sent[COMM_N_OPS];  /* algorithmic bytes this rank sent (ring) */
    size_t n_calls[COMM_N_OPS];
    double async_busy_seconds[COMM_N_OPS]; /* time asynchronous collectives ran */
    double async_wait_seconds[COMM_N_OPS]; /* time the caller blocked waiting on them */
    /* 1 when waiting does not block the caller (NCCL: the compute stream
     * waits, the host does not), so the hidden fraction is not measured */
    int overlap_unmeasured;
    void *impl;

    /* The buffers must stay valid until the request completes.  async = 0
     * runs the collective to completion (in order with queued ones) and
     * returns NULL. */
    comm_request *(*all_gather)(comm *c, comm_group g, const void *send, void *recv,
                                size_t n_bytes_per_rank, int async);
    /* recv[n] = sum over the group of send[rank * n .. (rank+1) * n) */
    comm_request *(*reduce_scatter)(comm *c, comm_group g, const float *send, float *recv,
                                    size_t n_elems_per_rank, int async);
    /* in-place sum */
    comm_request *(*all_reduce)(comm *c, comm_group g, void *buf, size_t n_elems, comm_dtype dt,
                                int async);
    comm_request *(*broadcast)(comm *c, comm_group g, void *buf, size_t n_bytes, int root, int async);
    void (*wait)(comm *c, comm_request *req); /* NULL is a no-op */
    void (*barrier)(comm *c);
    void (*destroy)(comm *c);
};

/* Builds the groups for the layout.  With COMM_SHARD_NODE the node is the
 * set of ranks sharing memory (MPI_Comm_split_type), unless the environment
 * variable SHARDTUNE_RANKS_PER_NODE fixes it (tests run two "nodes" on one
 * machine).  async_thread = 1 starts the communication thread. */
comm *comm_mpi_create(comm_layout layout, int async_thread, errbuf *e);

/* A communicator that moves no data: group sizes as a run of `world` ranks
 * (rank 0's view) would have, every collective only counted.  For
 * `shardtune plan`. */
comm *comm_sim_create(comm_layout layout, int world, int ranks_per_node);

/* Adds one collective to c's traffic count: n_bytes is the per-rank
 * payload (gather, reduce-scatter, broadcast) or the buffer (all-reduce);
 * the count is what a ring algorithm sends from this rank. */
/* "2 node(s) x 4" (or "3 node(s) of 1 to 4" ranks): where the
 * world runs, for the run's summary and the plan. */
void comm_describe_nodes(const comm *c, char *buf, size_t n_bytes);

void comm_count_sent(comm *c, comm_op_kind kind, comm_group g, size_t n_bytes, int root);

/* Bytes of one element of dt. */
size_t comm_dtype_size(comm_dtype dt);
/* The per-rank payload comm_count_sent takes for a collective of n: bytes
 * per rank (all-gather, broadcast), floats per rank (reduce-scatter) or
 * elements of dt (all-reduce). */
size_t comm_payload_bytes(comm_op_kind kind, size_t n, comm_dtype dt);

/* Fraction of asynchronous collective time hidden behind compute, for one
 * kind of collective (or all of them with COMM_N_OPS). */
double comm_hidden_fraction(const comm *c, comm_op_kind kind);
const char *comm_op_name(comm_op_kind k);

#endif
