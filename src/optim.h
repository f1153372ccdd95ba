/* optim.h: AdamW over the model's flat trainable buffers, global gradient
 * norm clipping, and the learning-rate schedules of transformers. */
#ifndef SHARDTUNE_OPTIM_H
#define SHARDTUNE_OPTIM_H

#include "model.h"

typedef enum lr_schedule {
    SCHED_CONSTANT, SCHED_CONSTANT_WITH_WARMUP, SCHED_LINEAR, SCHED_COSINE, N_SCHEDULES
} lr_schedule;

/* -1 for an unknown name; names as transformers' SchedulerType. */
int lr_schedule_from_name(const char *name);
const char *lr_schedule_name(lr_schedule s);
/* Multiplier of the base learning rate at optimizer step `step` (0-based),
 * exactly as transformers.get_scheduler's lambdas compute it. */
double lr_schedule_factor(lr_schedule s, int step, int warmup_steps, int total_steps);

typedef struct optimizer {
    float beta1, beta2, eps, weight_decay;
    int step;          /* optimizer steps taken */
    int n_units;
    float **m, **v;    /* per unit, same layout as the unit's trainable buffer */
} optimizer;

void optim_init(optimizer *o, model *mdl, float beta1, float beta2, float eps, float weight_decay);
void optim_free(optimizer *o, model *mdl);
/* Sum of squares of every gradient of this rank's buffers. */
double optim_grad_sum_squares(model *mdl);
/* torch.nn.utils.clip_grad_norm_: scale by max/(norm+1e-6) when that is < 1.
 * Returns the factor applied (1 when none). */
float optim_clip(model *mdl, double grad_norm, double max_norm);
void optim_step(optimizer *o, model *mdl, float lr);

#endif
