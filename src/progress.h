/* progress.h: what a watching user sees of a training run, on rank 0.
 *
 * On a terminal (rank 0's stderr is a TTY and no --disable_tqdm), one live
 * line redrawn every step; the --logging_steps lines are printed above it.
 * In a batch log only the --logging_steps lines.  Both carry: step/total and
 * percent, epoch, loss, learning rate, grad norm, tokens/s, achieved TFLOP/s
 * and MFU (flops.h), peak memory, elapsed time and ETA:
 *
 *   step 12/100 (12%) | epoch 0.36 | loss 2.3456 | lr 1.000e-04 | grad_norm 0.1234 |
 *   1234 tok/s | 0.012 TFLOP/s | MFU 3.1% | peak 120.0 MiB | elapsed 0:00:12 | ETA 0:01:30
 *
 * (one line; MFU is "MFU -" where the peak is unknown).  The ETA is the
 * mean time per step of this process's steps so far times the steps left.
 * Evaluation and saves show their own live line while they run
 * (progress_live) and print their result lines (train.c). */
#ifndef SHARDTUNE_PROGRESS_H
#define SHARDTUNE_PROGRESS_H

#include <stddef.h>

#include "hf_config.h"

typedef struct progress {
    int live;                 /* redraw a line in place every step */
    int total_steps, first_step;
    double t_start, t_last;   /* monotonic seconds: start, the previous step's end */
    const llama_config *cfg;
    double n_trainable;
    double peak_flops;        /* all ranks, FLOP/s; 0: unknown */
    char last[512];           /* the last step's live line: the final state on screen */
} progress;

/* What one step reports. */
typedef struct progress_step_info {
    int step;                 /* 1-based, done */
    double epoch, loss, lr, grad_norm;
    double tokens;            /* trained this step (padded rows), all ranks */
    double row_len;           /* mean row length (rank 0's rows): the attention's FLOPs */
    double tokens_per_second; /* for the log line: since the previous log line */
    size_t peak_bytes;
} progress_step_info;

/* live: the caller's decision (terminal and not --disable_tqdm). */
void progress_begin(progress *p, int live, int first_step, int total_steps, const llama_config *cfg,
                    double n_trainable, double peak_flops);
/* Every step; log_line: this step is a --logging_steps one. */
void progress_step(progress *p, const progress_step_info *s, int log_line);
void progress_end(progress *p);
/* A live line of evaluation or a save in progress (nothing without a
 * live terminal, or with p NULL); the next step's line replaces it. */
void progress_live(const progress *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Model FLOPs utilization (0..1) at this rate and mean row length; -1 when
 * the peak is unknown. */
double progress_mfu(const progress *p, double row_len, double tokens_per_second);

/* "1:02:03" (h:mm:ss) of seconds, into out. */
void progress_hms(double seconds, char *out, size_t cap);

#endif
