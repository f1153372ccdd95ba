/* accel_check.h: what a loaded accel_config promises (src/accel_config.h),
 * checked by the fuzz targets of the YAML file and of the environment. */
#ifndef SHARDTUNE_ACCEL_CHECK_H
#define SHARDTUNE_ACCEL_CHECK_H

#include "accel_config.h"

/* Aborts, naming who and the field, unless every field of c is in its
 * range: the enums are enum values, the flags 0 or 1, mixed_precision one of
 * its three names, num_processes -1 or positive, 0 <= machine_rank <
 * num_machines, no FSDP only with NO_SHARD, sync_module_states on with
 * cpu_ram_efficient_loading, n_notes lines in notes; and the hash and the
 * description can be made. */
void accel_check(const accel_config *c, const char *who);

#endif
