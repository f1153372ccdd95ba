/* comm_mpi.c: the communicator on MPI.
 *
 * Open MPI makes no progress on a non-blocking collective unless someone
 * calls into MPI, so asynchronous collectives are run by one communication
 * thread that executes a FIFO queue of blocking collectives.  Every MPI call
 * after start-up goes through that queue (synchronous ones too, waited on at
 * once), so the order of collectives is the same on every rank and MPI
 * needs only MPI_THREAD_SERIALIZED. */
#include "comm_mpi.h"
#include "fault_inject.h"

#include <limits.h>
#include <mpi.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct comm_request {
    comm_op_kind kind;
    comm_group group;
    const void *send;
    void *recv;
    size_t n;          /* bytes (gather, broadcast) or elements */
    comm_dtype dtype;
    int root;
    int async;
    int done;
    double busy_seconds;
    struct comm_request *next;
};

typedef struct mpi_impl {
    MPI_Comm groups[COMM_N_GROUPS];
    int threaded;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    comm_request *head, *tail;
    int stopping;
} mpi_impl;

#define MPI_CHECK(call)                                                                            \
    do {                                                                                           \
        int rc_ = (call);                                                                          \
        if (rc_ != MPI_SUCCESS) {                                                                  \
            char msg_[MPI_MAX_ERROR_STRING];                                                       \
            int len_ = 0;                                                                          \
            MPI_Error_string(rc_, msg_, &len_);                                                    \
            die(EXIT_FAILURE_RUN, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call, msg_);        \
        }                                                                                          \
    } while (0)

/* MPI counts are int: large buffers travel as blocks of a contiguous type. */
static void byte_count(size_t n_bytes, int *count, MPI_Datatype *type, int *free_type)
{
    *free_type = 0;
    if (n_bytes <= (size_t)INT_MAX) {
        *count = (int)n_bytes;
        *type = MPI_BYTE;
        return;
    }
    size_t block = 1;
    while (n_bytes / block > (size_t)INT_MAX) {
        if (n_bytes % (block * 2) != 0)
            die(EXIT_FAILURE_RUN, "collective of %zu bytes cannot be split into MPI blocks", n_bytes);
        block *= 2;
    }
    MPI_CHECK(MPI_Type_contiguous((int)block, MPI_BYTE, type));
    MPI_CHECK(MPI_Type_commit(type));
    *count = (int)(n_bytes / block);
    *free_type = 1;
}

static MPI_Datatype mpi_type(comm_dtype d)
{
    switch (d) {
    case COMM_F32: return MPI_FLOAT;
    case COMM_F64: return MPI_DOUBLE;
    case COMM_U64: return MPI_UINT64_T;
    default: return MPI_BYTE;
    }
}

static void execute(comm *c, comm_request *r)
{
    mpi_impl *im = c->impl;
    MPI_Comm mc = im->groups[r->group];
    double t0 = monotonic_seconds();
    int count, free_type;
    MPI_Datatype type;
    fault_kill_in_collective(c->rank[COMM_WORLD]); /* a test hook (fault_inject.h) */
    switch (r->kind) {
    case COMM_ALL_GATHER:
        byte_count(r->n, &count, &type, &free_type);
        MPI_CHECK(MPI_Allgather(r->send, count, type, r->recv, count, type, mc));
        if (free_type)
            MPI_Type_free(&type);
        break;
    case COMM_REDUCE_SCATTER:
        if (r->n > (size_t)INT_MAX)
            die(EXIT_FAILURE_RUN, "reduce-scatter of %zu elements per rank exceeds MPI's count", r->n);
        MPI_CHECK(MPI_Reduce_scatter_block(r->send, r->recv, (int)r->n, MPI_FLOAT, MPI_SUM, mc));
        break;
    case COMM_ALL_REDUCE:
        if (r->n > (size_t)INT_MAX)
            die(EXIT_FAILURE_RUN, "all-reduce of %zu elements exceeds MPI's count", r->n);
        MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, r->recv, (int)r->n, mpi_type(r->dtype), MPI_SUM, mc));
        break;
    case COMM_BROADCAST:
        byte_count(r->n, &count, &type, &free_type);
        MPI_CHECK(MPI_Bcast(r->recv, count, type, r->root, mc));
        if (free_type)
            MPI_Type_free(&type);
        break;
    default:
        break;
    }
    comm_count_sent(c, r->kind, r->group, comm_payload_bytes(r->kind, r->n, r->dtype), r->root);
    r->busy_seconds = monotonic_seconds() - t0;
}

