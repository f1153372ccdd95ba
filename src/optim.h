/* optim.h: AdamW over flat trainable ranges, gradient clipping, and the
 * learning-rate schedules of transformers. */
#ifndef SHARDTUNE_OPTIM_H
#define SHARDTUNE_OPTIM_H

#include <stddef.h>

#include "backend.h"
#include "log.h"

typedef enum lr_schedule {
    SCHED_CONSTANT, SCHED_CONSTANT_WITH_WARMUP, SCHED_LINEAR, SCHED_COSINE, N_SCHEDULES
} lr_schedule;

/* -1 for an unknown name; names as transformers' SchedulerType. */
int lr_schedule_from_name(const char *name);
/* Multiplier of the base learning rate at optimizer step `step` (0-based),
 * exactly as transformers.get_scheduler's lambdas compute it. */
double lr_schedule_factor(lr_schedule s, int step, int warmup_steps, int total_steps);

/* AdamW state over a set of flat ranges (one per unit: this rank's
 * shards of the trainable buffers; n_elems 0 for a unit without any). */
typedef struct optimizer {
    float beta1, beta2, eps, weight_decay;
    int step;          /* optimizer steps taken */
    int n_ranges;
    size_t *n_elems;
    float **m, **v;
} optimizer;

/* on_host: the moments live in host memory (fsdp_offload_params). */
void optim_init(optimizer *o, backend *be, int n_ranges, const size_t *n_elems, float beta1, float beta2,
                float eps, float weight_decay, int on_host);
void optim_free(optimizer *o, backend *be);
/* torch.nn.utils.clip_grad_norm_: scale by max/(norm+1e-6) when that is < 1.
 * Returns the factor applied (1 when none). */
float optim_clip(const optimizer *o, backend *be, float *const *grads, double grad_norm, double max_norm);
void optim_step(optimizer *o, backend *be, float *const *params, float *const *grads, float lr);

#endif
