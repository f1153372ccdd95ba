/* progress.c: the progress line (see progress.h). */
#include "progress.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>

#include "flops.h"
#include "log.h"

void progress_begin(progress *p, int live, int first_step, int total_steps, const llama_config *cfg,
                    double n_trainable, double peak_flops)
{
    p->live = live;
    p->first_step = first_step;
    p->total_steps = total_steps;
    p->t_start = p->t_last = monotonic_seconds();
    p->cfg = cfg;
    p->n_trainable = n_trainable;
    p->peak_flops = peak_flops;
    p->last[0] = 0;
}

void progress_hms(double seconds, char *out, size_t cap)
{
    if (!isfinite(seconds) || seconds < 0)
        seconds = 0;
    long s = lround(seconds);
    snprintf(out, cap, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

/* The fields after "loss ...": the rate (tokens/s) given, at the step's mean
 * row length. */
static void format_line(const progress *p, const progress_step_info *s, double tokens_per_second, char *out,
                        size_t cap)
{
    double now = monotonic_seconds(), elapsed = now - p->t_start;
    int done = s->step - p->first_step, left = p->total_steps - s->step;
    double eta = done > 0 ? elapsed / done * left : 0.0;
    double tflops = model_flops_per_token(p->cfg, s->row_len, p->n_trainable) * tokens_per_second / 1e12;
    char mfu[32], el[32], et[32];
    if (p->peak_flops > 0)
        snprintf(mfu, sizeof mfu, "%.1f%%", 100.0 * progress_mfu(p, s->row_len, tokens_per_second));
    else
        snprintf(mfu, sizeof mfu, "-");
    progress_hms(elapsed, el, sizeof el);
    progress_hms(eta, et, sizeof et);
    snprintf(out, cap,
             "step %d/%d (%d%%) | epoch %.2f | loss %.4f | lr %.3e | grad_norm %.4f | %.0f tok/s | %.3g TFLOP/s | "
             "MFU %s | peak %.1f MiB | elapsed %s | ETA %s",
             s->step, p->total_steps, (int)(100.0 * s->step / p->total_steps), s->epoch, s->loss, s->lr,
             s->grad_norm, tokens_per_second, tflops, mfu, s->peak_bytes / 1048576.0, el, et);
}

void progress_step(progress *p, const progress_step_info *s, int log_line)
{
    double now = monotonic_seconds(), dt = now - p->t_last;
    p->t_last = now;
    char line[512];
    if (log_line) {
        format_line(p, s, s->tokens_per_second, line, sizeof line);
        log_info("%s", line);
    }
    if (p->live) { /* this step's own rate */
        format_line(p, s, dt > 0 ? s->tokens / dt : 0.0, p->last, sizeof p->last);
        log_live("%s", p->last);
    }
}

double progress_mfu(const progress *p, double row_len, double tokens_per_second)
{
    if (p->peak_flops <= 0)
        return -1.0;
    return model_flops_per_token(p->cfg, row_len, p->n_trainable) * tokens_per_second / p->peak_flops;
}

void progress_end(progress *p)
{
    if (!p->live)
        return;
    if (p->last[0]) /* over an evaluation's or a save's line */
        log_live("%s", p->last);
    log_live_end();
}

void progress_live(const progress *p, const char *fmt, ...)
{
    if (!p || !p->live)
        return;
    char line[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    log_live("%s", line);
}
