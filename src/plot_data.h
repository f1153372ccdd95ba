/* plot_data.h: what a loss plot shows, read from a run directory.
 *
 * A run is its metrics.jsonl (the series) and, when `shardtune train`
 * wrote one, its training_args.json (the hyper-parameters for the title).
 * plot_data.c knows nothing of cairo, so that it builds everywhere. */
#ifndef SHARDTUNE_PLOT_DATA_H
#define SHARDTUNE_PLOT_DATA_H

#include <stddef.h>

#include "log.h"

enum { PLOT_LOSS, PLOT_EVAL_LOSS, PLOT_LR, PLOT_N_SERIES };

/* (step, value) pairs in file order; NaN and inf values are never stored. */
typedef struct plot_series {
    size_t n, cap;
    double *x, *y;
} plot_series;

/* training_args.json: the flags a title names (have = 0: none was found). */
typedef struct plot_args {
    int have;
    char model[256]; /* basename of --model_name_or_path */
    char scheduler[64];
    double learning_rate, lora_alpha;
    int lora_r, batch_size, grad_accum, world_size, max_seq_len, use_dora, use_4bit;
} plot_args;

typedef struct plot_run {
    char *label; /* the run directory as the user named it */
    plot_series s[PLOT_N_SERIES];
    plot_args args;
} plot_run;

/* Appends the series of one metrics.jsonl.  Lines without "step" and keys
 * it does not know are skipped; a line that is not a JSON object is an
 * error naming file:line.  NaN/Infinity (bare, as printf and Python's json
 * write them) count as missing values. */
int plot_read_metrics(plot_run *r, const char *path, errbuf *e);

/* dir/metrics.jsonl (required) and dir/training_args.json (optional). */
int plot_run_read(plot_run *r, const char *dir, errbuf *e);
void plot_run_free(plot_run *r);

/* Writes dir/training_args.json (tmp + rename). */
int plot_args_write(const char *dir, const plot_args *a, errbuf *e);

/* "MODEL | lr ... | LoRA r=.. alpha=.. | batch B x G accum x N rank(s) | ..."
 * for one run, "N runs[: MODEL]" for several. */
void plot_title(const plot_run *runs, int n_runs, char *out, size_t size);
/* A run's legend text when several are overlaid: its dir and lr, r. */
void plot_run_legend(const plot_run *r, char *out, size_t size);

/* Writes tmp, then renames it to path, so that a reader never sees half a
 * file (an interrupted run leaves at most PATH.tmp.PID behind). */
int plot_tmp_path(const char *path, char *tmp, size_t size);
int plot_commit_tmp(const char *tmp, const char *path, errbuf *e);

#endif
