/* accel_check.c: see accel_check.h. */
#include "accel_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void need(int ok, const char *who, const char *what)
{
    if (!ok) {
        fprintf(stderr, "%s: loaded config breaks its promise: %s\n", who, what);
        abort();
    }
}

static int is_flag(int v) { return v == 0 || v == 1; }

void accel_check(const accel_config *c, const char *who)
{
    need(is_flag(c->distributed_fsdp), who, "distributed_fsdp is 0 or 1");
    need((unsigned)c->sharding_strategy <= FSDP_HYBRID_SHARD, who, "sharding_strategy is an fsdp_strategy");
    need(c->distributed_fsdp || c->sharding_strategy == FSDP_NO_SHARD, who, "no FSDP means NO_SHARD");
    need((unsigned)c->backward_prefetch <= PREFETCH_BACKWARD_POST, who, "backward_prefetch is an enum value");
    need(c->state_dict_type == STATE_DICT_SHARDED || c->state_dict_type == STATE_DICT_FULL, who,
         "state_dict_type is an enum value");
    need(is_flag(c->forward_prefetch) && is_flag(c->offload_params) && is_flag(c->cpu_ram_efficient_loading) &&
             is_flag(c->sync_module_states) && is_flag(c->use_orig_params) && is_flag(c->activation_checkpointing),
         who, "every flag is 0 or 1");
    need(!c->cpu_ram_efficient_loading || c->sync_module_states, who,
         "cpu_ram_efficient_loading implies sync_module_states");
    need(!strcmp(c->mixed_precision, "no") || !strcmp(c->mixed_precision, "fp16") ||
             !strcmp(c->mixed_precision, "bf16"),
         who, "mixed_precision is no, fp16 or bf16");
    need(c->num_processes == -1 || c->num_processes >= 1, who, "num_processes is -1 or positive");
    need(c->num_machines >= 1 && c->machine_rank >= 0 && c->machine_rank < c->num_machines, who,
         "0 <= machine_rank < num_machines");
    /* notes: NUL-terminated inside the buffer, n_notes lines each ending in '\n' */
    size_t len = strnlen(c->notes, sizeof c->notes);
    need(len < sizeof c->notes, who, "notes are NUL-terminated");
    int lines = 0;
    for (size_t i = 0; i < len; i++)
        lines += c->notes[i] == '\n';
    need(lines == c->n_notes && (len == 0 || c->notes[len - 1] == '\n'), who,
         "notes are n_notes lines, each ending in a newline");
    char text[1024];
    accel_config_describe(c, text, sizeof text);
    need(text[0] && !strchr(text, '\n'), who, "the description is one line");
    (void)accel_config_hash(c);
}