static void *comm_thread_main(void *arg)
{
    comm *c = arg;
    mpi_impl *im = c->impl;
    pthread_mutex_lock(&im->lock);
    for (;;) {
        while (!im->head && !im->stopping)
            pthread_cond_wait(&im->cond, &im->lock);
        if (!im->head && im->stopping)
            break;
        comm_request *r = im->head;
        pthread_mutex_unlock(&im->lock);
        execute(c, r);
        pthread_mutex_lock(&im->lock);
        im->head = r->next;
        if (!im->head)
            im->tail = NULL;
        r->done = 1;
        pthread_cond_broadcast(&im->cond);
    }
    pthread_mutex_unlock(&im->lock);
    return NULL;
}

static void mpi_wait(comm *c, comm_request *r)
{
    if (!r)
        return;
    mpi_impl *im = c->impl;
    if (im->threaded) {
        double t0 = monotonic_seconds();
        pthread_mutex_lock(&im->lock);
        while (!r->done)
            pthread_cond_wait(&im->cond, &im->lock);
        pthread_mutex_unlock(&im->lock);
        if (r->async) {
            c->async_wait_seconds[r->kind] += monotonic_seconds() - t0;
            c->async_busy_seconds[r->kind] += r->busy_seconds;
        }
    }
    free(r);
}

static comm_request *submit(comm *c, comm_request *proto)
{
    mpi_impl *im = c->impl;
    comm_request *r = xmalloc(sizeof *r);
    *r = *proto;
    r->done = 0;
    r->next = NULL;
    if (!im->threaded) {
        execute(c, r);
        r->done = 1;
    } else {
        pthread_mutex_lock(&im->lock);
        if (im->tail)
            im->tail->next = r;
        else
            im->head = r;
        im->tail = r;
        pthread_cond_broadcast(&im->cond);
        pthread_mutex_unlock(&im->lock);
    }
    if (r->async)
        return r;
    mpi_wait(c, r);
    return NULL;
}

static comm_request *mpi_all_gather(comm *c, comm_group g, const void *send, void *recv, size_t n_bytes, int async)
{
    comm_request r = {.kind = COMM_ALL_GATHER, .group = g, .send = send, .recv = recv, .n = n_bytes, .async = async};
    return submit(c, &r);
}

static comm_request *mpi_reduce_scatter(comm *c, comm_group g, const float *send, float *recv, size_t n,
                                        int async)
{
    comm_request r = {.kind = COMM_REDUCE_SCATTER, .group = g, .send = send, .recv = recv, .n = n, .async = async};
    return submit(c, &r);
}

static comm_request *mpi_all_reduce(comm *c, comm_group g, void *buf, size_t n, comm_dtype dt, int async)
{
    comm_request r = {.kind = COMM_ALL_REDUCE, .group = g, .recv = buf, .n = n, .dtype = dt, .async = async};
    return submit(c, &r);
}

static comm_request *mpi_broadcast(comm *c, comm_group g, void *buf, size_t n_bytes, int root, int async)
{
    comm_request r = {.kind = COMM_BROADCAST, .group = g, .recv = buf, .n = n_bytes, .root = root, .async = async};
    return submit(c, &r);
}

static void mpi_barrier(comm *c)
{
    double zero = 0.0;
    mpi_all_reduce(c, COMM_WORLD, &zero, 1, COMM_F64, 0);
}

static void mpi_destroy(comm *c)
{
    mpi_impl *im = c->impl;
    if (im->threaded) {
        pthread_mutex_lock(&im->lock);
        im->stopping = 1;
        pthread_cond_broadcast(&im->cond);
        pthread_mutex_unlock(&im->lock);
        pthread_join(im->thread, NULL);
        pthread_mutex_destroy(&im->lock);
        pthread_cond_destroy(&im->cond);
    }
    for (int g = 0; g < COMM_N_GROUPS; g++)
        MPI_Comm_free(&im->groups[g]);
    free(im);
    free(c);
}

