/* comm_nccl.h: the communicator of GPU runs (comm_nccl.c). */
#ifndef SHARDTUNE_COMM_NCCL_H
#define SHARDTUNE_COMM_NCCL_H

#include "backend.h"
#include "comm.h"
#include "log.h"

/* A NCCL communicator over the same groups as mpi (from comm_mpi_create),
 * for buffers of the CUDA backend be.  It takes mpi over: host buffers
 * (flags, sums of a few numbers, reports) still travel on it.  On failure
 * returns NULL with a message in e, and mpi is left to the caller. */
comm *comm_nccl_create(comm *mpi, backend *be, errbuf *e);

#endif
