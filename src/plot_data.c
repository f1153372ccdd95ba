/* plot_data.c: metrics.jsonl and training_args.json into plot_run (see
 * plot_data.h); the title text. */
#include "plot_data.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static void series_push(plot_series *s, double x, double y)
{
    if (!isfinite(x) || !isfinite(y))
        return;
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        double *nx = xmalloc(s->cap * sizeof *nx), *ny = xmalloc(s->cap * sizeof *ny);
        if (s->n) {
            memcpy(nx, s->x, s->n * sizeof *nx);
            memcpy(ny, s->y, s->n * sizeof *ny);
        }
        free(s->x);
        free(s->y);
        s->x = nx;
        s->y = ny;
    }
    s->x[s->n] = x;
    s->y[s->n] = y;
    s->n++;
}

/* jansson refuses NaN and Infinity, which printf's "%g" (an eval over no
 * tokens) and Python's json.dumps write: outside strings, a bare word nan,
 * inf or infinity (any case, signed or not) becomes null. */
static char *nonfinite_to_null(const char *line)
{
    size_t n = strlen(line);
    char *out = xmalloc(2 * n + 8), *o = out;
    int in_string = 0;
    for (size_t i = 0; i < n;) {
        char ch = line[i];
        if (in_string) {
            *o++ = ch;
            if (ch == '\\' && i + 1 < n)
                *o++ = line[++i];
            else if (ch == '"')
                in_string = 0;
            i++;
            continue;
        }
        if (ch == '"')
            in_string = 1;
        size_t j = i + ((ch == '-' || ch == '+') ? 1 : 0), k = j;
        while (k < n && isalpha((unsigned char)line[k]))
            k++;
        if (k > j && ((k - j == 3 && (!strncasecmp(line + j, "nan", 3) || !strncasecmp(line + j, "inf", 3))) ||
                      (k - j == 8 && !strncasecmp(line + j, "infinity", 8)))) {
            memcpy(o, "null", 4);
            o += 4;
            i = k;
            continue;
        }
        if (k > j) { /* another word (true, null...): copied whole */
            memcpy(o, line + i, k - i);
            o += k - i;
            i = k;
            continue;
        }
        *o++ = ch;
        i++;
    }
    *o = '\0';
    return out;
}

static const char *const series_key[PLOT_N_SERIES] = {"loss", "eval_loss", "learning_rate"};

int plot_read_metrics(plot_run *r, const char *path, errbuf *e)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return err_set(e, "%s: cannot read: %s", path, strerror(errno));
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    int rc = 0;
    while (getline(&line, &cap, f) != -1) {
        lineno++;
        if (strspn(line, " \t\r\n") == strlen(line))
            continue;
        char *clean = nonfinite_to_null(line);
        json_error_t je;
        json_t *row = json_loads(clean, 0, &je);
        free(clean);
        if (!json_is_object(row)) {
            rc = err_set(e, "%s:%zu: not a JSON object%s%s", path, lineno, row ? "" : ": ", row ? "" : je.text);
            json_decref(row);
            break;
        }
        json_t *step = json_object_get(row, "step");
        for (int k = 0; k < PLOT_N_SERIES && json_is_number(step); k++) {
            json_t *v = json_object_get(row, series_key[k]);
            if (json_is_number(v))
                series_push(&r->s[k], json_number_value(step), json_number_value(v));
        }
        json_decref(row);
    }
    if (rc == 0 && ferror(f))
        rc = err_set(e, "%s: read failed: %s", path, strerror(errno));
    free(line);
    fclose(f);
    return rc;
}

static void copy_string(char *dst, size_t size, json_t *v, const char *fallback)
{
    snprintf(dst, size, "%s", json_is_string(v) ? json_string_value(v) : fallback);
}

static int read_args(plot_args *a, const char *path, errbuf *e)
{
    memset(a, 0, sizeof *a);
    if (access(path, F_OK) != 0)
        return 0; /* a run from before plots, or from another tool: no title details */
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    if (!json_is_object(o)) {
        json_decref(o);
        return err_set(e, "%s:%d: not a JSON object: %s", path, je.line, je.text);
    }
    copy_string(a->model, sizeof a->model, json_object_get(o, "model"), "?");
    copy_string(a->scheduler, sizeof a->scheduler, json_object_get(o, "lr_scheduler_type"), "");
    a->learning_rate = json_number_value(json_object_get(o, "learning_rate"));
    a->lora_alpha = json_number_value(json_object_get(o, "lora_alpha"));
    a->lora_r = (int)json_integer_value(json_object_get(o, "lora_r"));
    a->batch_size = (int)json_integer_value(json_object_get(o, "per_device_train_batch_size"));
    a->grad_accum = (int)json_integer_value(json_object_get(o, "gradient_accumulation_steps"));
    a->world_size = (int)json_integer_value(json_object_get(o, "world_size"));
    a->max_seq_len = (int)json_integer_value(json_object_get(o, "max_seq_len"));
    a->use_dora = json_is_true(json_object_get(o, "use_dora"));
    a->use_4bit = json_is_true(json_object_get(o, "use_4bit_quantization"));
    a->have = 1;
    json_decref(o);
    return 0;
}

