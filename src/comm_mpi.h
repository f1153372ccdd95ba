/* comm_mpi.h: what other communicators need of the MPI one (comm_mpi.c):
 * its MPI communicator for each group, so that a NCCL communicator can be
 * built over exactly the same ranks. */
#ifndef SHARDTUNE_COMM_MPI_H
#define SHARDTUNE_COMM_MPI_H

#include <mpi.h>

#include "comm.h"

/* c must come from comm_mpi_create. */
MPI_Comm comm_mpi_group(const comm *c, comm_group g);

#endif
