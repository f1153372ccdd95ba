/* train_log.h: what train logs at each logging and evaluation step, on
 * rank 0: metrics.jsonl always, TensorBoard event files with --report_to
 * tensorboard.  One function writes both, from the same formatted numbers,
 * so that a TensorBoard scalar is the float32 of the metrics.jsonl value. */
#ifndef SHARDTUNE_TRAIN_LOG_H
#define SHARDTUNE_TRAIN_LOG_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "tb_events.h"

typedef struct train_log {
    FILE *metrics; /* OUTPUT_DIR/metrics.jsonl */
    char metrics_path[4096];
    tb_writer *tb; /* NULL without --report_to tensorboard */
} train_log;

/* metrics.jsonl: fresh, or on resume (keep_until_step > 0) the lines up to
 * the checkpoint's step kept.  TensorBoard the same way: a new file in
 * --logging_dir (TensorBoard reads the directory's files in turn) that
 * starts with a SessionLog START at step keep_until_step + 1, so that
 * TensorBoard drops an earlier run's later steps.  0, or -1 with e set. */
int train_log_open(train_log *l, const run_config *c, int keep_until_step, errbuf *e);

/* The logs of an optimizer step (transformers' train/ tags; mfu < 0:
 * unknown, null in metrics.jsonl) and of an evaluation (eval/loss).  No-ops
 * on an unopened log (ranks other than 0). */
int train_log_step(train_log *l, int step, double epoch, double loss, double lr, double grad_norm,
                   double tokens_per_second, double mfu, size_t peak_bytes, errbuf *e);
int train_log_eval(train_log *l, int step, double epoch, double eval_loss, double eval_tokens, errbuf *e);

/* A step skipped for a non-finite loss or gradient norm (bad_steps.h):
 * one metrics.jsonl record, with "skipped_step": true and no "loss" key. */
int train_log_skipped(train_log *l, int step, double epoch, double loss, double grad_norm, int in_a_row, int total);

/* Closes both files: 0, or -1 with e set when a write failed. */
int train_log_close(train_log *l, errbuf *e);

#endif