int plot_run_read(plot_run *r, const char *dir, errbuf *e)
{
    memset(r, 0, sizeof *r);
    r->label = xstrdup(dir);
    char path[4200];
    snprintf(path, sizeof path, "%s/metrics.jsonl", dir);
    if (plot_read_metrics(r, path, e) != 0)
        return -1;
    snprintf(path, sizeof path, "%s/training_args.json", dir);
    return read_args(&r->args, path, e);
}

void plot_run_free(plot_run *r)
{
    for (int k = 0; k < PLOT_N_SERIES; k++) {
        free(r->s[k].x);
        free(r->s[k].y);
    }
    free(r->label);
    memset(r, 0, sizeof *r);
}

int plot_tmp_path(const char *path, char *tmp, size_t size)
{
    return snprintf(tmp, size, "%s.tmp.%ld", path, (long)getpid()) < (int)size ? 0 : -1;
}

int plot_commit_tmp(const char *tmp, const char *path, errbuf *e)
{
    if (rename(tmp, path) != 0) {
        int err = errno;
        unlink(tmp);
        return err_set(e, "%s: cannot write: %s", path, strerror(err));
    }
    return 0;
}

int plot_args_write(const char *dir, const plot_args *a, errbuf *e)
{
    char path[4200], tmp[4300];
    snprintf(path, sizeof path, "%s/training_args.json", dir);
    if (plot_tmp_path(path, tmp, sizeof tmp) != 0)
        return err_set(e, "%s: path too long", path);
    json_t *o = json_pack("{s:s, s:f, s:s, s:i, s:f, s:i, s:i, s:i, s:i, s:b, s:b}", "model", a->model,
                          "learning_rate", a->learning_rate, "lr_scheduler_type", a->scheduler, "lora_r", a->lora_r,
                          "lora_alpha", a->lora_alpha, "per_device_train_batch_size", a->batch_size,
                          "gradient_accumulation_steps", a->grad_accum, "world_size", a->world_size, "max_seq_len",
                          a->max_seq_len, "use_dora", a->use_dora, "use_4bit_quantization", a->use_4bit);
    int rc = o ? json_dump_file(o, tmp, JSON_INDENT(2)) : -1;
    json_decref(o);
    if (rc != 0) {
        unlink(tmp);
        return err_set(e, "%s: cannot write", tmp);
    }
    return plot_commit_tmp(tmp, path, e);
}

void plot_title(const plot_run *runs, int n_runs, char *out, size_t size)
{
    const plot_args *a = &runs[0].args;
    if (n_runs > 1) {
        int same = a->have;
        for (int i = 1; i < n_runs; i++)
            same = same && runs[i].args.have && !strcmp(runs[i].args.model, a->model);
        snprintf(out, size, "%d runs%s%s", n_runs, same ? ": " : "", same ? a->model : "");
        return;
    }
    if (!a->have) { /* no training_args.json: the dir is all we know */
        snprintf(out, size, "%s", runs[0].label);
        return;
    }
    snprintf(out, size, "%s | lr %g %s | %s r=%d alpha=%g | batch %d x %d accum x %d rank%s | max_seq_len %d%s",
             a->model, a->learning_rate, a->scheduler, a->use_dora ? "DoRA" : "LoRA", a->lora_r, a->lora_alpha,
             a->batch_size, a->grad_accum, a->world_size, a->world_size == 1 ? "" : "s", a->max_seq_len,
             a->use_4bit ? " | 4-bit" : "");
}

void plot_run_legend(const plot_run *r, char *out, size_t size)
{
    if (r->args.have)
        snprintf(out, size, "%s (lr %g, r=%d, batch %dx%d)", r->label, r->args.learning_rate, r->args.lora_r,
                 r->args.batch_size, r->args.grad_accum);
    else
        snprintf(out, size, "%s", r->label);
}
