/* comm_sim.c: a communicator that only counts (see comm_sim_create in
 * comm.h).  The FSDP schedule runs through it unchanged, so the traffic a
 * plan reports is the traffic the real schedule would send. */
#include "comm.h"

#include <stdlib.h>

static comm_request *sim_all_gather(comm *c, comm_group g, const void *send, void *recv, size_t n, int async)
{
    comm_count_sent(c, COMM_ALL_GATHER, g, n, 0);
    return NULL;
}

static comm_request *sim_reduce_scatter(comm *c, comm_group g, const float *send, float *recv, size_t n, int async)
{
    comm_count_sent(c, COMM_REDUCE_SCATTER, g, comm_payload_bytes(COMM_REDUCE_SCATTER, n, COMM_F32), 0);
    return NULL;
}

static comm_request *sim_all_reduce(comm *c, comm_group g, void *buf, size_t n, comm_dtype dt, int async)
{
    comm_count_sent(c, COMM_ALL_REDUCE, g, comm_payload_bytes(COMM_ALL_REDUCE, n, dt), 0);
    return NULL;
}

static comm_request *sim_broadcast(comm *c, comm_group g, void *buf, size_t n, int root, int async)
{
    comm_count_sent(c, COMM_BROADCAST, g, n, root);
    return NULL;
}

static void sim_wait(comm *c, comm_request *r) {}
static void sim_barrier(comm *c) {}
static void sim_destroy(comm *c) { free(c); }

comm *comm_sim_create(comm_layout layout, int world, int ranks_per_node)
{
    comm *c = xcalloc(1, sizeof *c);
    int node = ranks_per_node > 0 ? ranks_per_node : world;
    c->size[COMM_WORLD] = world;
    c->size[COMM_SHARD] = layout == COMM_SHARD_WORLD ? world : layout == COMM_SHARD_NONE ? 1 : node;
    c->size[COMM_REPLICA] = world / c->size[COMM_SHARD];
    c->n_nodes = world / node;
    c->node_ranks_min = c->node_ranks_max = node;
    c->all_gather = sim_all_gather;
    c->reduce_scatter = sim_reduce_scatter;
    c->all_reduce = sim_all_reduce;
    c->broadcast = sim_broadcast;
    c->wait = sim_wait;
    c->barrier = sim_barrier;
    c->destroy = sim_destroy;
    return c;
}
