/* accel_config.c: accelerate's config YAML and launch environment, read into
 * an accel_config.
 *
 * The rules follow accelerate (commands/config/config_args.py for the file,
 * utils/launch.py for the variables the launcher exports from it, and
 * FullyShardedDataParallelPlugin.__post_init__ for how those are parsed), so
 * that any file accelerate accepts for FSDP loads here.  Where accelerate
 * would fail late or silently (a misspelt key, LOCAL_STATE_DICT), shardtune
 * fails early and says what to write instead. */
#include "accel_config.h"

#include "checksum.h"
#include "suggest.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

/* ---------------------------------------------------------------- names */

static const char *const strategy_names[] = {"FULL_SHARD", "SHARD_GRAD_OP", "NO_SHARD",
                                              "HYBRID_SHARD"};
static const char *const prefetch_names[] = {"NO_PREFETCH", "BACKWARD_PRE", "BACKWARD_POST"};

#define STRATEGY_ALLOWED "FULL_SHARD, SHARD_GRAD_OP, NO_SHARD, HYBRID_SHARD (or 1-4)"
#define PREFETCH_ALLOWED "BACKWARD_PRE, BACKWARD_POST, NO_PREFETCH"
#define STATE_DICT_ALLOWED "SHARDED_STATE_DICT, FULL_STATE_DICT"
#define MIXED_ALLOWED "no, fp16, bf16"
#define BOOL_ALLOWED "true or false"

const char *fsdp_strategy_name(fsdp_strategy s)
{
    return (unsigned)s < 4 ? strategy_names[s] : "?";
}

const char *fsdp_backward_prefetch_name(fsdp_backward_prefetch p)
{
    return (unsigned)p < 3 ? prefetch_names[p] : "?";
}

const char *fsdp_state_dict_type_name(fsdp_state_dict_type t)
{
    return t == STATE_DICT_FULL ? "FULL_STATE_DICT" : "SHARDED_STATE_DICT";
}

void accel_config_defaults(accel_config *c)
{
    memset(c, 0, sizeof *c);
    c->distributed_fsdp = 1;
    c->sharding_strategy = FSDP_FULL_SHARD;
    c->backward_prefetch = PREFETCH_BACKWARD_PRE;
    c->forward_prefetch = 0;
    c->offload_params = 0;
    c->cpu_ram_efficient_loading = 1;
    c->sync_module_states = 1;
    c->state_dict_type = STATE_DICT_SHARDED;
    c->use_orig_params = 0; /* the plugin's default; PEFT needs it off to save memory */
    c->activation_checkpointing = 0;
    snprintf(c->mixed_precision, sizeof c->mixed_precision, "no");
    c->num_processes = -1;
    c->num_machines = 1;
    c->machine_rank = 0;
}

/* ---------------------------------------------------------------- notes */

/* The last bytes stay free for one "more notes" line, so that a truncated
 * list says so instead of ending mid-sentence. */
#define NOTES_TAIL "(more notes left out)\n"

static void note_add(accel_config *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note_add(accel_config *c, const char *fmt, ...)
{
    size_t used = strlen(c->notes);
    size_t limit = sizeof c->notes - sizeof NOTES_TAIL;
    char raw[512], line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    escape_controls(raw, line, sizeof line); /* a note is one line too */
    size_t n = strlen(line);
    if (used + n + 1 < limit) {
        memcpy(c->notes + used, line, n);
        c->notes[used + n] = '\n';
        c->notes[used + n + 1] = '\0';
        c->n_notes++;
    } else if (!strstr(c->notes, NOTES_TAIL)) {
        memcpy(c->notes + used, NOTES_TAIL, sizeof NOTES_TAIL);
        c->n_notes++;
    }
}

void accel_config_print_notes(const accel_config *c)
{
    const char *p = c->notes;
    while (*p) {
        const char *nl = strchr(p, '\n');
        int n = nl ? (int)(nl - p) : (int)strlen(p);
        log_info("note: %.*s", n, p);
        p += n + (nl != NULL);
    }
}

/* accelerate forces sync_module_states on when cpu_ram_efficient_loading is
 * on (the plugin warns and sets it); in shardtune the ranks that each read
 * only their own byte ranges are the ones whose agreement needs checking. */
static void sync_fixup(accel_config *c)
{
    if (c->cpu_ram_efficient_loading && !c->sync_module_states) {
        c->sync_module_states = 1;
        note_add(c, "sync_module_states set to true: cpu_ram_efficient_loading needs it "
                    "(as in accelerate)");
    }
}

/* -------------------------------------------- values (file and environment) */

/* accelerate's str_to_bool, which is what the plugin applies to the
 * launcher's variables; YAML 1.1 booleans reach it as True/False. */
static int parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"y", "yes", "t", "true", "on", "1"};
    static const char *const no[] = {"n", "no", "f", "false", "off", "0"};
    for (size_t i = 0; i < sizeof yes / sizeof *yes; i++) {
        if (!strcasecmp(s, yes[i])) { *out = 1; return 0; }
        if (!strcasecmp(s, no[i])) { *out = 0; return 0; }
    }
    return -1;
}

