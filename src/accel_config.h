/* accel_config.h: the Hugging Face accelerate configuration of a run.
 *
 * shardtune takes its data-parallel settings from the YAML file that
 * `accelerate config` writes (the ones the PEFT FSDP guide ships are in
 * jobs/configs/), so that a user moves a job between accelerate and shardtune
 * without translating anything.  Order of precedence, lowest first:
 * accel_config_defaults, then the file (accel_config_load_yaml), then the
 * environment variables accelerate's launcher passes to the training process
 * (accel_config_apply_env) -- an explicit variable wins over the file, as an
 * `accelerate launch --fsdp_...` flag wins over the config file.
 *
 * distributed_type: FSDP shards; NO, MULTI_CPU and MULTI_GPU mean plain data
 * parallelism, which is FSDP's NO_SHARD (full replica on every rank,
 * gradients all-reduced), so they load as distributed_fsdp = 0 with
 * sharding_strategy NO_SHARD; any other type is refused. */
#ifndef SHARDTUNE_ACCEL_CONFIG_H
#define SHARDTUNE_ACCEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* The order is accelerate's (and torch's ShardingStrategy): value + 1 is the
 * old numeric form 1..4 that accelerate still accepts. */
typedef enum { FSDP_FULL_SHARD, FSDP_SHARD_GRAD_OP, FSDP_NO_SHARD, FSDP_HYBRID_SHARD } fsdp_strategy;
typedef enum { PREFETCH_NONE, PREFETCH_BACKWARD_PRE, PREFETCH_BACKWARD_POST } fsdp_backward_prefetch;
typedef enum { STATE_DICT_SHARDED, STATE_DICT_FULL } fsdp_state_dict_type;

/* Room for the notes of one load: about 70 bytes a line, and a file that
 * accelerate writes has at most ~25 keys. */
#define ACCEL_NOTES_BYTES 4096

typedef struct accel_config {
    int distributed_fsdp;               /* 1: distributed_type FSDP */
    fsdp_strategy sharding_strategy;
    fsdp_backward_prefetch backward_prefetch;
    int forward_prefetch;
    int offload_params;
    int cpu_ram_efficient_loading;
    int sync_module_states;
    fsdp_state_dict_type state_dict_type;
    int use_orig_params;
    int activation_checkpointing;
    char mixed_precision[8];            /* "no", "bf16" or "fp16" */
    int num_processes;                  /* -1: unset (the MPI world decides) */
    int num_machines;
    int machine_rank;
    /* What was accepted but does not act (keys that describe accelerate's
     * launcher, a wrap policy shardtune does not have, ...): n_notes lines,
     * each ending in '\n', for rank 0 to print.  Not part of the hash. */
    int n_notes;
    char notes[ACCEL_NOTES_BYTES];
} accel_config;

/* The defaults of `accelerate config`'s FSDP questionnaire: FULL_SHARD,
 * BACKWARD_PRE, no forward prefetch, no offload, cpu_ram_efficient_loading
 * and sync_module_states on, SHARDED_STATE_DICT, use_orig_params and
 * activation_checkpointing off, mixed_precision "no", num_processes -1,
 * one machine, machine_rank 0.  distributed_fsdp is 1. */
void accel_config_defaults(accel_config *c);

/* Resets c to the defaults and reads an accelerate config file over them.
 * Fails (c untouched) on: a file that is not YAML or not a mapping, a
 * missing or unsupported distributed_type, an unknown key (the message names
 * the closest valid key), a value of the wrong type or outside the allowed
 * names (the message lists them).  A null value keeps the default. */
int accel_config_load_yaml(const char *path, accel_config *c, errbuf *e);

/* Applies the variables accelerate's launcher sets for these settings:
 * ACCELERATE_USE_FSDP, FSDP_SHARDING_STRATEGY, FSDP_BACKWARD_PREFETCH,
 * FSDP_FORWARD_PREFETCH, FSDP_OFFLOAD_PARAMS, FSDP_CPU_RAM_EFFICIENT_LOADING,
 * FSDP_SYNC_MODULE_STATES, FSDP_STATE_DICT_TYPE, FSDP_USE_ORIG_PARAMS,
 * FSDP_ACTIVATION_CHECKPOINTING, ACCELERATE_MIXED_PRECISION.  Unset or empty
 * variables change nothing; FSDP_* act only when FSDP is on (as in
 * accelerate) but are checked always.  Each override adds a note.  A bad
 * value fails, c untouched. */
int accel_config_apply_env(accel_config *c, errbuf *e);

/* FNV-1a over a canonical text of every setting that must agree across
 * ranks (all but machine_rank, which differs per machine, and the notes). */
uint64_t accel_config_hash(const accel_config *c);

/* One line for the log, e.g. "FSDP FULL_SHARD, backward_prefetch ...". */
void accel_config_describe(const accel_config *c, char *buf, size_t n_bytes);

/* Prints each note on rank 0 as "note: <line>". */
void accel_config_print_notes(const accel_config *c);

/* accelerate's spelling of each value. */
const char *fsdp_strategy_name(fsdp_strategy s);
const char *fsdp_backward_prefetch_name(fsdp_backward_prefetch p); /* NO_PREFETCH for none */
const char *fsdp_state_dict_type_name(fsdp_state_dict_type t);

#endif
