/* fault_inject.h: test hooks that make a failure happen on purpose, so that
 * what shardtune does then is tested, not hoped for (SQLite's habit).  They
 * are read from environment variables that only the tests set; a user's run
 * never meets them.
 *
 *   SHARDTUNE_FAULT_NAN_STEPS=3,4   the gradients of optimizer steps 3 and 4
 *                                   (1-based, as logged) get a NaN on the last
 *                                   rank, before the gradient norm is taken
 *   SHARDTUNE_FAULT_KILL_SAVE=STEP  the last rank SIGKILLs itself in the
 *                                   middle of that step's save
 *   SHARDTUNE_FAULT_FILL_DISK=STEP  rank 0 fills the file system of the
 *                                   checkpoint after the save of that step
 *                                   has begun (after the space check), and
 *                                   frees it when the save has ended */
#ifndef SHARDTUNE_FAULT_INJECT_H
#define SHARDTUNE_FAULT_INJECT_H

#include "fsdp.h"

/* 1 when SHARDTUNE_FAULT_NAN_STEPS lists `step`. */
int fault_nan_step(int step);

/* Test hook: a NaN in this rank's first gradient shard when `step` is one
 * of SHARDTUNE_FAULT_NAN_STEPS and this is the last rank. */
void fault_poison_grads(fsdp *f, int step, int rank, int world);

/* In ckpt_save, after each dataset: SHARDTUNE_FAULT_KILL_SAVE. */
void fault_kill_during_save(int step, int rank, int world);

/* In ckpt_save: fills the file system holding DIR (an unlinked file held
 * open) when `step` is SHARDTUNE_FAULT_FILL_DISK, on rank 0; returns the
 * descriptor, or -1.  fault_fill_disk_end frees it. */
int fault_fill_disk(int step, int rank, const char *dir);
void fault_fill_disk_end(int fd);

#endif
