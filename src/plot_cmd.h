/* plot_cmd.h: `shardtune plot` (plot_cmd.c), and the plot of one run
 * directory that train also draws. */
#ifndef SHARDTUNE_PLOT_CMD_H
#define SHARDTUNE_PLOT_CMD_H

#include "log.h"

/* DIR/loss.png and DIR/loss.svg from DIR/metrics.jsonl (and its
 * training_args.json, for the title). */
int plot_write_dir(const char *dir, errbuf *e);

/* argv after the command name; returns the exit status (dies on errors). */
int plot_main(int argc, char **argv);

#endif
