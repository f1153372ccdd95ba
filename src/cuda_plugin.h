/* cuda_plugin.h: the CUDA backend as a plugin (shardtune-cuda.so), opened
 * only when a run uses the GPU.  A binary built with CUDA so still starts on
 * a machine without CUDA's libraries, and a CPU run does not map cuBLAS and
 * NCCL (hundreds of MB of libraries) into every rank. */
#ifndef SHARDTUNE_CUDA_PLUGIN_H
#define SHARDTUNE_CUDA_PLUGIN_H

#include "backend.h"
#include "comm.h"
#include "log.h"

/* The plugin's entry points (see cuda/backend_cuda.h and cuda/comm_nccl.h). */
typedef struct cuda_plugin {
    int (*device_count)(void);
    backend *(*backend_create)(int device, int bf16, errbuf *e);
    comm *(*comm_create)(comm *mpi, backend *be, errbuf *e);
} cuda_plugin;

/* 1 when this machine shows an NVIDIA device node: worth opening the plugin
 * for --device auto (without one, nothing is loaded). */
int cuda_plugin_device_present(void);

/* Opens the plugin once: $SHARDTUNE_CUDA_PLUGIN, else shardtune-cuda.so
 * beside the program, else in the install's library directory.  NULL with
 * a message in e when there is none (a build without CUDA) or it does not
 * load. */
const cuda_plugin *cuda_plugin_open(errbuf *e);
/* Where cuda_plugin_open would look first and find a file (0), or -1 when
 * there is none; loads nothing (for --version). */
int cuda_plugin_find(char *path, size_t cap);

#endif
