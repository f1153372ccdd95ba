/* fuzz_accel_env.c: libFuzzer target for the launcher's environment
 * (accel_config_apply_env, src/accel_config.c): ACCELERATE_* and FSDP_*
 * variables, which a job script or a stale shell sets.
 *
 * An input is NAME=VALUE lines.  The lines whose NAME is one the code reads
 * are set with setenv (a later line wins, as in a shell); the other lines
 * are skipped.  The first byte picks the config the variables apply to
 * (FSDP, or data parallelism as a NO/MULTI_GPU file loads it), so both
 * paths of ACCELERATE_USE_FSDP are reached.  Every variable is unset after
 * the run, so inputs do not leak into each other.  Checked: a refusal is one
 * non-empty line and leaves the config untouched; an application gives a
 * config whose every field is in its range (accel_check). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "accel_check.h"
#include "fuzz_file.h"

/* The names accel_config_apply_env reads (accel_config.c, env_get calls). */
static const char *const NAMES[] = {
    "ACCELERATE_USE_FSDP",       "ACCELERATE_MIXED_PRECISION",  "FSDP_SHARDING_STRATEGY",
    "FSDP_BACKWARD_PREFETCH",    "FSDP_STATE_DICT_TYPE",        "FSDP_FORWARD_PREFETCH",
    "FSDP_OFFLOAD_PARAMS",       "FSDP_CPU_RAM_EFFICIENT_LOADING", "FSDP_SYNC_MODULE_STATES",
    "FSDP_USE_ORIG_PARAMS",      "FSDP_ACTIVATION_CHECKPOINTING",
};
#define N_NAMES (sizeof NAMES / sizeof *NAMES)

/* Sets the variable of one "NAME=VALUE" line (len bytes, no newline). */
static void set_line(const char *line, size_t len)
{
    const char *eq = memchr(line, '=', len);
    if (!eq)
        return;
    for (size_t i = 0; i < N_NAMES; i++) {
        if (strlen(NAMES[i]) == (size_t)(eq - line) && !memcmp(NAMES[i], line, (size_t)(eq - line))) {
            /* the value stops at a NUL byte, as an environment string does */
            char value[256];
            size_t n = len - (size_t)(eq + 1 - line);
            n = n < sizeof value - 1 ? n : sizeof value - 1;
            memcpy(value, eq + 1, n);
            value[n] = 0;
            setenv(NAMES[i], value, 1);
            return;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    accel_config c, before;
    accel_config_defaults(&c);
    if (size && (data[0] & 1)) { /* as accel_config_load_yaml leaves distributed_type NO */
        c.distributed_fsdp = 0;
        c.sharding_strategy = FSDP_NO_SHARD;
    }
    const char *text = (const char *)data + (size ? 1 : 0), *end = (const char *)data + size;
    while (text < end) {
        const char *nl = memchr(text, '\n', (size_t)(end - text));
        size_t len = nl ? (size_t)(nl - text) : (size_t)(end - text);
        set_line(text, len);
        if (!nl)
            break;
        text = nl + 1;
    }
    before = c;
    errbuf e = {{0}};
    if (accel_config_apply_env(&c, &e) != 0) {
        fuzz_check_error("fuzz_accel_env", "accel_config_apply_env", &e);
        if (memcmp(&c, &before, sizeof c) != 0)
            abort(); /* "A bad value fails, c untouched" */
    } else {
        accel_check(&c, "fuzz_accel_env");
    }
    for (size_t i = 0; i < N_NAMES; i++)
        unsetenv(NAMES[i]);
    return 0;
}