/* Names as accelerate spells them (it upper-cases first), or torch's enum
 * values 1..4 that old config files and FSDP_SHARDING_STRATEGY carry.
 * Returns 0, -1 for unknown, -2 for a known strategy shardtune lacks. */
static int parse_strategy(const char *s, fsdp_strategy *out)
{
    for (int i = 0; i < 4; i++) {
        char digit[2] = {(char)('1' + i), 0};
        if (!strcasecmp(s, strategy_names[i]) || !strcmp(s, digit)) {
            *out = (fsdp_strategy)i;
            return 0;
        }
    }
    if (!strcasecmp(s, "HYBRID_SHARD_ZERO2") || !strcmp(s, "5"))
        return -2;
    return -1;
}

/* BackwardPrefetch: BACKWARD_PRE = 1, BACKWARD_POST = 2; NO_PREFETCH is
 * accelerate's name for None. */
static int parse_prefetch(const char *s, fsdp_backward_prefetch *out)
{
    for (int i = 0; i < 3; i++) {
        if (!strcasecmp(s, prefetch_names[i])) {
            *out = (fsdp_backward_prefetch)i;
            return 0;
        }
    }
    if (!strcmp(s, "1")) { *out = PREFETCH_BACKWARD_PRE; return 0; }
    if (!strcmp(s, "2")) { *out = PREFETCH_BACKWARD_POST; return 0; }
    return -1;
}

/* StateDictType: FULL = 1, LOCAL = 2, SHARDED = 3.  LOCAL_STATE_DICT (each
 * rank's flat buffer as is) would tie a checkpoint to the rank count, so it
 * is refused (-2) rather than mapped. */
static int parse_state_dict(const char *s, fsdp_state_dict_type *out)
{
    if (!strcasecmp(s, "SHARDED_STATE_DICT") || !strcmp(s, "3")) { *out = STATE_DICT_SHARDED; return 0; }
    if (!strcasecmp(s, "FULL_STATE_DICT") || !strcmp(s, "1")) { *out = STATE_DICT_FULL; return 0; }
    if (!strcasecmp(s, "LOCAL_STATE_DICT") || !strcmp(s, "2"))
        return -2;
    return -1;
}

/* accelerate's PrecisionType, less fp8 (-2): shardtune has no fp8 path. */
static int parse_mixed(const char *s, char out[8])
{
    static const char *const ok[] = {"no", "fp16", "bf16"};
    for (size_t i = 0; i < 3; i++) {
        if (!strcasecmp(s, ok[i])) {
            snprintf(out, 8, "%s", ok[i]);
            return 0;
        }
    }
    return !strcasecmp(s, "fp8") ? -2 : -1;
}

static int parse_int(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < INT_MIN || v > INT_MAX)
        return -1;
    *out = v;
    return 0;
}

/* ------------------------------------------------------------ key tables */

typedef enum {
    V_IGNORED,           /* accepted, noted, no effect */
    V_DISTRIBUTED_TYPE,
    V_MIXED_PRECISION,
    V_LEGACY_FP16,       /* fp16: true, from before mixed_precision existed */
    V_INT,
    V_BOOL,
    V_FSDP_MAP,
    V_STRATEGY,
    V_RESHARD,           /* FSDP2's spelling: true FULL_SHARD, false SHARD_GRAD_OP */
    V_PREFETCH,
    V_STATE_DICT,
    V_WRAP_POLICY,
    V_CLS_TO_WRAP,
    V_MIN_NUM_PARAMS,
    V_VERSION,
} value_kind;

typedef struct key_spec {
    const char *name;
    value_kind kind;
    size_t offset;   /* V_INT, V_BOOL: the int field of accel_config */
    int min_value;   /* V_INT */
    const char *why; /* V_IGNORED: why it has no effect */
} key_spec;

#define FIELD(f) offsetof(accel_config, f)

static const char R_LAUNCH[] = "accelerate's launcher setting; mpirun decides this for shardtune";
static const char R_TPU[] = "for TPUs only";
static const char R_COMPILE[] = "for torch.compile only";
static const char R_OTHER[] = "for another distributed_type";

