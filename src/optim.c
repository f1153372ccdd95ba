/* optim.c: AdamW, clipping and schedules (see optim.h). */
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const schedule_names[N_SCHEDULES] = {"constant", "constant_with_warmup", "linear",
                                                        "cosine"};

int lr_schedule_from_name(const char *name)
{
    for (int i = 0; i < N_SCHEDULES; i++)
        if (strcmp(name, schedule_names[i]) == 0)
            return i;
    return -1;
}

double lr_schedule_factor(lr_schedule s, int step, int warmup_steps, int total_steps)
{
    if (s == SCHED_CONSTANT)
        return 1.0;
    if (step < warmup_steps)
        return (double)step / (double)(warmup_steps > 1 ? warmup_steps : 1);
    if (s == SCHED_CONSTANT_WITH_WARMUP)
        return 1.0;
    int span = total_steps - warmup_steps;
    double progress = (double)(step - warmup_steps) / (double)(span > 1 ? span : 1);
    if (s == SCHED_LINEAR) {
        double f = (double)(total_steps - step) / (double)(span > 1 ? span : 1);
        return f > 0.0 ? f : 0.0;
    }
    /* cosine with num_cycles = 0.5 */
    double f = 0.5 * (1.0 + cos(M_PI * 0.5 * 2.0 * progress));
    return f > 0.0 ? f : 0.0;
}

void optim_init(optimizer *o, backend *be, int n_ranges, const size_t *n_elems, float beta1, float beta2,
                float eps, float weight_decay, int on_host)
{
    void *(*alloc)(backend *, size_t, mem_category) = on_host ? be->alloc_host : be->alloc;
    memset(o, 0, sizeof *o);
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
    o->n_ranges = n_ranges;
    o->n_elems = xcalloc((size_t)n_ranges, sizeof *o->n_elems);
    o->m = xcalloc((size_t)n_ranges, sizeof *o->m);
    o->v = xcalloc((size_t)n_ranges, sizeof *o->v);
    for (int i = 0; i < n_ranges; i++) {
        o->n_elems[i] = n_elems[i];
        if (!n_elems[i])
            continue;
        o->m[i] = alloc(be, n_elems[i] * sizeof(float), MEM_OPTIMIZER);
        o->v[i] = alloc(be, n_elems[i] * sizeof(float), MEM_OPTIMIZER);
    }
}

void optim_free(optimizer *o, backend *be)
{
    for (int i = 0; i < o->n_ranges; i++) {
        be->free(be, o->m[i]);
        be->free(be, o->v[i]);
    }
    free(o->n_elems);
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

float optim_clip(const optimizer *o, backend *be, float *const *grads, double grad_norm, double max_norm)
{
    if (max_norm <= 0.0)
        return 1.0f;
    float coef = (float)(max_norm / (grad_norm + 1e-6));
    if (coef >= 1.0f)
        return 1.0f;
    for (int i = 0; i < o->n_ranges; i++)
        if (o->n_elems[i])
            be->scale(be, grads[i], o->n_elems[i], coef);
    return coef;
}

void optim_step(optimizer *o, backend *be, float *const *params, float *const *grads, float lr)
{
    o->step++;
    for (int i = 0; i < o->n_ranges; i++)
        if (o->n_elems[i])
            be->adamw(be, params[i], grads[i], o->m[i], o->v[i], o->n_elems[i], lr, o->beta1, o->beta2, o->eps,
                      o->weight_decay, o->step);
}
