/* cuda_plugin.c: finding and opening shardtune-cuda.so (see cuda_plugin.h). */
#include "cuda_plugin.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PLUGIN_NAME "shardtune-cuda.so"

int cuda_plugin_device_present(void)
{
    return access("/dev/nvidiactl", F_OK) == 0 || access("/dev/nvidia0", F_OK) == 0 ||
           access("/proc/driver/nvidia/gpus", F_OK) == 0;
}

/* The directory of the running program, with a trailing slash. */
static int program_dir(char *out, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", out, size - 1);
    if (n <= 0)
        return -1;
    out[n] = '\0';
    char *slash = strrchr(out, '/');
    if (!slash)
        return -1;
    slash[1] = '\0';
    return 0;
}

int cuda_plugin_find(char *path, size_t cap)
{
    char candidates[3][PATH_MAX + 32];
    int n = 0;
    const char *env = getenv("SHARDTUNE_CUDA_PLUGIN");
    if (env && *env)
        snprintf(candidates[n++], sizeof candidates[0], "%s", env);
    char dir[PATH_MAX];
    if (program_dir(dir, sizeof dir) == 0)
        snprintf(candidates[n++], sizeof candidates[0], "%s%s", dir, PLUGIN_NAME);
    snprintf(candidates[n++], sizeof candidates[0], "%s/%s", SHARDTUNE_PKGLIBDIR, PLUGIN_NAME);
    for (int i = 0; i < n; i++)
        if (access(candidates[i], F_OK) == 0) {
            snprintf(path, cap, "%s", candidates[i]);
            return 0;
        }
    return -1;
}

const cuda_plugin *cuda_plugin_open(errbuf *e)
{
    static cuda_plugin plugin;
    static int opened;
    if (opened)
        return &plugin;
    char path[PATH_MAX + 32];
    if (cuda_plugin_find(path, sizeof path) != 0) {
        err_set(e, "--device cuda: no %s beside the program or in %s: this shardtune was built without CUDA "
                   "(configure found no nvcc; see ./configure --with-cuda=DIR)", PLUGIN_NAME, SHARDTUNE_PKGLIBDIR);
        return NULL;
    }
    void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        err_set(e, "%s: cannot load the CUDA backend: %s", path, dlerror());
        return NULL;
    }
    *(void **)&plugin.device_count = dlsym(handle, "cuda_device_count");
    *(void **)&plugin.backend_create = dlsym(handle, "backend_cuda_create");
    *(void **)&plugin.comm_create = dlsym(handle, "comm_nccl_create");
    if (!plugin.device_count || !plugin.backend_create || !plugin.comm_create) {
        err_set(e, "%s: not a shardtune CUDA plugin (entry points missing)", path);
        return NULL;
    }
    opened = 1;
    return &plugin;
}