/* ClusterConfig's fields (commands/config/config_args.py). */
static const key_spec top_keys[] = {
    {"distributed_type", V_DISTRIBUTED_TYPE, 0, 0, NULL},
    {"mixed_precision", V_MIXED_PRECISION, 0, 0, NULL},
    {"num_processes", V_INT, FIELD(num_processes), -1, NULL},
    {"num_machines", V_INT, FIELD(num_machines), 1, NULL},
    {"machine_rank", V_INT, FIELD(machine_rank), 0, NULL},
    {"fsdp_config", V_FSDP_MAP, 0, 0, NULL},
    {"fp16", V_LEGACY_FP16, 0, 0, NULL},
    {"compute_environment", V_IGNORED, 0, 0, R_LAUNCH},
    {"debug", V_IGNORED, 0, 0, "accelerate's debug mode"},
    {"use_cpu", V_IGNORED, 0, 0, "shardtune picks its backend itself"},
    {"gpu_ids", V_IGNORED, 0, 0, R_LAUNCH},
    {"main_process_ip", V_IGNORED, 0, 0, R_LAUNCH},
    {"main_process_port", V_IGNORED, 0, 0, R_LAUNCH},
    {"rdzv_backend", V_IGNORED, 0, 0, R_LAUNCH},
    {"same_network", V_IGNORED, 0, 0, R_LAUNCH},
    {"main_training_function", V_IGNORED, 0, 0, "for accelerate's notebook and TPU launchers"},
    {"enable_cpu_affinity", V_IGNORED, 0, 0, R_LAUNCH},
    {"mpirun_config", V_IGNORED, 0, 0, R_LAUNCH},
    {"downcast_bf16", V_IGNORED, 0, 0, R_TPU},
    {"tpu_name", V_IGNORED, 0, 0, R_TPU},
    {"tpu_zone", V_IGNORED, 0, 0, R_TPU},
    {"tpu_use_cluster", V_IGNORED, 0, 0, R_TPU},
    {"tpu_use_sudo", V_IGNORED, 0, 0, R_TPU},
    {"tpu_env", V_IGNORED, 0, 0, R_TPU},
    {"tpu_vm", V_IGNORED, 0, 0, R_TPU},
    {"command_file", V_IGNORED, 0, 0, R_TPU},
    {"commands", V_IGNORED, 0, 0, R_TPU},
    {"dynamo_config", V_IGNORED, 0, 0, R_COMPILE},
    {"dynamo_backend", V_IGNORED, 0, 0, R_COMPILE},
    {"deepspeed_config", V_IGNORED, 0, 0, R_OTHER},
    {"megatron_lm_config", V_IGNORED, 0, 0, R_OTHER},
    {"ipex_config", V_IGNORED, 0, 0, "for Intel's PyTorch extension only"},
    {"fp8_config", V_IGNORED, 0, 0, "for mixed_precision fp8 only"},
};

/* The fsdp_config keys `accelerate config` writes (FSDP1 and FSDP2), plus
 * fsdp_backward_prefetch_policy, the older name of fsdp_backward_prefetch. */
static const key_spec fsdp_keys[] = {
    {"fsdp_sharding_strategy", V_STRATEGY, 0, 0, NULL},
    {"fsdp_reshard_after_forward", V_RESHARD, 0, 0, NULL},
    {"fsdp_backward_prefetch", V_PREFETCH, 0, 0, NULL},
    {"fsdp_backward_prefetch_policy", V_PREFETCH, 0, 0, NULL},
    {"fsdp_forward_prefetch", V_BOOL, FIELD(forward_prefetch), 0, NULL},
    {"fsdp_offload_params", V_BOOL, FIELD(offload_params), 0, NULL},
    {"fsdp_cpu_ram_efficient_loading", V_BOOL, FIELD(cpu_ram_efficient_loading), 0, NULL},
    {"fsdp_sync_module_states", V_BOOL, FIELD(sync_module_states), 0, NULL},
    {"fsdp_state_dict_type", V_STATE_DICT, 0, 0, NULL},
    {"fsdp_use_orig_params", V_BOOL, FIELD(use_orig_params), 0, NULL},
    {"fsdp_activation_checkpointing", V_BOOL, FIELD(activation_checkpointing), 0, NULL},
    {"fsdp_auto_wrap_policy", V_WRAP_POLICY, 0, 0, NULL},
    {"fsdp_transformer_layer_cls_to_wrap", V_CLS_TO_WRAP, 0, 0, NULL},
    {"fsdp_min_num_params", V_MIN_NUM_PARAMS, 0, 0, NULL},
    {"fsdp_version", V_VERSION, 0, 0, NULL},
};

#define N_TOP_KEYS (sizeof top_keys / sizeof *top_keys)
#define N_FSDP_KEYS (sizeof fsdp_keys / sizeof *fsdp_keys)

