/* plot_train.h: what `shardtune train` does for loss plots (plot_train.c),
 * on rank 0 only. */
#ifndef SHARDTUNE_PLOT_TRAIN_H
#define SHARDTUNE_PLOT_TRAIN_H

#include "config.h"

/* output_dir/training_args.json: the flags the plot's title names, so that
 * `shardtune plot` of the finished run draws the same title. */
int plot_train_args(const run_config *c, int world, errbuf *e);

/* output_dir/loss.png and loss.svg from metrics.jsonl so far.  A plot that
 * fails is a note, never the end of a run; final: the end of training,
 * where a build without cairo says once that no plot was written. */
void plot_train_draw(const char *output_dir, int final);

#endif
