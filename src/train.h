/* train.h: the training loop and evaluation. */
#ifndef SHARDTUNE_TRAIN_H
#define SHARDTUNE_TRAIN_H

#include "config.h"

/* train_run's result when a signal or the job's time limit stopped the run
 * after it saved a checkpoint (src/preempt.h; the program exits with
 * EXIT_PREEMPTED). */
enum { TRAIN_STOPPED = 1 };

/* shardtune train / eval: 0, or -1 with e set (train: or TRAIN_STOPPED).
 * argc/argv are the command's flags (ranks check that they all got the same). */
int train_run(const run_config *c, int argc, char **argv, errbuf *e);
int eval_run(const run_config *c, int argc, char **argv, errbuf *e);

/* shardtune export CHECKPOINT --out DIR: the PEFT adapter of a checkpoint. */
int export_run(const char *checkpoint, const char *out_dir, errbuf *e);

#endif
