/* run_lock.h: one training run at a time in an output directory.
 *
 * Rank 0 of train holds OUTPUT_DIR/shardtune.lock for the whole run: an
 * flock on it (released by the kernel when the process dies, on any node
 * when the file system supports flock), and in it the owner's pid, host
 * and start time, for the messages.  A run killed outright (SIGKILL, a
 * node lost) leaves the file; the next run finds no live flock on it,
 * says so in one line, clears it with the unfinished checkpoint .tmp files
 * of the run that died, and goes on.  A live owner is refused in one line.
 * Where flock is not supported the pid is checked instead, on the same
 * host; a lock of another host is then refused (it cannot be checked). */
#ifndef SHARDTUNE_RUN_LOCK_H
#define SHARDTUNE_RUN_LOCK_H

#include <stddef.h>

#include "log.h"

typedef struct run_lock {
    int fd; /* -1: not held */
    char path[4200];
} run_lock;

/* Takes DIR's lock (DIR exists).  0, or -1 with e set when a live run
 * holds it or the file cannot be made. */
int run_lock_take(run_lock *l, const char *dir, errbuf *e);

/* Removes the lock file and lets go (nothing when not held). */
void run_lock_release(run_lock *l);

#endif
