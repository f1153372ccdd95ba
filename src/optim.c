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

const char *lr_schedule_name(lr_schedule s) { return schedule_names[s]; }

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

void optim_init(optimizer *o, model *mdl, float beta1, float beta2, float eps, float weight_decay)
{
    memset(o, 0, sizeof *o);
    o->beta1 = beta1, o->beta2 = beta2, o->eps = eps, o->weight_decay = weight_decay;
    o->n_units = mdl->n_units;
    o->m = xcalloc((size_t)mdl->n_units, sizeof *o->m);
    o->v = xcalloc((size_t)mdl->n_units, sizeof *o->v);
    backend *be = mdl->be;
    for (int ui = 0; ui < mdl->n_units; ui++) {
        size_t n = mdl->units[ui].n_train_elems;
        if (!n)
            continue;
        o->m[ui] = be->alloc(be, n * sizeof(float), MEM_OPTIMIZER);
        o->v[ui] = be->alloc(be, n * sizeof(float), MEM_OPTIMIZER);
    }
}

void optim_free(optimizer *o, model *mdl)
{
    for (int ui = 0; ui < o->n_units; ui++) {
        mdl->be->free(mdl->be, o->m[ui]);
        mdl->be->free(mdl->be, o->v[ui]);
    }
    free(o->m);
    free(o->v);
    memset(o, 0, sizeof *o);
}

double optim_grad_sum_squares(model *mdl)
{
    double total = 0.0;
    for (int ui = 0; ui < mdl->n_units; ui++)
        if (mdl->units[ui].grad)
            total += mdl->be->sum_squares(mdl->be, mdl->units[ui].grad, mdl->units[ui].n_train_elems);
    return total;
}

float optim_clip(model *mdl, double grad_norm, double max_norm)
{
    if (max_norm <= 0.0)
        return 1.0f;
    float coef = (float)(max_norm / (grad_norm + 1e-6));
    if (coef >= 1.0f)
        return 1.0f;
    for (int ui = 0; ui < mdl->n_units; ui++)
        if (mdl->units[ui].grad)
            mdl->be->scale(mdl->be, mdl->units[ui].grad, mdl->units[ui].n_train_elems, coef);
    return coef;
}

void optim_step(optimizer *o, model *mdl, float lr)
{
    o->step++;
    for (int ui = 0; ui < mdl->n_units; ui++) {
        model_unit *u = &mdl->units[ui];
        if (!u->n_train_elems)
            continue;
        mdl->be->adamw(mdl->be, u->train, u->grad, o->m[ui], o->v[ui], u->n_train_elems, lr, o->beta1,
                       o->beta2, o->eps, o->weight_decay, o->step);
    }
}