static const key_spec *key_find(const key_spec *keys, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(keys[i].name, name))
            return &keys[i];
    return NULL;
}

/* The closest key of the level, if it is close enough to be a misspelling. */
static const char *key_closest(const key_spec *keys, size_t n, const char *name)
{
    suggestion sg;
    suggest_begin(&sg, name);
    for (size_t i = 0; i < n; i++)
        suggest_offer(&sg, keys[i].name);
    return suggest_result(&sg);
}

/* ------------------------------------------------------------------ YAML */

typedef enum { DT_UNSET, DT_FSDP, DT_DATA_PARALLEL } dist_kind;

typedef struct loader {
    const char *path;
    const char *file;   /* basename, for notes */
    yaml_document_t *doc;
    errbuf *e;
    accel_config c;     /* built here, copied out on success */
    dist_kind dist;
    char dist_name[32];
    int n_fsdp_keys;
    int legacy_fp16;    /* -1 absent */
    int mixed_given;
    const key_spec *strategy_from, *prefetch_from;
} loader;

static int err_at(loader *L, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int err_at(loader *L, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(L->e, "%s:%lu: %s", L->path, (unsigned long)n->start_mark.line + 1, msg);
}

static const char *node_what(const yaml_node_t *n)
{
    switch (n->type) {
    case YAML_SEQUENCE_NODE: return "a list";
    case YAML_MAPPING_NODE: return "a mapping";
    default: return "nothing";
    }
}

static int is_null(const yaml_node_t *n)
{
    if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return 0;
    const char *s = (const char *)n->data.scalar.value;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") ||
           !strcmp(s, "NULL");
}

/* The scalar's text, or NULL (with the error set) for a list or mapping. */
static const char *scalar_of(loader *L, const key_spec *k, const yaml_node_t *v,
                             const char *expected)
{
    if (v->type == YAML_SCALAR_NODE)
        return (const char *)v->data.scalar.value;
    err_at(L, v, "%s must be %s, not %s", k->name, expected, node_what(v));
    return NULL;
}

static int load_fsdp_map(loader *L, const yaml_node_t *map);

/* Applies one key's value to L->c. */
static int load_value(loader *L, const key_spec *k, const yaml_node_t *v)
{
    accel_config *c = &L->c;
    const char *s;
    int rc;

    if (k->kind == V_IGNORED) {
        note_add(c, "%s: %s has no effect (%s)", L->file, k->name, k->why);
        return 0;
    }
    if (is_null(v))
        return k->kind == V_DISTRIBUTED_TYPE
                   ? err_at(L, v, "distributed_type must be given (FSDP, NO, MULTI_CPU or MULTI_GPU)")
                   : 0;

    switch (k->kind) {
    case V_DISTRIBUTED_TYPE:
        if (!(s = scalar_of(L, k, v, "a name")))
            return -1;
        snprintf(L->dist_name, sizeof L->dist_name, "%s", s);
        if (!strcasecmp(s, "FSDP")) {
            L->dist = DT_FSDP;
        } else if (!strcasecmp(s, "NO") || !strcasecmp(s, "MULTI_CPU") ||
                   !strcasecmp(s, "MULTI_GPU")) {
            L->dist = DT_DATA_PARALLEL;
        } else {
            return err_at(L, v, "distributed_type '%s' is not supported by shardtune: use FSDP, "
                                "or NO, MULTI_CPU or MULTI_GPU for unsharded data parallelism", s);
        }
        return 0;

    case V_MIXED_PRECISION:
        if (!(s = scalar_of(L, k, v, "one of " MIXED_ALLOWED)))
            return -1;
        rc = parse_mixed(s, c->mixed_precision);
        if (rc == -2)
            return err_at(L, v, "mixed_precision fp8 is not supported by shardtune (allowed: "
                                MIXED_ALLOWED ")");
        if (rc)
            return err_at(L, v, "mixed_precision: '%s' is not one of " MIXED_ALLOWED, s);
        L->mixed_given = 1;
        return 0;

    case V_LEGACY_FP16:
    case V_BOOL:
    case V_RESHARD: {
        int b;
        if (!(s = scalar_of(L, k, v, BOOL_ALLOWED)))
            return -1;
        if (parse_bool(s, &b))
            return err_at(L, v, "%s must be " BOOL_ALLOWED ", not '%s'", k->name, s);
        if (k->kind == V_BOOL) {
            *(int *)((char *)c + k->offset) = b;
        } else if (k->kind == V_LEGACY_FP16) {
            L->legacy_fp16 = b;
        } else {
            if (L->strategy_from)
                return err_at(L, v, "%s and %s both given: keep one", L->strategy_from->name,
                              k->name);
            L->strategy_from = k;
            c->sharding_strategy = b ? FSDP_FULL_SHARD : FSDP_SHARD_GRAD_OP;
        }
        return 0;
    }

    case V_INT:
    case V_MIN_NUM_PARAMS:
    case V_VERSION: {
        long x;
        /* A quoted number is a string to accelerate (and breaks its launcher). */
        if (v->type != YAML_SCALAR_NODE || v->data.scalar.style != YAML_PLAIN_SCALAR_STYLE ||
            parse_int((const char *)v->data.scalar.value, &x))
            return v->type == YAML_SCALAR_NODE
                       ? err_at(L, v, "%s must be an integer, not '%s'", k->name,
                                (const char *)v->data.scalar.value)
                       : err_at(L, v, "%s must be an integer, not %s", k->name, node_what(v));
        if (k->kind == V_VERSION) {
            if (x != 1 && x != 2)
                return err_at(L, v, "fsdp_version must be 1 or 2, not %ld", x);
            return 0;
        }
        if (k->kind == V_MIN_NUM_PARAMS) {
            note_add(c, "%s: fsdp_min_num_params has no effect (shardtune wraps one decoder "
                        "layer per FSDP unit)", L->file);
            return 0;
        }
        if (x < k->min_value || (k->offset == FIELD(num_processes) && x == 0))
            return err_at(L, v, "%s must be %s, not %ld", k->name,
                          k->offset == FIELD(num_processes) ? "a positive integer or -1 (unset)"
                          : k->min_value == 1               ? "at least 1"
                                                            : "at least 0",
                          x);
        *(int *)((char *)c + k->offset) = (int)x;
        return 0;
    }

    case V_FSDP_MAP:
        if (v->type != YAML_MAPPING_NODE)
            return err_at(L, v, "fsdp_config must be a mapping of fsdp_* keys, not %s",
                          v->type == YAML_SCALAR_NODE ? "a string" : node_what(v));
        return load_fsdp_map(L, v);

    case V_STRATEGY:
        if (!(s = scalar_of(L, k, v, "one of " STRATEGY_ALLOWED)))
            return -1;
        if (L->strategy_from)
            return err_at(L, v, "%s and %s both given: keep one", L->strategy_from->name, k->name);
        rc = parse_strategy(s, &c->sharding_strategy);
        if (rc == -2)
            return err_at(L, v, "%s '%s' (HYBRID_SHARD_ZERO2) is not supported by shardtune "
                                "(allowed: " STRATEGY_ALLOWED ")", k->name, s);
        if (rc)
            return err_at(L, v, "%s: '%s' is not one of " STRATEGY_ALLOWED, k->name, s);
        L->strategy_from = k;
        return 0;

    case V_PREFETCH:
        if (!(s = scalar_of(L, k, v, "one of " PREFETCH_ALLOWED)))
            return -1;
        if (L->prefetch_from)
            return err_at(L, v, "%s and %s both given: keep one", L->prefetch_from->name, k->name);
        if (parse_prefetch(s, &c->backward_prefetch))
            return err_at(L, v, "%s: '%s' is not one of " PREFETCH_ALLOWED, k->name, s);
        L->prefetch_from = k;
        return 0;

    case V_STATE_DICT:
        if (!(s = scalar_of(L, k, v, "one of " STATE_DICT_ALLOWED)))
            return -1;
        rc = parse_state_dict(s, &c->state_dict_type);
        if (rc == -2)
            return err_at(L, v, "%s LOCAL_STATE_DICT is not supported by shardtune (allowed: "
                                STATE_DICT_ALLOWED ")", k->name);
        if (rc)
            return err_at(L, v, "%s: '%s' is not one of " STATE_DICT_ALLOWED, k->name, s);
        return 0;

    case V_WRAP_POLICY:
        if (!(s = scalar_of(L, k, v, "a policy name")))
            return -1;
        if (!strcasecmp(s, "TRANSFORMER_BASED_WRAP"))
            return 0;
        if (!strcasecmp(s, "SIZE_BASED_WRAP") || !strcasecmp(s, "NO_WRAP")) {
            note_add(c, "%s: fsdp_auto_wrap_policy %s has no effect (shardtune always wraps "
                        "one decoder layer per FSDP unit, as TRANSFORMER_BASED_WRAP)", L->file, s);
            return 0;
        }
        return err_at(L, v, "fsdp_auto_wrap_policy: '%s' is not one of TRANSFORMER_BASED_WRAP, "
                            "SIZE_BASED_WRAP, NO_WRAP", s);

    case V_CLS_TO_WRAP:
        if (!(s = scalar_of(L, k, v, "a class name")))
            return -1;
        /* Empty means the model's _no_split_modules: LlamaDecoderLayer. */
        if (*s && strcmp(s, "LlamaDecoderLayer"))
            note_add(c, "%s: fsdp_transformer_layer_cls_to_wrap '%s' has no effect (shardtune "
                        "wraps each LlamaDecoderLayer)", L->file, s);
        return 0;

    case V_IGNORED:
        break;
    }
    return 0;
}

/* One mapping level: every key known, none twice. */
static int load_map(loader *L, const yaml_node_t *map, const key_spec *keys, size_t n_keys,
                    const key_spec *other, size_t n_other, const char *where)
{
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *kn = yaml_document_get_node(L->doc, p->key);
        const yaml_node_t *vn = yaml_document_get_node(L->doc, p->value);
        if (kn->type != YAML_SCALAR_NODE)
            return err_at(L, kn, "a key%s must be a plain name, not %s", where, node_what(kn));
        const char *name = (const char *)kn->data.scalar.value;
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
            const yaml_node_t *prev = yaml_document_get_node(L->doc, q->key);
            if (prev->type == YAML_SCALAR_NODE && !strcmp((const char *)prev->data.scalar.value, name))
                return err_at(L, kn, "key '%s'%s given twice (first at line %lu)", name, where,
                              (unsigned long)prev->start_mark.line + 1);
        }
        const key_spec *k = key_find(keys, n_keys, name);
        if (!k) {
            const char *near = key_closest(keys, n_keys, name);
            if (key_find(other, n_other, name))
                return err_at(L, kn, "unknown key '%s'%s (it belongs %s)", name, where,
                              keys == top_keys ? "under fsdp_config" : "at the top level");
            if (near)
                return err_at(L, kn, "unknown key '%s'%s (did you mean '%s'?)", name, where, near);
            return err_at(L, kn, "unknown key '%s'%s (not an accelerate %s key)", name, where,
                          keys == top_keys ? "config" : "fsdp_config");
        }
        if (load_value(L, k, vn))
            return -1;
    }
    return 0;
}

