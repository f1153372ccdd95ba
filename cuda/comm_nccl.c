/* comm_nccl.c: collectives on NCCL for the CUDA backend.
 *
 * One NCCL communicator per group (world, shard, replica), each built over
 * the MPI communicator of the same ranks: its rank 0 makes the unique id and
 * broadcasts it.  Collectives run on their own stream.  Before each, the
 * communication stream waits for an event recorded on the compute stream
 * (the send buffer is ready); waiting on a request makes the compute stream
 * wait for the collective's end event, and the host does not block.  So a
 * prefetched gather or a reduce-scatter runs while the next layer computes.
 *
 * Where a collective's buffers are host memory (flags, a few summed
 * numbers, the end-of-run report) it runs on the MPI communicator instead,
 * after the compute stream has drained.  A collective between host and
 * device buffers (fsdp_offload_params: shards in pinned host memory) stages
 * the host side through a device buffer and completes before returning. */
#include "comm_nccl.h"

#include <cuda_runtime.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>

#include "backend_cuda.h"
#include "comm_mpi.h"

struct comm_request {
    cudaEvent_t start, done;
    comm_op_kind kind;
    int async;
};

typedef struct nccl_impl {
    comm *host; /* MPI: host buffers */
    backend *be;
    cudaStream_t compute, stream;
    cudaEvent_t ready;
    ncclComm_t groups[COMM_N_GROUPS];
    comm_request **pending; /* waited on; their timing not read yet */
    int n_pending, cap_pending;
} nccl_impl;

#define NCCL_CHECK(call)                                                                                       \
    do {                                                                                                       \
        ncclResult_t r_ = (call);                                                                              \
        if (r_ != ncclSuccess)                                                                                 \
            die(EXIT_FAILURE_RUN, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call, ncclGetErrorString(r_)); \
    } while (0)

