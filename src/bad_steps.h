/* bad_steps.h: what training does with an optimizer step whose loss or
 * gradient norm is not finite (NaN or inf): the step is judged before the
 * gradients are clipped and applied, so a bad one is skipped whole (the
 * parameters, the AdamW moments and its step count untouched; the
 * gradients dropped), counted and logged; --max_bad_steps such steps in a
 * row stop the run, which then saves the last good state.  The loss and
 * the gradient norm are global (summed over the ranks), so every rank
 * takes the same decision and the collectives stay in step. */
#ifndef SHARDTUNE_BAD_STEPS_H
#define SHARDTUNE_BAD_STEPS_H

#include "log.h"
#include "train_log.h"

typedef struct bad_steps {
    int max_in_a_row; /* --max_bad_steps */
    int in_a_row;     /* bad steps since the last good one */
    int total;        /* bad steps of this run */
    int last_good;    /* optimizer steps done when the parameters last changed */
} bad_steps;

typedef enum step_verdict { STEP_APPLY, STEP_SKIP, STEP_STOP } step_verdict;

/* start_step: the steps done before this run (a resumed checkpoint's). */
void bad_steps_init(bad_steps *b, int max_in_a_row, int start_step);

/* Judges step `step` (1-based, as logged).  Finite: STEP_APPLY.  Else the
 * step is counted and logged (a line, and a metrics.jsonl record through
 * l, which is unopened on ranks other than 0): STEP_SKIP, or STEP_STOP when
 * it is the max_in_a_row-th bad step in a row. */
step_verdict bad_steps_judge(bad_steps *b, train_log *l, int step, double epoch, double loss, double grad_norm);

/* The one-line error of a stopped run; saved_path: the checkpoint holding
 * the last good state. */
int bad_steps_refuse(const bad_steps *b, int step, double loss, double grad_norm, const char *saved_path, errbuf *e);

#endif
