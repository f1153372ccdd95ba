/* train_log.c: metrics.jsonl and TensorBoard scalars (see train_log.h). */
#include "train_log.h"

#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "report_to.h"

/* metrics.jsonl: fresh, or on resume the lines up to the checkpoint's
 * step kept (a run killed after it logged steps that will be redone). */
static FILE *open_metrics(const char *path, int keep_until_step, errbuf *e)
{
    char tmp[4200];
    if (keep_until_step > 0) {
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        FILE *in = fopen(path, "r"), *out = fopen(tmp, "w");
        if (!out) {
            if (in)
                fclose(in);
            err_set(e, "%s: cannot write: %s", tmp, strerror(errno));
            return NULL;
        }
        char *line = NULL;
        size_t cap = 0;
        while (in && getline(&line, &cap, in) != -1) {
            json_t *row = json_loads(line, 0, NULL);
            json_t *st = row ? json_object_get(row, "step") : NULL;
            if (json_is_integer(st) && json_integer_value(st) <= keep_until_step)
                fputs(line, out);
            json_decref(row);
        }
        free(line);
        if (in)
            fclose(in);
        if (fclose(out) != 0 || rename(tmp, path) != 0) {
            err_set(e, "%s: cannot write: %s", path, strerror(errno));
            return NULL;
        }
    }
    FILE *f = fopen(path, keep_until_step > 0 ? "a" : "w");
    if (!f)
        err_set(e, "%s: cannot write: %s", path, strerror(errno));
    return f;
}

int train_log_open(train_log *l, const run_config *c, int keep_until_step, errbuf *e)
{
    int tensorboard;
    char others[256];
    if (report_to_parse(c->report_to, &tensorboard, others, sizeof others, e) != 0)
        return -1;
    snprintf(l->metrics_path, sizeof l->metrics_path, "%s/metrics.jsonl", c->output_dir);
    if (!(l->metrics = open_metrics(l->metrics_path, keep_until_step, e)))
        return -1;
    if (!tensorboard)
        return 0;
    char dir[4096];
    if (c->logging_dir)
        snprintf(dir, sizeof dir, "%s", c->logging_dir);
    else
        snprintf(dir, sizeof dir, "%s/runs", c->output_dir);
    if (!(l->tb = tb_open(dir, e)) || tb_session_start(l->tb, keep_until_step + 1, e) != 0)
        return -1;
    log_info("TensorBoard: %s", tb_path(l->tb));
    return 0;
}

/* A number as metrics.jsonl prints it, and that text read back: what
 * TensorBoard gets, so that both logs hold the same number (TensorBoard's
 * float32 of it), not two roundings of the unprinted double. */
typedef struct logged {
    char text[40];
    double value;
} logged;

static logged as_logged(const char *format, double v)
{
    logged x;
    snprintf(x.text, sizeof x.text, format, v);
    x.value = strtod(x.text, NULL);
    return x;
}

typedef struct scalar {
    const char *tag;
    double value;
} scalar;

static int tb_scalars(train_log *l, int step, const scalar *s, size_t n, errbuf *e)
{
    for (size_t i = 0; l->tb && i < n; i++)
        if (tb_scalar(l->tb, step, s[i].tag, s[i].value, e) != 0)
            return -1;
    return 0;
}

int train_log_step(train_log *l, int step, double epoch, double loss, double lr, double grad_norm,
                   double tokens_per_second, double mfu, size_t peak_bytes, errbuf *e)
{
    if (!l->metrics)
        return 0;
    const logged ep = as_logged("%.6g", epoch), lo = as_logged("%.9g", loss), rate = as_logged("%.9g", lr),
                 gn = as_logged("%.9g", grad_norm), tps = as_logged("%.6g", tokens_per_second),
                 mf = as_logged("%.6g", mfu);
    fprintf(l->metrics,
            "{\"step\": %d, \"epoch\": %s, \"loss\": %s, \"learning_rate\": %s, \"grad_norm\": %s, "
            "\"tokens_per_second\": %s, \"mfu\": %s, \"peak_bytes\": %zu}\n",
            step, ep.text, lo.text, rate.text, gn.text, tps.text, mfu >= 0 ? mf.text : "null", peak_bytes);
    fflush(l->metrics);
    /* transformers' names (its TensorBoardCallback puts train/ before each
     * key of the log); speed and memory under names of our own */
    const scalar s[] = {
        {"train/loss", lo.value},
        {"train/grad_norm", gn.value},
        {"train/learning_rate", rate.value},
        {"train/epoch", ep.value},
        {"train/tokens_per_second", tps.value},
        {"train/peak_mib", (double)peak_bytes / 1048576.0},
    };
    return tb_scalars(l, step, s, sizeof s / sizeof s[0], e);
}

int train_log_eval(train_log *l, int step, double epoch, double eval_loss, double eval_tokens, errbuf *e)
{
    if (!l->metrics)
        return 0;
    const logged ep = as_logged("%.6g", epoch), lo = as_logged("%.9g", eval_loss);
    fprintf(l->metrics, "{\"step\": %d, \"epoch\": %s, \"eval_loss\": %s, \"eval_tokens\": %.0f}\n", step, ep.text,
            lo.text, eval_tokens);
    fflush(l->metrics);
    const scalar s[] = {{"eval/loss", lo.value}};
    return tb_scalars(l, step, s, 1, e);
}

int train_log_skipped(train_log *l, int step, double epoch, double loss, double grad_norm, int in_a_row, int total)
{
    if (!l->metrics)
        return 0;
    /* JSON has no NaN: the values as text, under keys of their own so that
     * readers of "loss" and "grad_norm" never meet them */
    const logged ep = as_logged("%.6g", epoch), lo = as_logged("%.9g", loss), gn = as_logged("%.9g", grad_norm);
    fprintf(l->metrics,
            "{\"step\": %d, \"epoch\": %s, \"skipped_step\": true, \"skipped_loss\": \"%s\", "
            "\"skipped_grad_norm\": \"%s\", \"bad_steps_in_a_row\": %d, \"bad_steps\": %d}\n",
            step, ep.text, lo.text, gn.text, in_a_row, total);
    return fflush(l->metrics) == 0 ? 0 : -1;
}

int train_log_close(train_log *l, errbuf *e)
{
    int rc = 0;
    if (l->metrics && fclose(l->metrics) != 0)
        rc = err_set(e, "%s: write failed: %s", l->metrics_path, strerror(errno));
    if (tb_close(l->tb, rc == 0 ? e : NULL) != 0)
        rc = -1;
    l->metrics = NULL;
    l->tb = NULL;
    return rc;
}