MPI_Comm comm_mpi_group(const comm *c, comm_group g) { return ((const mpi_impl *)c->impl)->groups[g]; }

comm *comm_mpi_create(comm_layout layout, int async_thread, errbuf *e)
{
    int world_rank, world_size;
    MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &world_rank));
    MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &world_size));
    /* node = the ranks that share memory, or fixed blocks of ranks */
    int node_color = 0, node_key = world_rank;
    MPI_Comm node;
    const char *rpn = getenv("SHARDTUNE_RANKS_PER_NODE");
    if (rpn && *rpn) {
        int k = atoi(rpn);
        if (k < 1 || world_size % k != 0) {
            err_set(e, "SHARDTUNE_RANKS_PER_NODE=%s does not divide the %d ranks", rpn, world_size);
            return NULL;
        }
        node_color = world_rank / k;
        MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, node_color, node_key, &node));
    } else {
        MPI_CHECK(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world_rank, MPI_INFO_NULL, &node));
    }
    int node_rank, node_size;
    MPI_CHECK(MPI_Comm_rank(node, &node_rank));
    MPI_CHECK(MPI_Comm_size(node, &node_size));
    /* every node must have the same number of ranks for HYBRID_SHARD */
    int min_size = node_size, max_size = node_size;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &min_size, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD));
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &max_size, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD));
    int n_nodes = node_rank == 0;
    MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, &n_nodes, 1, MPI_INT, MPI_SUM, MPI_COMM_WORLD));
    if (layout == COMM_SHARD_NODE && min_size != max_size) {
        MPI_Comm_free(&node);
        err_set(e, "HYBRID_SHARD needs the same number of ranks on every node (found %d to %d)", min_size, max_size);
        return NULL;
    }

    comm *c = xcalloc(1, sizeof *c);
    mpi_impl *im = xcalloc(1, sizeof *im);
    c->impl = im;
    c->n_nodes = n_nodes;
    c->node_ranks_min = min_size;
    c->node_ranks_max = max_size;
    MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &im->groups[COMM_WORLD]));
    switch (layout) {
    case COMM_SHARD_WORLD:
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &im->groups[COMM_SHARD]));
        MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, world_rank, 0, &im->groups[COMM_REPLICA]));
        break;
    case COMM_SHARD_NONE:
        MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, world_rank, 0, &im->groups[COMM_SHARD]));
        MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &im->groups[COMM_REPLICA]));
        break;
    case COMM_SHARD_NODE:
        MPI_CHECK(MPI_Comm_dup(node, &im->groups[COMM_SHARD]));
        MPI_CHECK(MPI_Comm_split(MPI_COMM_WORLD, node_rank, world_rank, &im->groups[COMM_REPLICA]));
        break;
    }
    MPI_Comm_free(&node);
    for (int g = 0; g < COMM_N_GROUPS; g++) {
        MPI_CHECK(MPI_Comm_rank(im->groups[g], &c->rank[g]));
        MPI_CHECK(MPI_Comm_size(im->groups[g], &c->size[g]));
    }
    int provided = MPI_THREAD_SINGLE;
    MPI_Query_thread(&provided);
    im->threaded = async_thread && provided >= MPI_THREAD_SERIALIZED;
    if (im->threaded) {
        pthread_mutex_init(&im->lock, NULL);
        pthread_cond_init(&im->cond, NULL);
        if (pthread_create(&im->thread, NULL, comm_thread_main, c) != 0)
            die(EXIT_FAILURE_RUN, "cannot start the communication thread");
    }
    c->all_gather = mpi_all_gather;
    c->reduce_scatter = mpi_reduce_scatter;
    c->all_reduce = mpi_all_reduce;
    c->broadcast = mpi_broadcast;
    c->wait = mpi_wait;
    c->barrier = mpi_barrier;
    c->destroy = mpi_destroy;
    return c;
}

