/* bad_steps.c: skipping non-finite optimizer steps (see bad_steps.h). */
#include "bad_steps.h"

#include <math.h>

void bad_steps_init(bad_steps *b, int max_in_a_row, int start_step)
{
    *b = (bad_steps){.max_in_a_row = max_in_a_row, .last_good = start_step};
}

step_verdict bad_steps_judge(bad_steps *b, train_log *l, int step, double epoch, double loss, double grad_norm)
{
    if (isfinite(loss) && isfinite(grad_norm)) {
        b->in_a_row = 0;
        b->last_good = step;
        return STEP_APPLY;
    }
    b->in_a_row++;
    b->total++;
    log_info("step %d: loss %g, grad norm %g: not finite, step skipped (parameters and AdamW state untouched; "
             "%d in a row of --max_bad_steps %d, %d in this run)",
             step, loss, grad_norm, b->in_a_row, b->max_in_a_row, b->total);
    /* a metrics.jsonl that cannot be written is found again, and reported,
     * at the next logging step or when the log is closed */
    train_log_skipped(l, step, epoch, loss, grad_norm, b->in_a_row, b->total);
    return b->in_a_row >= b->max_in_a_row ? STEP_STOP : STEP_SKIP;
}

int bad_steps_refuse(const bad_steps *b, int step, double loss, double grad_norm, const char *saved_path, errbuf *e)
{
    return err_set(e, "step %d: loss %g, grad norm %g: %d non-finite steps in a row (--max_bad_steps %d): training "
                      "diverged (lower --learning_rate?); the last good state, step %d, is in %s",
                   step, loss, grad_norm, b->in_a_row, b->max_in_a_row, b->last_good, saved_path);
}
