/* fault_inject.c: test hooks (see fault_inject.h). */
#include "fault_inject.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int fault_nan_step(int step)
{
    const char *list = getenv("SHARDTUNE_FAULT_NAN_STEPS");
    while (list && *list) {
        char *end;
        long s = strtol(list, &end, 10);
        if (end == list)
            return 0;
        if (s == step)
            return 1;
        list = *end == ',' ? end + 1 : end + strlen(end);
    }
    return 0;
}

void fault_poison_grads(fsdp *f, int step, int rank, int world)
{
    if (rank != world - 1 || !fault_nan_step(step))
        return;
    const float nan = NAN;
    for (int i = 0; i < f->n_ranges; i++)
        if (f->shard_elems[i]) {
            f->be->copy_to_device(f->be, f->grad_shards[i], &nan, sizeof nan);
            return;
        }
}