static int load_fsdp_map(loader *L, const yaml_node_t *map)
{
    L->n_fsdp_keys = (int)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    return load_map(L, map, fsdp_keys, N_FSDP_KEYS, top_keys, N_TOP_KEYS, " in fsdp_config");
}

/* What the whole file says, once every key is read (their order is free). */
static int load_finish(loader *L)
{
    accel_config *c = &L->c;
    if (L->dist == DT_UNSET)
        return err_set(L->e, "%s: distributed_type is missing (accelerate requires it; "
                             "shardtune takes FSDP, NO, MULTI_CPU or MULTI_GPU)", L->path);
    if (L->legacy_fp16 == 1 && !L->mixed_given)
        snprintf(c->mixed_precision, sizeof c->mixed_precision, "fp16");
    if (c->machine_rank >= c->num_machines)
        return err_set(L->e, "%s: machine_rank %d must be below num_machines %d", L->path,
                       c->machine_rank, c->num_machines);
    if (L->dist == DT_DATA_PARALLEL) {
        c->distributed_fsdp = 0;
        c->sharding_strategy = FSDP_NO_SHARD;
        note_add(c, "%s: distributed_type %s runs plain data parallelism (NO_SHARD)%s", L->file,
                 L->dist_name, L->n_fsdp_keys ? "; fsdp_config is ignored" : "");
    } else {
        c->distributed_fsdp = 1;
    }
    sync_fixup(c);
    return 0;
}

