/* comm.c: what every communicator shares: traffic counting and the
 * overlap measure (see comm.h). */
#include <stdio.h>
#include "comm.h"

void comm_count_sent(comm *c, comm_op_kind kind, comm_group g, size_t n_bytes, int root)
{
    size_t size = (size_t)c->size[g];
    switch (kind) {
    case COMM_ALL_GATHER:
    case COMM_REDUCE_SCATTER:
        c->bytes_sent[kind] += (size - 1) * n_bytes;
        break;
    case COMM_ALL_REDUCE:
        c->bytes_sent[kind] += 2 * (size - 1) * n_bytes / size;
        break;
    case COMM_BROADCAST:
        if (c->rank[g] == root)
            c->bytes_sent[kind] += (size - 1) * n_bytes;
        break;
    default:
        break;
    }
    c->n_calls[kind]++;
}

size_t comm_dtype_size(comm_dtype dt) { return dt == COMM_F32 ? 4 : dt == COMM_BYTE ? 1 : 8; }

size_t comm_payload_bytes(comm_op_kind kind, size_t n, comm_dtype dt)
{
    switch (kind) {
    case COMM_REDUCE_SCATTER: return n * sizeof(float);
    case COMM_ALL_REDUCE: return n * comm_dtype_size(dt);
    default: return n; /* gathers and broadcasts count bytes */
    }
}

double comm_hidden_fraction(const comm *c, comm_op_kind kind)
{
    double busy = 0.0, waited = 0.0;
    for (int k = 0; k < COMM_N_OPS; k++)
        if (kind == COMM_N_OPS || k == (int)kind) {
            busy += c->async_busy_seconds[k];
            waited += c->async_wait_seconds[k];
        }
    if (busy <= 0.0)
        return 0.0;
    double hidden = 1.0 - waited / busy;
    return hidden < 0.0 ? 0.0 : hidden;
}

const char *comm_op_name(comm_op_kind k)
{
    static const char *const names[COMM_N_OPS] = {"all_gather", "reduce_scatter", "all_reduce", "broadcast"};
    return names[k];
}

void comm_describe_nodes(const comm *c, char *buf, size_t n_bytes)
{
    if (c->node_ranks_min == c->node_ranks_max)
        snprintf(buf, n_bytes, "%d node(s) x %d", c->n_nodes, c->node_ranks_min);
    else
        snprintf(buf, n_bytes, "%d node(s) of %d to %d", c->n_nodes, c->node_ranks_min, c->node_ranks_max);
}
