/* fault_inject.h: test hooks that make a failure happen on purpose, so that
 * what shardtune does then is tested, not hoped for (SQLite's habit).  They
 * are read from environment variables that only the tests set; a user's run
 * never meets them.
 *
 *   SHARDTUNE_FAULT_NAN_STEPS=3,4   the gradients of optimizer steps 3 and 4
 *                                   (1-based, as logged) get a NaN on the last
 *                                   rank, before the gradient norm is taken
 *   SHARDTUNE_FAULT_KILL_SAVE=STEP[:RANK[:N]]
 *                                   rank RANK (default the last) SIGKILLs
 *                                   itself in that step's save, after its
 *                                   Nth dataset (default 1)
 *   SHARDTUNE_FAULT_KILL_COLLECTIVE=RANK:N
 *                                   rank RANK SIGKILLs itself as it starts
 *                                   its Nth collective: the other ranks are
 *                                   left waiting inside it
 *   SHARDTUNE_FAULT_FILL_DISK=STEP  rank 0 fills the file system of the
 *                                   checkpoint after the save of that step
 *                                   has begun (after the space check), and
 *                                   frees it when the save has ended
 * A hook that kills says so first on stderr, with the time, so that tests
 * can measure how long the other ranks take to end. */
#ifndef SHARDTUNE_FAULT_INJECT_H
#define SHARDTUNE_FAULT_INJECT_H

struct fsdp;

/* 1 when SHARDTUNE_FAULT_NAN_STEPS lists `step`. */
int fault_nan_step(int step);

/* Test hook: a NaN in this rank's first gradient shard when `step` is one
 * of SHARDTUNE_FAULT_NAN_STEPS and this is the last rank. */
void fault_poison_grads(struct fsdp *f, int step, int rank, int world);

/* In ckpt_save, after its n_written-th dataset: SHARDTUNE_FAULT_KILL_SAVE. */
void fault_kill_during_save(int step, int rank, int world, int n_written);

/* In the communicator, as a collective starts: SHARDTUNE_FAULT_KILL_COLLECTIVE.
 * Counts this process's collectives (the hook's only state). */
void fault_kill_in_collective(int rank);

/* In ckpt_save: fills the file system holding DIR (an unlinked file held
 * open) when `step` is SHARDTUNE_FAULT_FILL_DISK, on rank 0; returns the
 * descriptor, or -1.  fault_fill_disk_end frees it. */
int fault_fill_disk(int step, int rank, const char *dir);
void fault_fill_disk_end(int fd);

#endif