static int load_document(loader *L, yaml_parser_t *parser)
{
    const yaml_node_t *root = yaml_document_get_root_node(L->doc);
    if (!root)
        return err_set(L->e, "%s: empty file, expected an accelerate config (a mapping with "
                             "distributed_type, fsdp_config, ...)", L->path);
    if (root->type != YAML_MAPPING_NODE)
        return err_at(L, root, "expected an accelerate config (a mapping of keys), found %s",
                      root->type == YAML_SCALAR_NODE ? "a single value" : node_what(root));
    if (load_map(L, root, top_keys, N_TOP_KEYS, fsdp_keys, N_FSDP_KEYS, ""))
        return -1;
    /* accelerate's yaml.safe_load refuses a second document; so do we. */
    yaml_document_t next;
    if (!yaml_parser_load(parser, &next))
        return err_set(L->e, "%s:%lu: not valid YAML: %s", L->path,
                       (unsigned long)parser->problem_mark.line + 1,
                       parser->problem ? parser->problem : "parse error");
    int more = yaml_document_get_root_node(&next) != NULL;
    yaml_document_delete(&next);
    if (more)
        return err_set(L->e, "%s: more than one YAML document; an accelerate config is one",
                       L->path);
    return load_finish(L);
}

int accel_config_load_yaml(const char *path, accel_config *c, errbuf *e)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(e, "%s: cannot open: %s", path, strerror(errno));

    loader L;
    memset(&L, 0, sizeof L);
    L.path = path;
    L.file = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    L.e = e;
    L.legacy_fp16 = -1;
    accel_config_defaults(&L.c);

    yaml_parser_t parser;
    yaml_document_t doc;
    int rc = -1;
    if (!yaml_parser_initialize(&parser)) {
        fclose(f);
        return err_set(e, "%s: cannot start the YAML parser (out of memory)", path);
    }
    yaml_parser_set_input_file(&parser, f);
    if (!yaml_parser_load(&parser, &doc)) {
        /* libyaml's marks are 0-based; the context says what was open. */
        err_set(e, "%s:%lu: not valid YAML: %s%s%s", path,
                (unsigned long)parser.problem_mark.line + 1,
                parser.problem ? parser.problem : "parse error", parser.context ? " " : "",
                parser.context ? parser.context : "");
    } else {
        L.doc = &doc;
        rc = load_document(&L, &parser);
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (rc == 0)
        *c = L.c;
    return rc;
}

