/* test_accel_config.c: accelerate config files and launch variables.
 *
 * The two files of the PEFT FSDP guide (jobs/configs/, verbatim from
 * huggingface/peft) must load with the values they state; the environment
 * overrides the file; every mistake names the file, the key and what to
 * write instead; the hash that ranks compare changes with every setting
 * that must agree and with nothing else. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp, setenv */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "accel_config.h"

static const char *const env_names[] = {
    "ACCELERATE_USE_FSDP", "FSDP_SHARDING_STRATEGY", "FSDP_BACKWARD_PREFETCH",
    "FSDP_FORWARD_PREFETCH", "FSDP_OFFLOAD_PARAMS", "FSDP_CPU_RAM_EFFICIENT_LOADING",
    "FSDP_SYNC_MODULE_STATES", "FSDP_STATE_DICT_TYPE", "FSDP_USE_ORIG_PARAMS",
    "FSDP_ACTIVATION_CHECKPOINTING", "ACCELERATE_MIXED_PRECISION",
};

static void env_clear(void)
{
    for (size_t i = 0; i < sizeof env_names / sizeof *env_names; i++)
        unsetenv(env_names[i]);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int dir_setup(void **state)
{
    const char *tmpdir = getenv("TMPDIR");
    char *dir = malloc(4096);
    snprintf(dir, 4096, "%s/accel-test.XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    if (!mkdtemp(dir)) {
        free(dir);
        return -1;
    }
    env_clear(); /* the test's own environment must not leak in */
    *state = dir;
    return 0;
}

static int dir_teardown(void **state)
{
    char *dir = *state;
    env_clear();
    int rc = nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
    return rc;
}

/* Writes TEXT to DIR/NAME and returns that path (static buffer). */
static const char *write_file(const char *dir, const char *name, const char *text)
{
    static char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
    return path;
}

static const char *shipped(const char *name)
{
    static char path[4096];
    const char *top = getenv("top_srcdir");
    snprintf(path, sizeof path, "%s/jobs/configs/%s", top && *top ? top : ".", name);
    return path;
}

/* Loads TEXT written as DIR/fsdp_config.yaml; returns the load's status. */
static int load_text(void **state, const char *text, accel_config *c, errbuf *e)
{
    const char *path = write_file(*state, "fsdp_config.yaml", text);
    memset(e, 0, sizeof *e);
    return accel_config_load_yaml(path, c, e);
}

static void assert_contains(const char *haystack, const char *needle)
{
    if (!strstr(haystack, needle))
        fail_msg("expected \"%s\" in \"%s\"", needle, haystack);
}

/* Loads TEXT, expects failure, and checks the message holds each needle. */
static void assert_load_fails(void **state, const char *text, const char *needle1,
                              const char *needle2)
{
    accel_config c;
    errbuf e;
    assert_int_equal(load_text(state, text, &c, &e), -1);
    assert_contains(e.msg, needle1);
    if (needle2)
        assert_contains(e.msg, needle2);
}

#define FSDP_HEAD "distributed_type: FSDP\nfsdp_config:\n"

/* ------------------------------------------------------ shipped files */

static void peft_fsdp_config_loads_with_its_values(void **state)
{
    accel_config c;
    errbuf e = {{0}};
    if (accel_config_load_yaml(shipped("fsdp_config.yaml"), &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.distributed_fsdp, 1);
    assert_int_equal(c.sharding_strategy, FSDP_FULL_SHARD);
    assert_int_equal(c.backward_prefetch, PREFETCH_BACKWARD_PRE);
    assert_int_equal(c.forward_prefetch, 0);
    assert_int_equal(c.offload_params, 0);
    assert_int_equal(c.cpu_ram_efficient_loading, 1);
    assert_int_equal(c.sync_module_states, 1);
    assert_int_equal(c.state_dict_type, STATE_DICT_SHARDED);
    assert_int_equal(c.use_orig_params, 0);
    assert_int_equal(c.activation_checkpointing, 0);
    assert_string_equal(c.mixed_precision, "bf16");
    assert_int_equal(c.num_processes, 8);
    assert_int_equal(c.num_machines, 1);
    assert_int_equal(c.machine_rank, 0);
}

static void peft_qlora_config_loads_with_its_values(void **state)
{
    accel_config c;
    errbuf e = {{0}};
    /* Its first two lines end in long runs of blanks, upstream. */
    if (accel_config_load_yaml(shipped("fsdp_config_qlora.yaml"), &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.distributed_fsdp, 1);
    assert_int_equal(c.sharding_strategy, FSDP_FULL_SHARD);
    assert_int_equal(c.backward_prefetch, PREFETCH_BACKWARD_PRE);
    assert_int_equal(c.offload_params, 1);
    assert_int_equal(c.cpu_ram_efficient_loading, 1);
    assert_int_equal(c.sync_module_states, 1);
    assert_int_equal(c.state_dict_type, STATE_DICT_SHARDED);
    assert_int_equal(c.use_orig_params, 0);
    assert_string_equal(c.mixed_precision, "no");
    assert_int_equal(c.num_processes, 2);
}

/* The shipped file's launcher and TPU keys are accepted, one note each. */
static void non_applicable_keys_are_noted_once_each(void **state)
{
    static const char *const ignored[] = {
        "compute_environment", "debug", "downcast_bf16", "main_training_function",
        "rdzv_backend", "same_network", "tpu_env", "tpu_use_cluster", "tpu_use_sudo", "use_cpu",
    };
    accel_config c;
    errbuf e = {{0}};
    if (accel_config_load_yaml(shipped("fsdp_config.yaml"), &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.n_notes, (int)(sizeof ignored / sizeof *ignored));
    for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++) {
        char want[128];
        snprintf(want, sizeof want, "fsdp_config.yaml: %s has no effect", ignored[i]);
        assert_contains(c.notes, want);
    }
    /* Applicable keys are not noted. */
    assert_null(strstr(c.notes, "fsdp_sharding_strategy"));
    assert_null(strstr(c.notes, "mixed_precision"));
}

static void defaults_are_accelerate_config_defaults(void **state)
{
    accel_config c;
    errbuf e;
    assert_int_equal(load_text(state, "distributed_type: FSDP\n", &c, &e), 0);
    assert_int_equal(c.distributed_fsdp, 1);
    assert_int_equal(c.sharding_strategy, FSDP_FULL_SHARD);
    assert_int_equal(c.backward_prefetch, PREFETCH_BACKWARD_PRE);
    assert_int_equal(c.cpu_ram_efficient_loading, 1);
    assert_int_equal(c.sync_module_states, 1);
    assert_int_equal(c.state_dict_type, STATE_DICT_SHARDED);
    assert_string_equal(c.mixed_precision, "no");
    assert_int_equal(c.num_processes, -1);
    assert_int_equal(c.num_machines, 1);
    assert_int_equal(c.n_notes, 0);
}

/* ---------------------------------------------------- other file forms */

/* What accelerate writes for FSDP2 (its docs' example), and old spellings. */
static void fsdp2_and_legacy_forms_load(void **state)
{
    accel_config c;
    errbuf e;
    const char *v2 = "compute_environment: LOCAL_MACHINE\n"
                     "debug: false\n"
                     "distributed_type: FSDP\n"
                     "downcast_bf16: 'no'\n"
                     "dynamo_config:\n  dynamo_backend: EAGER\n"
                     "enable_cpu_affinity: false\n"
                     "fsdp_config:\n"
                     "  fsdp_activation_checkpointing: true\n"
                     "  fsdp_auto_wrap_policy: TRANSFORMER_BASED_WRAP\n"
                     "  fsdp_cpu_ram_efficient_loading: true\n"
                     "  fsdp_offload_params: false\n"
                     "  fsdp_reshard_after_forward: false\n"
                     "  fsdp_state_dict_type: SHARDED_STATE_DICT\n"
                     "  fsdp_transformer_layer_cls_to_wrap: ''\n"
                     "  fsdp_version: 2\n"
                     "machine_rank: 0\nmixed_precision: bf16\nnum_machines: 1\nnum_processes: 2\n";
    if (load_text(state, v2, &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.sharding_strategy, FSDP_SHARD_GRAD_OP);
    assert_int_equal(c.activation_checkpointing, 1);
    assert_contains(c.notes, "dynamo_config has no effect");

    const char *old = FSDP_HEAD "  fsdp_sharding_strategy: 4\n"
                                "  fsdp_backward_prefetch_policy: BACKWARD_POST\n"
                                "  fsdp_state_dict_type: FULL_STATE_DICT\n"
                                "  fsdp_transformer_layer_cls_to_wrap: BertLayer\n"
                                "  fsdp_auto_wrap_policy: SIZE_BASED_WRAP\n"
                                "  fsdp_min_num_params: 100000000\n"
                                "fp16: true\n";
    if (load_text(state, old, &c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.sharding_strategy, FSDP_HYBRID_SHARD);
    assert_int_equal(c.backward_prefetch, PREFETCH_BACKWARD_POST);
    assert_int_equal(c.state_dict_type, STATE_DICT_FULL);
    assert_string_equal(c.mixed_precision, "fp16");
    assert_contains(c.notes, "'BertLayer' has no effect");
    assert_contains(c.notes, "SIZE_BASED_WRAP has no effect");
    assert_contains(c.notes, "fsdp_min_num_params has no effect");
}

static void numeric_strategies_are_torch_enum_values(void **state)
{
    static const fsdp_strategy want[] = {FSDP_FULL_SHARD, FSDP_SHARD_GRAD_OP, FSDP_NO_SHARD,
                                         FSDP_HYBRID_SHARD};
    static const char *const names[] = {"FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD", "HYBRID_SHARD"};
    for (int i = 0; i < 4; i++) {
        char text[128];
        accel_config c;
        errbuf e;
        snprintf(text, sizeof text, FSDP_HEAD "  fsdp_sharding_strategy: %d\n", i + 1);
        assert_int_equal(load_text(state, text, &c, &e), 0);
        assert_int_equal(c.sharding_strategy, want[i]);
        assert_string_equal(fsdp_strategy_name(c.sharding_strategy), names[i]);
    }
    assert_load_fails(state, FSDP_HEAD "  fsdp_sharding_strategy: 5\n", "HYBRID_SHARD_ZERO2",
                      "not supported");
}

static void multi_gpu_is_data_parallel_no_shard(void **state)
{
    accel_config c;
    errbuf e;
    const char *text = "distributed_type: MULTI_GPU\nfsdp_config: {}\nnum_processes: 4\n";
    assert_int_equal(load_text(state, text, &c, &e), 0);
    assert_int_equal(c.distributed_fsdp, 0);
    assert_int_equal(c.sharding_strategy, FSDP_NO_SHARD);
    assert_int_equal(c.num_processes, 4);
    assert_contains(c.notes, "MULTI_GPU runs plain data parallelism (NO_SHARD)");

    /* fsdp_config is still checked, then ignored. */
    text = "distributed_type: MULTI_CPU\nfsdp_config:\n  fsdp_sharding_strategy: FULL_SHARD\n";
    assert_int_equal(load_text(state, text, &c, &e), 0);
    assert_int_equal(c.sharding_strategy, FSDP_NO_SHARD);
    assert_contains(c.notes, "fsdp_config is ignored");

    assert_int_equal(load_text(state, "distributed_type: 'NO'\n", &c, &e), 0);
    assert_int_equal(c.distributed_fsdp, 0);
}

static void cpu_ram_efficient_loading_forces_sync(void **state)
{
    accel_config c;
    errbuf e;
    const char *text = FSDP_HEAD "  fsdp_cpu_ram_efficient_loading: true\n"
                                 "  fsdp_sync_module_states: false\n";
    assert_int_equal(load_text(state, text, &c, &e), 0);
    assert_int_equal(c.sync_module_states, 1);
    assert_contains(c.notes, "sync_module_states set to true");

    text = FSDP_HEAD "  fsdp_cpu_ram_efficient_loading: false\n  fsdp_sync_module_states: false\n";
    assert_int_equal(load_text(state, text, &c, &e), 0);
    assert_int_equal(c.sync_module_states, 0);
}

/* ------------------------------------------------------------ mistakes */

static void misspelt_key_names_file_key_and_closest(void **state)
{
    assert_load_fails(state, FSDP_HEAD "  fsdp_sharding_stratgy: FULL_SHARD\n",
                      "fsdp_config.yaml:3: unknown key 'fsdp_sharding_stratgy'",
                      "(did you mean 'fsdp_sharding_strategy'?)");
    assert_load_fails(state, "distributed_type: FSDP\nmixed_precison: bf16\n",
                      "unknown key 'mixed_precison'", "did you mean 'mixed_precision'?");
    assert_load_fails(state, FSDP_HEAD "  fsdp_ofload_param: true\n",
                      "did you mean 'fsdp_offload_params'?", NULL);
    /* A right key at the wrong level says where it goes. */
    assert_load_fails(state, "distributed_type: FSDP\nfsdp_offload_params: true\n",
                      "unknown key 'fsdp_offload_params'", "belongs under fsdp_config");
    /* Far from every key: no guess. */
    assert_load_fails(state, "distributed_type: FSDP\nlearning_rate: 0.1\n",
                      "unknown key 'learning_rate'", "not an accelerate config key");
}

static void wrong_values_name_key_and_allowed_values(void **state)
{
    assert_load_fails(state, FSDP_HEAD "  fsdp_sharding_strategy: QUARTER_SHARD\n",
                      "fsdp_sharding_strategy: 'QUARTER_SHARD' is not one of",
                      "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, HYBRID_SHARD");
    assert_load_fails(state, FSDP_HEAD "  fsdp_backward_prefetch: SOMETIMES\n",
                      "fsdp_backward_prefetch: 'SOMETIMES'", "BACKWARD_PRE, BACKWARD_POST, NO_PREFETCH");
    assert_load_fails(state, FSDP_HEAD "  fsdp_state_dict_type: LOCAL_STATE_DICT\n",
                      "LOCAL_STATE_DICT is not supported", "SHARDED_STATE_DICT, FULL_STATE_DICT");
    assert_load_fails(state, FSDP_HEAD "  fsdp_offload_params: maybe\n",
                      "fsdp_offload_params must be true or false, not 'maybe'", NULL);
    assert_load_fails(state, FSDP_HEAD "  fsdp_forward_prefetch: [true]\n",
                      "fsdp_forward_prefetch must be true or false, not a list", NULL);
    assert_load_fails(state, FSDP_HEAD "  fsdp_auto_wrap_policy: LAYER_WRAP\n",
                      "'LAYER_WRAP' is not one of TRANSFORMER_BASED_WRAP", NULL);
    assert_load_fails(state, FSDP_HEAD "  fsdp_version: 3\n", "fsdp_version must be 1 or 2", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nmixed_precision: fp8\n",
                      "fp8 is not supported", "no, fp16, bf16");
    assert_load_fails(state, "distributed_type: FSDP\nmixed_precision: fp64\n",
                      "mixed_precision: 'fp64' is not one of no, fp16, bf16", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nnum_processes: eight\n",
                      "num_processes must be an integer, not 'eight'", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nnum_processes: '8'\n",
                      "num_processes must be an integer", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nnum_processes: 0\n",
                      "a positive integer or -1", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nnum_machines: 2\nmachine_rank: 2\n",
                      "machine_rank 2 must be below num_machines 2", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nfsdp_config: FULL_SHARD\n",
                      "fsdp_config must be a mapping", NULL);
    assert_load_fails(state, FSDP_HEAD "  fsdp_sharding_strategy: FULL_SHARD\n"
                                       "  fsdp_reshard_after_forward: false\n",
                      "fsdp_sharding_strategy and fsdp_reshard_after_forward both given", NULL);
    assert_load_fails(state, FSDP_HEAD "  fsdp_backward_prefetch: BACKWARD_PRE\n"
                                       "  fsdp_backward_prefetch_policy: BACKWARD_PRE\n",
                      "both given", NULL);
    assert_load_fails(state, "distributed_type: FSDP\nnum_processes: 2\nnum_processes: 4\n",
                      "fsdp_config.yaml:3: key 'num_processes' given twice (first at line 2)", NULL);
}

static void distributed_type_must_be_fsdp_or_data_parallel(void **state)
{
    assert_load_fails(state, "distributed_type: DEEPSPEED\ndeepspeed_config:\n  zero_stage: 3\n",
                      "fsdp_config.yaml:1: distributed_type 'DEEPSPEED' is not supported",
                      "use FSDP, or NO, MULTI_CPU or MULTI_GPU");
    assert_load_fails(state, "distributed_type: MEGATRON_LM\n", "'MEGATRON_LM' is not supported",
                      NULL);
    assert_load_fails(state, "mixed_precision: bf16\n", "distributed_type is missing", NULL);
}

static void not_yaml_or_not_a_mapping_is_refused_with_line(void **state)
{
    assert_load_fails(state, "distributed_type: FSDP\nfsdp_config:\n  a: [1, 2\nb: 3\n",
                      "fsdp_config.yaml:", "not valid YAML");
    assert_load_fails(state, "distributed_type: FSDP\n\tbad: tab\n", "not valid YAML", NULL);
    assert_load_fails(state, "just a sentence\n", "fsdp_config.yaml:1: expected an accelerate config",
                      "a single value");
    assert_load_fails(state, "- FSDP\n- 8\n", "expected an accelerate config", "a list");
    assert_load_fails(state, "", "empty file", NULL);
    assert_load_fails(state, "distributed_type: FSDP\n---\ndistributed_type: FSDP\n",
                      "more than one YAML document", NULL);

    accel_config c;
    errbuf e = {{0}};
    char path[4200];
    snprintf(path, sizeof path, "%s/absent.yaml", (char *)*state);
    assert_int_equal(accel_config_load_yaml(path, &c, &e), -1);
    assert_contains(e.msg, "absent.yaml: cannot open");
}

/* A failed load leaves the caller's config as it was. */
static void failed_load_leaves_config_untouched(void **state)
{
    accel_config c, before;
    errbuf e;
    accel_config_defaults(&c);
    c.num_processes = 42;
    before = c;
    assert_int_equal(load_text(state, FSDP_HEAD "  fsdp_offload_params: true\n  oops: 1\n", &c, &e),
                     -1);
    assert_memory_equal(&c, &before, sizeof c);
}

static void notes_overflow_is_marked(void **state)
{
    /* A long file name makes every note long; 23 ignored keys overflow. */
    char name[220];
    memset(name, 'n', 200);
    snprintf(name + 200, sizeof name - 200, ".yaml");
    const char *text = "distributed_type: FSDP\ncompute_environment: LOCAL_MACHINE\ndebug: false\n"
                       "use_cpu: false\ngpu_ids: all\nmain_process_ip: null\nmain_process_port: 1\n"
                       "rdzv_backend: static\nsame_network: true\nmain_training_function: main\n"
                       "enable_cpu_affinity: false\nmpirun_config: {}\ndowncast_bf16: 'no'\n"
                       "tpu_name: null\ntpu_zone: null\ntpu_use_cluster: false\n"
                       "tpu_use_sudo: false\ntpu_env: []\ntpu_vm: null\ncommand_file: null\n"
                       "commands: null\ndynamo_config: {}\ndeepspeed_config: {}\n"
                       "megatron_lm_config: {}\n";
    const char *path = write_file(*state, name, text);
    accel_config c;
    errbuf e = {{0}};
    if (accel_config_load_yaml(path, &c, &e))
        fail_msg("%s", e.msg);
    assert_true(strlen(c.notes) < sizeof c.notes);
    assert_contains(c.notes, "(more notes left out)\n");
    assert_int_equal(c.notes[strlen(c.notes) - 1], '\n');
}

/* ---------------------------------------------------------- environment */

static void env_overrides_file(void **state)
{
    accel_config c;
    errbuf e = {{0}};
    if (accel_config_load_yaml(shipped("fsdp_config.yaml"), &c, &e))
        fail_msg("%s", e.msg);
    setenv("FSDP_SHARDING_STRATEGY", "2", 1); /* what launch.py exported in older accelerate */
    setenv("FSDP_BACKWARD_PREFETCH", "NO_PREFETCH", 1);
    setenv("FSDP_FORWARD_PREFETCH", "true", 1);
    setenv("FSDP_OFFLOAD_PARAMS", "True", 1);
    setenv("FSDP_CPU_RAM_EFFICIENT_LOADING", "false", 1);
    setenv("FSDP_SYNC_MODULE_STATES", "0", 1);
    setenv("FSDP_STATE_DICT_TYPE", "FULL_STATE_DICT", 1);
    setenv("FSDP_USE_ORIG_PARAMS", "yes", 1);
    setenv("FSDP_ACTIVATION_CHECKPOINTING", "on", 1);
    setenv("ACCELERATE_MIXED_PRECISION", "fp16", 1);
    if (accel_config_apply_env(&c, &e))
        fail_msg("%s", e.msg);
    assert_int_equal(c.sharding_strategy, FSDP_SHARD_GRAD_OP);
    assert_int_equal(c.backward_prefetch, PREFETCH_NONE);
    assert_int_equal(c.forward_prefetch, 1);
    assert_int_equal(c.offload_params, 1);
    assert_int_equal(c.cpu_ram_efficient_loading, 0);
    assert_int_equal(c.sync_module_states, 0);
    assert_int_equal(c.state_dict_type, STATE_DICT_FULL);
    assert_int_equal(c.use_orig_params, 1);
    assert_int_equal(c.activation_checkpointing, 1);
    assert_string_equal(c.mixed_precision, "fp16");
    assert_int_equal(c.num_processes, 8); /* not an environment setting */
    /* Rank 0 says so: a forgotten export must not beat the file in silence. */
    assert_contains(c.notes, "environment FSDP_SHARDING_STRATEGY=2 overrides the config file");
    assert_contains(c.notes, "environment ACCELERATE_MIXED_PRECISION=fp16 overrides");
}

static void env_unset_or_empty_changes_nothing(void **state)
{
    accel_config c, before;
    errbuf e = {{0}};
    if (accel_config_load_yaml(shipped("fsdp_config_qlora.yaml"), &c, &e))
        fail_msg("%s", e.msg);
    before = c;
    setenv("FSDP_SHARDING_STRATEGY", "", 1);
    assert_int_equal(accel_config_apply_env(&c, &e), 0);
    assert_memory_equal(&c, &before, sizeof c);
}

static void env_bad_values_fail_and_leave_config(void **state)
{
    static const char *const cases[][3] = {
        {"FSDP_SHARDING_STRATEGY", "HALF_SHARD", "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, HYBRID_SHARD"},
        {"FSDP_BACKWARD_PREFETCH", "EARLY", "BACKWARD_PRE, BACKWARD_POST, NO_PREFETCH"},
        {"FSDP_STATE_DICT_TYPE", "LOCAL_STATE_DICT", "not supported"},
        {"FSDP_OFFLOAD_PARAMS", "sure", "true or false"},
        {"ACCELERATE_MIXED_PRECISION", "fp8", "fp8 is not supported"},
        {"ACCELERATE_USE_FSDP", "perhaps", "true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        accel_config c, before;
        errbuf e = {{0}};
        accel_config_defaults(&c);
        before = c;
        env_clear();
        setenv(cases[i][0], cases[i][1], 1);
        assert_int_equal(accel_config_apply_env(&c, &e), -1);
        assert_contains(e.msg, cases[i][0]);
        assert_contains(e.msg, cases[i][1]);
        assert_contains(e.msg, cases[i][2]);
        assert_memory_equal(&c, &before, sizeof c);
    }
}

static void env_use_fsdp_switches_sharding(void **state)
{
    accel_config c;
    errbuf e;
    assert_int_equal(load_text(state, "distributed_type: MULTI_GPU\n", &c, &e), 0);
    /* FSDP_* alone do not turn FSDP on, as in accelerate... */
    setenv("FSDP_OFFLOAD_PARAMS", "true", 1);
    assert_int_equal(accel_config_apply_env(&c, &e), 0);
    assert_int_equal(c.distributed_fsdp, 0);
    assert_int_equal(c.offload_params, 0);
    /* ...ACCELERATE_USE_FSDP does, with the plugin's FULL_SHARD. */
    setenv("ACCELERATE_USE_FSDP", "true", 1);
    assert_int_equal(accel_config_apply_env(&c, &e), 0);
    assert_int_equal(c.distributed_fsdp, 1);
    assert_int_equal(c.sharding_strategy, FSDP_FULL_SHARD);
    assert_int_equal(c.offload_params, 1);
    assert_contains(c.notes, "ACCELERATE_USE_FSDP=true turns FSDP on");

    setenv("ACCELERATE_USE_FSDP", "false", 1);
    assert_int_equal(accel_config_apply_env(&c, &e), 0);
    assert_int_equal(c.distributed_fsdp, 0);
    assert_int_equal(c.sharding_strategy, FSDP_NO_SHARD);
}

/* ---------------------------------------------------- hash and describe */

static void hash_agrees_exactly_when_settings_agree(void **state)
{
    accel_config a, b, q;
    errbuf e = {{0}};
    assert_int_equal(accel_config_load_yaml(shipped("fsdp_config.yaml"), &a, &e), 0);
    assert_int_equal(accel_config_load_yaml(shipped("fsdp_config.yaml"), &b, &e), 0);
    assert_int_equal(accel_config_load_yaml(shipped("fsdp_config_qlora.yaml"), &q, &e), 0);
    assert_true(accel_config_hash(&a) == accel_config_hash(&b));
    assert_true(accel_config_hash(&a) != accel_config_hash(&q));

    /* Per-machine and log-only fields do not count. */
    b.machine_rank = 1;
    b.n_notes = 0;
    b.notes[0] = '\0';
    assert_true(accel_config_hash(&a) == accel_config_hash(&b));

    /* Every setting that must agree does. */
    uint64_t h = accel_config_hash(&a);
#define CHANGED(stmt)                                  \
    do {                                               \
        accel_config t = a;                            \
        stmt;                                          \
        assert_true(accel_config_hash(&t) != h);       \
    } while (0)
    CHANGED(t.distributed_fsdp = 0);
    CHANGED(t.sharding_strategy = FSDP_HYBRID_SHARD);
    CHANGED(t.backward_prefetch = PREFETCH_BACKWARD_POST);
    CHANGED(t.forward_prefetch = 1);
    CHANGED(t.offload_params = 1);
    CHANGED(t.cpu_ram_efficient_loading = 0);
    CHANGED(t.sync_module_states = 0);
    CHANGED(t.state_dict_type = STATE_DICT_FULL);
    CHANGED(t.use_orig_params = 1);
    CHANGED(t.activation_checkpointing = 1);
    CHANGED(strcpy(t.mixed_precision, "fp16"));
    CHANGED(t.num_processes = 16);
    CHANGED(t.num_machines = 2);
#undef CHANGED
}

static void describe_is_one_line_with_every_setting(void **state)
{
    accel_config c;
    errbuf e = {{0}};
    char line[1024];
    assert_int_equal(accel_config_load_yaml(shipped("fsdp_config_qlora.yaml"), &c, &e), 0);
    accel_config_describe(&c, line, sizeof line);
    assert_null(strchr(line, '\n'));
    assert_contains(line, "FSDP FULL_SHARD, backward_prefetch BACKWARD_PRE");
    assert_contains(line, "offload_params on");
    assert_contains(line, "state_dict SHARDED_STATE_DICT");
    assert_contains(line, "mixed_precision no, num_processes 2");

    accel_config_defaults(&c);
    c.distributed_fsdp = 0;
    accel_config_describe(&c, line, sizeof line);
    assert_contains(line, "data parallel without FSDP (NO_SHARD)");
    assert_contains(line, "num_processes unset");
    /* A short buffer is cut, still terminated. */
    accel_config_describe(&c, line, 10);
    assert_int_equal(strlen(line), 9);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(peft_fsdp_config_loads_with_its_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(peft_qlora_config_loads_with_its_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(non_applicable_keys_are_noted_once_each, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(defaults_are_accelerate_config_defaults, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(fsdp2_and_legacy_forms_load, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(numeric_strategies_are_torch_enum_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(multi_gpu_is_data_parallel_no_shard, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(cpu_ram_efficient_loading_forces_sync, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(misspelt_key_names_file_key_and_closest, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(wrong_values_name_key_and_allowed_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(distributed_type_must_be_fsdp_or_data_parallel, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(not_yaml_or_not_a_mapping_is_refused_with_line, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(failed_load_leaves_config_untouched, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(notes_overflow_is_marked, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(env_overrides_file, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(env_unset_or_empty_changes_nothing, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(env_bad_values_fail_and_leave_config, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(env_use_fsdp_switches_sharding, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(hash_agrees_exactly_when_settings_agree, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(describe_is_one_line_with_every_setting, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
