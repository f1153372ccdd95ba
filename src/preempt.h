/* preempt.h: stopping a training run in time and losing nothing.
 *
 * A batch system takes a job away with a signal: Slurm sends SIGTERM on
 * `scancel` and `scontrol requeue`, or the signal of `--signal` ahead of
 * the time limit; PBS sends SIGTERM; a terminal sends SIGINT.  Here
 * SIGTERM, SIGINT, SIGUSR1 and SIGUSR2 only set a flag.  At each step
 * boundary the ranks add up their flags in one small all-reduce, so a
 * signal that reached some ranks only stops all of them after the same
 * step; the loop then writes a checkpoint (updating `latest`) and the
 * process exits with EXIT_PREEMPTED, which the batch scripts turn into a
 * requeue.  A second SIGINT ends the process at once, as Ctrl-C twice
 * does elsewhere.
 *
 * The time limit: with a known job end time (SHARDTUNE_JOB_END_TIME,
 * SLURM_JOB_END_TIME, else `squeue -o %e` for SLURM_JOB_ID), rank 0 stops the run before a step
 * when what is left would not hold that step, a checkpoint and a margin
 * (see preempt_check).  Its vote travels in the same all-reduce. */
#ifndef SHARDTUNE_PREEMPT_H
#define SHARDTUNE_PREEMPT_H

#include <time.h>

#include "comm.h"
#include "config.h"

/* The exit status of a run stopped by a signal or the time limit after it
 * saved a checkpoint: sysexits' EX_TEMPFAIL ("try again later"). */
enum { EXIT_PREEMPTED = 75 };

/* Elements of the per-step all-reduce (f64): ranks signalled, one per
 * signal, the time limit.  `shardtune plan` counts it as a run does. */
enum { PREEMPT_AGREE_ELEMS = 6 };

/* Seconds kept free before the job's end beyond the step and the save:
 * the exit, and Slurm's one-second clock. */
#define PREEMPT_MARGIN_SECONDS 15.0

typedef struct preempt_watch {
    time_t end_time;        /* rank 0: the job's end (0: no time limit watched) */
    double last_boundary;   /* monotonic seconds at the previous check */
    double longest_step;    /* the longest time between two checks: a step with its log, eval and save */
    int installed;          /* the handlers are in place */
    char reason[256];       /* when preempt_check said stop: why, one phrase for the log */
} preempt_watch;

/* Installs the handlers (every rank) and, on rank 0, finds the job's end
 * time as --save_before_time_limit asks (auto: under Slurm when the job has
 * a time limit, or wherever SHARDTUNE_JOB_END_TIME is set; True: required, an error when none is known; False: not
 * watched).  0, or -1 with e set. */
int preempt_begin(preempt_watch *w, const run_config *c, int rank, errbuf *e);

/* At a step boundary, on every rank at once (a collective): 1 when the run
 * must stop before the next step, with w->reason set. */
int preempt_check(preempt_watch *w, comm *cm, int rank);

/* Puts back the handlers preempt_begin replaced (a no-op when it did not). */
void preempt_end(preempt_watch *w);

/* The job's end time from the environment and Slurm (0: unknown or no
 * limit); for the time-limit check and its test. */
time_t preempt_job_end_time(errbuf *e);

#endif