/* ----------------------------------------------------------- environment */

static const char *env_get(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

/* Said on rank 0, because a variable left over in a shell otherwise
 * silently beats the file the user is looking at. */
static void env_note(accel_config *c, const char *name, const char *v)
{
    note_add(c, "environment %s=%s overrides the config file", name, v);
}

static int env_bool(accel_config *c, const char *name, int *field, errbuf *e)
{
    const char *v = env_get(name);
    if (!v)
        return 0;
    if (parse_bool(v, field))
        return err_set(e, "environment %s='%s': must be " BOOL_ALLOWED, name, v);
    env_note(c, name, v);
    return 0;
}

/* The variables utils/launch.py exports for the plugin, parsed as
 * FullyShardedDataParallelPlugin.__post_init__ parses them.  f holds the
 * FSDP settings; they are copied to c only if FSDP is on. */
static int env_fsdp(accel_config *f, errbuf *e)
{
    const char *v;
    int rc;
    if ((v = env_get("FSDP_SHARDING_STRATEGY"))) {
        rc = parse_strategy(v, &f->sharding_strategy);
        if (rc == -2)
            return err_set(e, "environment FSDP_SHARDING_STRATEGY='%s': HYBRID_SHARD_ZERO2 is not "
                              "supported by shardtune (allowed: " STRATEGY_ALLOWED ")", v);
        if (rc)
            return err_set(e, "environment FSDP_SHARDING_STRATEGY='%s': not one of "
                              STRATEGY_ALLOWED, v);
        env_note(f, "FSDP_SHARDING_STRATEGY", v);
    }
    if ((v = env_get("FSDP_BACKWARD_PREFETCH"))) {
        if (parse_prefetch(v, &f->backward_prefetch))
            return err_set(e, "environment FSDP_BACKWARD_PREFETCH='%s': not one of "
                              PREFETCH_ALLOWED, v);
        env_note(f, "FSDP_BACKWARD_PREFETCH", v);
    }
    if ((v = env_get("FSDP_STATE_DICT_TYPE"))) {
        rc = parse_state_dict(v, &f->state_dict_type);
        if (rc == -2)
            return err_set(e, "environment FSDP_STATE_DICT_TYPE='%s': LOCAL_STATE_DICT is not "
                              "supported by shardtune (allowed: " STATE_DICT_ALLOWED ")", v);
        if (rc)
            return err_set(e, "environment FSDP_STATE_DICT_TYPE='%s': not one of "
                              STATE_DICT_ALLOWED, v);
        env_note(f, "FSDP_STATE_DICT_TYPE", v);
    }
    if (env_bool(f, "FSDP_FORWARD_PREFETCH", &f->forward_prefetch, e) ||
        env_bool(f, "FSDP_OFFLOAD_PARAMS", &f->offload_params, e) ||
        env_bool(f, "FSDP_CPU_RAM_EFFICIENT_LOADING", &f->cpu_ram_efficient_loading, e) ||
        env_bool(f, "FSDP_SYNC_MODULE_STATES", &f->sync_module_states, e) ||
        env_bool(f, "FSDP_USE_ORIG_PARAMS", &f->use_orig_params, e) ||
        env_bool(f, "FSDP_ACTIVATION_CHECKPOINTING", &f->activation_checkpointing, e))
        return -1;
    return 0;
}

int accel_config_apply_env(accel_config *c, errbuf *e)
{
    accel_config t = *c;
    const char *v;
    int use_fsdp;

    if ((v = env_get("ACCELERATE_USE_FSDP"))) {
        if (parse_bool(v, &use_fsdp))
            return err_set(e, "environment ACCELERATE_USE_FSDP='%s': must be " BOOL_ALLOWED, v);
        if (use_fsdp && !t.distributed_fsdp) {
            /* The file's NO_SHARD stood for "no FSDP"; the plugin's default is FULL_SHARD. */
            t.distributed_fsdp = 1;
            t.sharding_strategy = FSDP_FULL_SHARD;
            note_add(&t, "ACCELERATE_USE_FSDP=%s turns FSDP on over the file's distributed_type", v);
        } else if (!use_fsdp && t.distributed_fsdp) {
            t.distributed_fsdp = 0;
            t.sharding_strategy = FSDP_NO_SHARD;
            note_add(&t, "ACCELERATE_USE_FSDP=%s turns FSDP off: plain data parallelism (NO_SHARD)", v);
        }
    }

    accel_config f = t;
    if (env_fsdp(&f, e))
        return -1;
    if (t.distributed_fsdp)
        t = f;

    if ((v = env_get("ACCELERATE_MIXED_PRECISION"))) {
        int rc = parse_mixed(v, t.mixed_precision);
        if (rc == -2)
            return err_set(e, "environment ACCELERATE_MIXED_PRECISION='%s': fp8 is not supported "
                              "by shardtune (allowed: " MIXED_ALLOWED ")", v);
        if (rc)
            return err_set(e, "environment ACCELERATE_MIXED_PRECISION='%s': not one of "
                              MIXED_ALLOWED, v);
        env_note(&t, "ACCELERATE_MIXED_PRECISION", v);
    }
    sync_fixup(&t);
    *c = t;
    return 0;
}

/* ---------------------------------------------------- agreement and log */

/* The canonical text is versioned so that a change of fields changes every
 * hash, rather than letting two builds agree by accident. */
static int canonical_text(const accel_config *c, char *buf, size_t n_bytes)
{
    return snprintf(buf, n_bytes,
                    "accel_config/1 fsdp=%d strategy=%s backward_prefetch=%s forward_prefetch=%d "
                    "offload_params=%d cpu_ram_efficient_loading=%d sync_module_states=%d "
                    "state_dict_type=%s use_orig_params=%d activation_checkpointing=%d "
                    "mixed_precision=%s num_processes=%d num_machines=%d",
                    c->distributed_fsdp, fsdp_strategy_name(c->sharding_strategy),
                    fsdp_backward_prefetch_name(c->backward_prefetch), c->forward_prefetch,
                    c->offload_params, c->cpu_ram_efficient_loading, c->sync_module_states,
                    fsdp_state_dict_type_name(c->state_dict_type), c->use_orig_params,
                    c->activation_checkpointing, c->mixed_precision, c->num_processes,
                    c->num_machines);
}

uint64_t accel_config_hash(const accel_config *c)
{
    char text[512];
    int n = canonical_text(c, text, sizeof text);
    if (n < 0 || (size_t)n >= sizeof text)
        n = (int)strlen(text);
    return checksum_fnv1a(CHECKSUM_FNV1A_BASIS, text, (size_t)n);
}

void accel_config_describe(const accel_config *c, char *buf, size_t n_bytes)
{
    char procs[32];
    if (c->num_processes < 0)
        snprintf(procs, sizeof procs, "unset");
    else
        snprintf(procs, sizeof procs, "%d", c->num_processes);
    if (!c->distributed_fsdp) {
        snprintf(buf, n_bytes,
                 "data parallel without FSDP (NO_SHARD), mixed_precision %s, num_processes %s",
                 c->mixed_precision, procs);
        return;
    }
    snprintf(buf, n_bytes,
             "FSDP %s, backward_prefetch %s, forward_prefetch %s, offload_params %s, "
             "cpu_ram_efficient_loading %s, sync_module_states %s, state_dict %s, "
             "use_orig_params %s, activation_checkpointing %s, mixed_precision %s, "
             "num_processes %s",
             fsdp_strategy_name(c->sharding_strategy),
             fsdp_backward_prefetch_name(c->backward_prefetch), c->forward_prefetch ? "on" : "off",
             c->offload_params ? "on" : "off", c->cpu_ram_efficient_loading ? "on" : "off",
             c->sync_module_states ? "on" : "off", fsdp_state_dict_type_name(c->state_dict_type),
             c->use_orig_params ? "on" : "off", c->activation_checkpointing ? "on" : "off",
             c->mixed_precision, procs);
}