#define CUDART_CHECK(call)                                                                                     \
    do {                                                                                                       \
        cudaError_t r_ = (call);                                                                               \
        if (r_ != cudaSuccess)                                                                                 \
            die(EXIT_FAILURE_RUN, "%s:%d: %s failed: %s", __FILE__, __LINE__, #call, cudaGetErrorString(r_));  \
    } while (0)

/* ---- one collective, whatever memory its buffers are in ---- */

typedef struct collective {
    comm_op_kind kind;
    comm_group group;
    const void *send; /* == recv for all-reduce and broadcast */
    void *recv;
    size_t n;         /* bytes per rank (gather, broadcast), elements (reduce-scatter, all-reduce) */
    comm_dtype dtype;
    int root;
} collective;

static ncclDataType_t nccl_type(comm_dtype d)
{
    switch (d) {
    case COMM_F32: return ncclFloat32;
    case COMM_F64: return ncclFloat64;
    case COMM_U64: return ncclUint64;
    default: return ncclUint8;
    }
}

/* Bytes of the send and receive buffers, for staging host memory. */
static size_t send_bytes(const comm *c, const collective *x)
{
    size_t p = comm_payload_bytes(x->kind, x->n, x->dtype);
    return x->kind == COMM_REDUCE_SCATTER ? p * (size_t)c->size[x->group] : p;
}

static size_t recv_bytes(const comm *c, const collective *x)
{
    size_t p = comm_payload_bytes(x->kind, x->n, x->dtype);
    return x->kind == COMM_ALL_GATHER ? p * (size_t)c->size[x->group] : p;
}

static void enqueue_nccl(nccl_impl *im, const collective *x, const void *send, void *recv)
{
    ncclComm_t nc = im->groups[x->group];
    switch (x->kind) {
    case COMM_ALL_GATHER:
        NCCL_CHECK(ncclAllGather(send, recv, x->n, ncclUint8, nc, im->stream));
        break;
    case COMM_REDUCE_SCATTER:
        NCCL_CHECK(ncclReduceScatter(send, recv, x->n, ncclFloat32, ncclSum, nc, im->stream));
        break;
    case COMM_ALL_REDUCE:
        NCCL_CHECK(ncclAllReduce(send, recv, x->n, nccl_type(x->dtype), ncclSum, nc, im->stream));
        break;
    case COMM_BROADCAST:
        NCCL_CHECK(ncclBroadcast(send, recv, x->n, ncclUint8, x->root, nc, im->stream));
        break;
    default:
        break;
    }
}

/* Host buffers: on MPI, once the device has finished writing them. */
static void run_on_host(comm *c, const collective *x)
{
    nccl_impl *im = c->impl;
    comm *h = im->host;
    CUDART_CHECK(cudaStreamSynchronize(im->compute));
    switch (x->kind) {
    case COMM_ALL_GATHER: h->all_gather(h, x->group, x->send, x->recv, x->n, 0); break;
    case COMM_REDUCE_SCATTER: h->reduce_scatter(h, x->group, x->send, x->recv, x->n, 0); break;
    case COMM_ALL_REDUCE: h->all_reduce(h, x->group, x->recv, x->n, x->dtype, 0); break;
    case COMM_BROADCAST: h->broadcast(h, x->group, x->recv, x->n, x->root, 0); break;
    default: break;
    }
}

/* Host and device buffers mixed: the host side goes through device
 * buffers, and the whole collective completes before returning (the staging
 * buffers are then free to reuse). */
static void run_staged(comm *c, const collective *x, int send_on_device, int recv_on_device)
{
    nccl_impl *im = c->impl;
    backend *be = im->be;
    const int in_place = x->send == x->recv;
    void *send = (void *)x->send, *recv = x->recv, *send_stage = NULL, *recv_stage = NULL;
    CUDART_CHECK(cudaStreamSynchronize(im->compute));
    if (!send_on_device) {
        send = send_stage = be->alloc(be, send_bytes(c, x), MEM_COMM);
        CUDART_CHECK(cudaMemcpyAsync(send, x->send, send_bytes(c, x), cudaMemcpyDefault, im->compute));
    }
    if (in_place)
        recv = send;
    else if (!recv_on_device)
        recv = recv_stage = be->alloc(be, recv_bytes(c, x), MEM_COMM);
    CUDART_CHECK(cudaStreamSynchronize(im->compute));
    enqueue_nccl(im, x, send, recv);
    if (!recv_on_device)
        CUDART_CHECK(cudaMemcpyAsync(x->recv, recv, recv_bytes(c, x), cudaMemcpyDefault, im->stream));
    CUDART_CHECK(cudaStreamSynchronize(im->stream));
    be->free(be, send_stage);
    be->free(be, recv_stage);
}

static comm_request *run(comm *c, const collective *x, int async)
{
    nccl_impl *im = c->impl;
    const int send_dev = cuda_is_device_pointer(x->send), recv_dev = cuda_is_device_pointer(x->recv);
    comm_count_sent(c, x->kind, x->group, comm_payload_bytes(x->kind, x->n, x->dtype), x->root);
    if (!send_dev && !recv_dev) {
        run_on_host(c, x);
        return NULL;
    }
    if (!send_dev || !recv_dev) {
        run_staged(c, x, send_dev, recv_dev);
        return NULL;
    }
    comm_request *r = xcalloc(1, sizeof *r);
    r->kind = x->kind;
    r->async = async;
    CUDART_CHECK(cudaEventCreate(&r->start));
    CUDART_CHECK(cudaEventCreate(&r->done));
    CUDART_CHECK(cudaEventRecord(im->ready, im->compute)); /* the send buffer is written */
    CUDART_CHECK(cudaStreamWaitEvent(im->stream, im->ready, 0));
    CUDART_CHECK(cudaEventRecord(r->start, im->stream));
    enqueue_nccl(im, x, x->send, x->recv);
    CUDART_CHECK(cudaEventRecord(r->done, im->stream));
    if (async)
        return r;
    c->wait(c, r);
    return NULL;
}

/* ---- requests ---- */

/* Reads the timing of finished requests (without waiting for any). */
static void harvest(comm *c, int block)
{
    nccl_impl *im = c->impl;
    int kept = 0;
    for (int i = 0; i < im->n_pending; i++) {
        comm_request *r = im->pending[i];
        if (block)
            CUDART_CHECK(cudaEventSynchronize(r->done));
        else if (cudaEventQuery(r->done) != cudaSuccess) {
            im->pending[kept++] = r;
            continue;
        }
        float ms = 0.0f;
        if (r->async && cudaEventElapsedTime(&ms, r->start, r->done) == cudaSuccess)
            c->async_busy_seconds[r->kind] += ms * 1e-3;
        cudaEventDestroy(r->start);
        cudaEventDestroy(r->done);
        free(r);
    }
    im->n_pending = kept;
    cudaGetLastError(); /* a not-ready query is not an error */
}

static void nccl_wait(comm *c, comm_request *r)
{
    if (!r)
        return;
    nccl_impl *im = c->impl;
    CUDART_CHECK(cudaStreamWaitEvent(im->compute, r->done, 0));
    if (im->n_pending == im->cap_pending) {
        im->cap_pending = im->cap_pending ? 2 * im->cap_pending : 64;
        im->pending = realloc(im->pending, (size_t)im->cap_pending * sizeof *im->pending);
        if (!im->pending)
            die(EXIT_FAILURE_RUN, "out of memory");
    }
    im->pending[im->n_pending++] = r;
    harvest(c, 0);
}

/* ---- the interface ---- */

static comm_request *nccl_all_gather(comm *c, comm_group g, const void *send, void *recv, size_t n_bytes_per_rank,
                                     int async)
{
    collective x = {COMM_ALL_GATHER, g, send, recv, n_bytes_per_rank, COMM_BYTE, 0};
    return run(c, &x, async);
}

static comm_request *nccl_reduce_scatter(comm *c, comm_group g, const float *send, float *recv,
                                         size_t n_elems_per_rank, int async)
{
    collective x = {COMM_REDUCE_SCATTER, g, send, recv, n_elems_per_rank, COMM_F32, 0};
    return run(c, &x, async);
}

static comm_request *nccl_all_reduce(comm *c, comm_group g, void *buf, size_t n_elems, comm_dtype dt, int async)
{
    collective x = {COMM_ALL_REDUCE, g, buf, buf, n_elems, dt, 0};
    return run(c, &x, async);
}

static comm_request *nccl_broadcast(comm *c, comm_group g, void *buf, size_t n_bytes, int root, int async)
{
    collective x = {COMM_BROADCAST, g, buf, buf, n_bytes, COMM_BYTE, root};
    return run(c, &x, async);
}

static void nccl_barrier(comm *c)
{
    nccl_impl *im = c->impl;
    CUDART_CHECK(cudaStreamSynchronize(im->compute));
    CUDART_CHECK(cudaStreamSynchronize(im->stream));
    im->host->barrier(im->host);
}

static void nccl_destroy(comm *c)
{
    nccl_impl *im = c->impl;
    cudaStreamSynchronize(im->stream);
    harvest(c, 1);
    free(im->pending);
    for (int g = 0; g < COMM_N_GROUPS; g++)
        ncclCommDestroy(im->groups[g]);
    cudaEventDestroy(im->ready);
    cudaStreamDestroy(im->stream);
    im->host->destroy(im->host);
    free(im);
    free(c);
}

comm *comm_nccl_create(comm *mpi, backend *be, errbuf *e)
{
    nccl_impl *im = xcalloc(1, sizeof *im);
    im->host = mpi;
    im->be = be;
    im->compute = (cudaStream_t)backend_cuda_stream(be);
    for (int g = 0; g < COMM_N_GROUPS; g++) {
        MPI_Comm mc = comm_mpi_group(mpi, g);
        ncclUniqueId id;
        ncclResult_t rc = ncclSuccess;
        if (mpi->rank[g] == 0)
            rc = ncclGetUniqueId(&id);
        int ok = rc == ncclSuccess, all_ok = 0;
        MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, mc);
        if (all_ok)
            MPI_Bcast(&id, (int)sizeof id, MPI_BYTE, 0, mc);
        if (all_ok && (rc = ncclCommInitRank(&im->groups[g], mpi->size[g], id, mpi->rank[g])) != ncclSuccess)
            all_ok = 0;
        if (!all_ok) {
            err_set(e, "NCCL: cannot set up the %s group (%d ranks): %s",
                    g == COMM_WORLD ? "world" : g == COMM_SHARD ? "shard" : "replica", mpi->size[g],
                    rc != ncclSuccess ? ncclGetErrorString(rc) : "another rank failed");
            for (int k = 0; k < g; k++)
                ncclCommDestroy(im->groups[k]);
            free(im);
            return NULL;
        }
    }
    CUDART_CHECK(cudaStreamCreateWithFlags(&im->stream, cudaStreamNonBlocking));
    CUDART_CHECK(cudaEventCreateWithFlags(&im->ready, cudaEventDisableTiming));
    comm *c = xcalloc(1, sizeof *c);
    c->impl = im;
    for (int g = 0; g < COMM_N_GROUPS; g++) {
        c->rank[g] = mpi->rank[g];
        c->size[g] = mpi->size[g];
    }
    c->n_nodes = mpi->n_nodes;
    c->node_ranks_min = mpi->node_ranks_min;
    c->node_ranks_max = mpi->node_ranks_max;
    c->overlap_unmeasured = 1;
    c->all_gather = nccl_all_gather;
    c->reduce_scatter = nccl_reduce_scatter;
    c->all_reduce = nccl_all_reduce;
    c->broadcast = nccl_broadcast;
    c->wait = nccl_wait;
    c->barrier = nccl_barrier;
    c->destroy = nccl_destroy;
    return c;
}
