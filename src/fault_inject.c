/* fault_inject.c: test hooks (see fault_inject.h). */
#include "fault_inject.h"

#include "fsdp.h"

#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int fault_nan_step(int step)
{
    const char *list = getenv("SHARDTUNE_FAULT_NAN_STEPS");
    while (list && *list) {
        char *end;
        long s = strtol(list, &end, 10);
        if (end == list)
            return 0;
        if (s == step)
            return 1;
        list = *end == ',' ? end + 1 : end + strlen(end);
    }
    return 0;
}

void fault_poison_grads(fsdp *f, int step, int rank, int world)
{
    if (rank != world - 1 || !fault_nan_step(step))
        return;
    const float nan = NAN;
    for (int i = 0; i < f->n_ranges; i++)
        if (f->shard_elems[i]) {
            f->be->copy_to_device(f->be, f->grad_shards[i], &nan, sizeof nan);
            return;
        }
}

static int env_step(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : -1;
}

static void die_now(int rank, const char *where)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    fprintf(stderr, "fault: rank %d SIGKILLs itself %s at %lld.%09ld\n", rank, where, (long long)t.tv_sec, t.tv_nsec);
    fflush(stderr);
    raise(SIGKILL);
}

void fault_kill_during_save(int step, int rank, int world, int n_written)
{
    const char *v = getenv("SHARDTUNE_FAULT_KILL_SAVE");
    int at = -1, who = world - 1, nth = 1;
    if (!v || sscanf(v, "%d:%d:%d", &at, &who, &nth) < 1)
        return;
    if (at == step && rank == who && n_written == nth)
        die_now(rank, "during a checkpoint save");
}

void fault_kill_in_collective(int rank)
{
    static long countdown = -2; /* -2: not read yet, -1: not this rank or off */
    if (countdown == -2) {
        const char *v = getenv("SHARDTUNE_FAULT_KILL_COLLECTIVE");
        int who;
        long nth;
        countdown = v && sscanf(v, "%d:%ld", &who, &nth) == 2 && who == rank && nth > 0 ? nth : -1;
    }
    if (countdown > 0 && --countdown == 0)
        die_now(rank, "as a collective starts");
}

int fault_fill_disk(int step, int rank, const char *dir)
{
    if (rank != 0 || env_step("SHARDTUNE_FAULT_FILL_DISK") != step)
        return -1;
    char path[4200];
    snprintf(path, sizeof path, "%s/fault-fill-disk", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        return -1;
    unlink(path);
    static const char block[65536];
    size_t n = sizeof block;
    while (n >= 512) /* to the last block the file system gives */
        if (write(fd, block, n) < 0)
            n /= 2;
    return fd;
}

void fault_fill_disk_end(int fd)
{
    if (fd >= 0)
        close(fd);
}
