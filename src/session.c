/* session.c: setting up and tearing down a run (see session.h). */
#define _GNU_SOURCE /* sched_getaffinity */
#include "session.h"

#include <sched.h>

#include <mpi.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "checksum.h"
#include "peft_adapter.h"
#include "rank_agree.h"
#include "cuda_plugin.h"
#include "weight4.h"

static backend *create_cpu_backend(int bf16)
{
    const char *env = getenv("OMP_NUM_THREADS");
    int threads = env && atoi(env) > 0 ? atoi(env) : omp_get_max_threads();
    /* mpirun binds each rank to one core by default: more threads than the
     * cores a rank may use only take turns on them */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) < threads)
        log_info("note: %d OpenMP threads but this rank may run on %d core(s): give it more "
                 "(mpirun --map-by slot:PE=%d, or --bind-to none) or set OMP_NUM_THREADS=%d",
                 threads, CPU_COUNT(&set), threads, CPU_COUNT(&set));
    return backend_cpu_create(threads, bf16);
}

/* This rank's index among the ranks of its node: which GPU it takes. */
static int node_rank(void)
{
    MPI_Comm node;
    int rank = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, &rank);
    MPI_Comm_free(&node);
    return rank;
}

/* The CUDA backend, one GPU per rank of a node, and NCCL in place of MPI
 * for the device buffers. */
static int open_cuda(session *s, const cuda_plugin *p, int bf16, errbuf *e)
{
    int n = p->device_count();
    s->be = p->backend_create(n ? node_rank() % n : 0, bf16, e);
    if (!s->be)
        return -1;
    comm *nccl = p->comm_create(s->cm, s->be, e);
    if (!nccl)
        return -1;
    s->cm = nccl;
    return 0;
}

/* --device (else $SHARDTUNE_DEVICE, else auto): cpu, cuda, or auto: cuda
 * when the CUDA plugin is there and a GPU answers on every rank (a machine
 * without an NVIDIA device loads nothing). */
static int open_backend(session *s, const run_config *c, errbuf *e)
{
    const char *env = getenv("SHARDTUNE_DEVICE");
    const char *device = c->device ? c->device : env && *env ? env : "auto";
    if (!c->device && config_check_device(device, "SHARDTUNE_DEVICE", e) != 0)
        return -1;
    const int bf16 = c->bf16 || strcmp(s->acc.mixed_precision, "bf16") == 0;
    const cuda_plugin *plugin = NULL;
    errbuf plugin_err;
    if (strcmp(device, "cuda") == 0 && !(plugin = cuda_plugin_open(e)))
        return -1;
    if (strcmp(device, "auto") == 0 && cuda_plugin_device_present() && !(plugin = cuda_plugin_open(&plugin_err)) &&
        s->rank == 0)
        log_info("note: an NVIDIA device is present but the run stays on the CPU: %s", plugin_err.msg);
    int want_cuda = plugin && (strcmp(device, "cuda") == 0 || plugin->device_count() > 0);
    int lo = want_cuda, hi = want_cuda;
    MPI_Allreduce(MPI_IN_PLACE, &lo, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &hi, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (lo != hi)
        return err_set(e, "--device auto: some ranks found a GPU and others none; pass --device cpu or --device cuda");
    if (want_cuda)
        return open_cuda(s, plugin, bf16, e);
    const char *why_not = NULL;
    const int cpu_bf16 = bf16 && backend_cpu_bf16_usable(&why_not);
    if (bf16 && !cpu_bf16 && s->rank == 0)
        log_info("note: bf16 asked for (--bf16 or mixed_precision: bf16) but %s: compute stays fp32", why_not);
    s->be = create_cpu_backend(cpu_bf16);
    return 0;
}

static uint64_t hash_args(int argc, char **argv)
{
    uint64_t h = CHECKSUM_FNV1A_BASIS;
    for (int i = 0; i < argc; i++) /* with each terminating NUL: flag boundaries count */
        h = checksum_fnv1a(h, argv[i], strlen(argv[i]) + 1);
    return h;
}

/* Every rank must run the same flags and configuration, on the same model
 * and adapter files (rank_agree.h). */
static int check_agreement(session *s, const run_config *c, int argc, char **argv, errbuf *e)
{
    uint64_t mine[6] = {hash_args(argc, argv), accel_config_hash(&s->acc)}, adapter[3];
    rank_agree_dir_files(c->model_name_or_path, mine + 2);
    rank_agree_dir_files(c->adapter, adapter);
    mine[5] = adapter[0] + adapter[1] + adapter[2];
    char what[4][4400];
    const char *model = c->model_name_or_path ? c->model_name_or_path : "";
    snprintf(what[0], sizeof what[0], "read another config.json than rank 0 (in %s)", model);
    snprintf(what[1], sizeof what[1],
             "read other weight files than rank 0 (the *.safetensors of %s: names, sizes or first MiB)", model);
    snprintf(what[2], sizeof what[2], "read other tokenizer or model files than rank 0 (the other files of %s)",
             model);
    snprintf(what[3], sizeof what[3], "read other adapter files than rank 0 (--adapter %s)",
             c->adapter ? c->adapter : "");
    const char *const whats[6] = {"was started with other flags than rank 0",
                                  "has another accelerate configuration than rank 0 (config file or FSDP_* "
                                  "environment)",
                                  what[0], what[1], what[2], what[3]};
    return rank_agree_check(s->cm, mine, 6, whats, e);
}

int session_load_accel_config(accel_config *acc, const run_config *c, int world, errbuf *e)
{
    accel_config_defaults(acc);
    if (c->config_file && accel_config_load_yaml(c->config_file, acc, e) != 0)
        return -1;
    if (accel_config_apply_env(acc, e) != 0)
        return -1;
    if (acc->num_processes > 0 && acc->num_processes != world)
        return err_set(e, "%s: num_processes is %d but the job has %d MPI ranks",
                       c->config_file ? c->config_file : "configuration", acc->num_processes, world);
    if (acc->num_machines > 1 && world % acc->num_machines != 0)
        return err_set(e, "%s: num_machines %d does not divide the %d ranks",
                       c->config_file ? c->config_file : "configuration", acc->num_machines, world);
    return 0;
}

/* --NAME on the command line (as "--NAME value" or "--NAME=value"). */
static int flag_given(int argc, char **argv, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, n) == 0 &&
            (argv[i][2 + n] == '\0' || argv[i][2 + n] == '='))
            return 1;
    return 0;
}

/* A checkpoint saved with bitsandbytes 4-bit weights (config.json's
 * quantization_config) fixes the quant type and nesting: a flag that asks
 * for others is refused. */
static int check_prequantized_flags(const session *s, const run_config *c, int argc, char **argv, errbuf *e)
{
    const llama_config *q = &s->m.cfg;
    if (flag_given(argc, argv, "bnb_4bit_quant_type") && strcmp(c->bnb_4bit_quant_type, q->bnb_4bit_quant_type) != 0)
        return err_set(e, "--bnb_4bit_quant_type %s: %s/config.json's quantization_config says %s (the checkpoint's "
                          "weights are already 4-bit)", c->bnb_4bit_quant_type, c->model_name_or_path,
                       q->bnb_4bit_quant_type);
    if (flag_given(argc, argv, "use_nested_quant") && !c->use_nested_quant != !q->bnb_4bit_nested)
        return err_set(e, "--use_nested_quant %s: %s/config.json's quantization_config has bnb_4bit_use_double_quant "
                          "%s (the checkpoint's weights are already 4-bit)", c->use_nested_quant ? "True" : "False",
                       c->model_name_or_path, q->bnb_4bit_nested ? "true" : "false");
    return 0;
}

/* QLoRA: the layers' linear weights become 4-bit codes in the frozen
 * buffers (quantized on load by fsdp.c, or read as a *-bnb-4bit checkpoint
 * saved them; dequantized to fp32 unit by unit when a unit is gathered for
 * compute). */
static int use_4bit(session *s, const run_config *c, int argc, char **argv, errbuf *e)
{
    const int saved = s->m.cfg.bnb_4bit;
    if (saved && check_prequantized_flags(s, c, argc, argv, e) != 0)
        return -1;
    const char *type = saved ? s->m.cfg.bnb_4bit_quant_type : c->bnb_4bit_quant_type;
    const int nested = saved ? s->m.cfg.bnb_4bit_nested : c->use_nested_quant;
    size_t before = 0, after = 0;
    for (int ui = 0; ui < s->m.n_units; ui++)
        before += s->m.units[ui].n_storage_bytes;
    if (!saved) /* the checkpoint's own are set by model_init */
        model_quantize_linears(&s->m, weight4_dtype(strcmp(type, "fp4") == 0 ? QUANT4_FP4 : QUANT4_NF4, nested));
    for (int ui = 0; ui < s->m.n_units; ui++)
        after += s->m.units[ui].n_storage_bytes;
    if (s->rank == 0) {
        if (saved)
            log_info("4-bit: linear weights as %s%s, blocks of %d, as bitsandbytes saved them: frozen weights %.3f MiB",
                     type, nested ? " with nested absmax" : "", WEIGHT4_BLOCKSIZE, after / 1048576.0);
        else
            log_info("4-bit: linear weights as %s%s, blocks of %d: frozen weights %.3f MiB (%.3f MiB as loaded)",
                     type, nested ? " with nested absmax" : "", WEIGHT4_BLOCKSIZE, after / 1048576.0,
                     before / 1048576.0);
        if (strcmp(c->bnb_4bit_compute_dtype, "float32") != 0) /* the precision is --bf16's */
            log_info("note: --bnb_4bit_compute_dtype %s: the %s backend dequantizes to fp32; its products %s",
                     c->bnb_4bit_compute_dtype, strcmp(s->be->name, "cpu") == 0 ? "CPU" : "CUDA",
                     s->be->activation_dtype == DT_BF16 ? "round their inputs to bf16 and accumulate in fp32 (--bf16)"
                                                        : "are fp32 (--bf16 True makes them bf16)");
    }
    return 0;
}

int session_open(session *s, const run_config *c, int want_lora, int vocab_size, int argc, char **argv, errbuf *e)
{
    memset(s, 0, sizeof *s);
    MPI_Comm_rank(MPI_COMM_WORLD, &s->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &s->world);
    if (session_load_accel_config(&s->acc, c, s->world, e) != 0)
        return -1;
    s->cm = comm_mpi_create(fsdp_comm_layout(s->acc.sharding_strategy), 1, e);
    if (!s->cm)
        return -1;
    if (check_agreement(s, c, argc, argv, e) != 0)
        return -1;
    if (s->rank == 0 && c->config_file)
        accel_config_print_notes(&s->acc);
    /* Ranks find their node from MPI; accelerate's num_machines and
     * machine_rank are only checked against the world size. */
    if (s->rank == 0 && c->config_file && s->acc.num_machines != s->cm->n_nodes)
        log_info("note: %s says num_machines %d but MPI found %d node(s); shardtune uses what MPI reports "
                 "(num_machines and machine_rank are not used)",
                 c->config_file, s->acc.num_machines, s->cm->n_nodes);
    if (open_backend(s, c, e) != 0)
        return -1;
    const char *profile = getenv("SHARDTUNE_PROFILE");
    if (profile && atoi(profile) > 0) /* after the communicator, which keeps the backend itself */
        s->be = backend_profile_wrap(s->be);

    lora_config lc = {0};
    if (c->adapter) {
        if (peft_adapter_read_config(c->adapter, &lc, e) != 0)
            return -1;
    } else if (want_lora) {
        lc.r = c->lora_r;
        lc.alpha = (float)c->lora_alpha;
        lc.dropout = (float)c->lora_dropout;
        lc.use_rslora = c->use_rslora;
        lc.use_dora = c->use_dora;
        if (lora_parse_targets(c->lora_target_modules, &lc.target_mask, e) != 0)
            return -1;
        if (c->modules_to_save)
            lora_parse_modules_to_save(c->modules_to_save, &lc);
    }
    safetensors *adapter = NULL;
    if (c->adapter && !(adapter = peft_adapter_open_weights(c->adapter, e)))
        return -1;
    int rc = -1;
    if (model_init(&s->m, c->model_name_or_path, &lc, vocab_size, adapter, s->be, e) != 0)
        goto out;
    if ((c->use_4bit_quantization || s->m.cfg.bnb_4bit) && use_4bit(s, c, argc, argv, e) != 0)
        goto out;
    fsdp_init(&s->f, &s->m, s->be, s->cm, &s->acc);
    if (fsdp_load_frozen(&s->f, c->model_name_or_path, adapter, e) != 0)
        goto out;
    if (fsdp_load_trainable(&s->f, c->model_name_or_path, (uint64_t)c->seed, adapter, e) != 0)
        goto out;
    rc = 0;
out:
    safetensors_close(adapter);
    lora_config_free(&lc); /* the model resolved its rules */
    if (rc != 0)
        return -1;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        s->load_peak_rss_bytes = (size_t)ru.ru_maxrss * 1024u;
    return 0;
}

void session_close(session *s)
{
    if (s->f.units)
        fsdp_free(&s->f);
    if (s->m.units)
        model_free(&s->m);
    if (s->cm)
        s->cm->destroy(s->cm);
    if (s->be)
        s->be->destroy(s->be);
    memset(s, 0, sizeof *s);
}

void session_upload_batch(session *s, const host_batch *hb, model_batch *mb)
{
    backend *be = s->be;
    size_t n_bytes = (size_t)hb->batch * hb->seq * sizeof(int32_t);
    mb->batch = hb->batch;
    mb->seq = hb->seq;
    mb->ids = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
    mb->targets = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
    mb->pos = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
    mb->seg = NULL;
    if (hb->seg) {
        mb->seg = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        be->copy_to_device(be, mb->seg, hb->seg, n_bytes);
    }
    be->copy_to_device(be, mb->ids, hb->ids, n_bytes);
    be->copy_to_device(be, mb->targets, hb->targets, n_bytes);
    be->copy_to_device(be, mb->pos, hb->pos, n_bytes);
}

void session_release_batch(session *s, model_batch *mb)
{
    s->be->free(s->be, mb->ids);
    s->be->free(s->be, mb->targets);
    s->be->free(s->be, mb->pos);
    s->be->free(s->be, mb->seg);
    memset(mb, 0, sizeof *mb);
}

int session_pad_id(const session *s) { return s->m.cfg.pad_token_id >= 0 ? s->m.cfg.pad_token_id : 0; }

double session_run_batch(session *s, const host_batch *hb, float grad_scale, int do_backward, float *logits)
{
    host_batch empty;
    int32_t pad = session_pad_id(s), ignore = IGNORE_INDEX, zero = 0;
    if (!hb) { /* one ignored token: runs every unit, contributes nothing */
        empty = (host_batch){.batch = 1, .seq = 1, .ids = &pad, .targets = &ignore, .pos = &zero};
        hb = &empty;
    }
    model_batch mb;
    session_upload_batch(s, hb, &mb);
    double loss = fsdp_forward_backward(&s->f, &mb, grad_scale, do_backward, logits);
    session_release_batch(s, &mb);
    return loss;
}

void session_sum(session *s, double *values, int n)
{
    if (s->world > 1)
        s->cm->all_reduce(s->cm, COMM_WORLD, values, (size_t)n, COMM_F64, 0);
}

enum {
    STAT_PEAK = 0,
    STAT_TOTAL = MEM_N_CATEGORIES,
    STAT_ALLOCATOR, /* what the device allocator held: >= total on a GPU */
    STAT_HOST,
    STAT_SENT,
    STAT_RSS = STAT_SENT + COMM_N_OPS,
    N_STATS
};

static void write_json(const session *s, const uint64_t *all, double hidden, FILE *f)
{
    char hidden_text[32] = "null"; /* not measured by every communicator */
    if (!s->cm->overlap_unmeasured)
        snprintf(hidden_text, sizeof hidden_text, "%.4f", hidden);
    fprintf(f, "{\"world_size\": %d, \"backend\": \"%s\", \"sharding_strategy\": \"%s\", \"shard_group\": %d, "
               "\"replica_group\": %d, \"hidden_fraction\": %s, \"ranks\": [", s->world, s->be->name,
            fsdp_strategy_name(s->acc.sharding_strategy), s->f.shard_size, s->f.replica_size, hidden_text);
    for (int r = 0; r < s->world; r++) {
        const uint64_t *st = all + (size_t)r * N_STATS;
        fprintf(f, "%s{\"rank\": %d, \"peak_bytes\": {", r ? ", " : "", r);
        for (int c = 0; c < MEM_N_CATEGORIES; c++)
            fprintf(f, "%s\"%s\": %llu", c ? ", " : "", mem_category_names[c], (unsigned long long)st[STAT_PEAK + c]);
        fprintf(f, "}, \"peak_total_bytes\": %llu, \"allocator_peak_bytes\": %llu, \"host_offload_bytes\": %llu, "
                   "\"bytes_sent\": {",
                (unsigned long long)st[STAT_TOTAL], (unsigned long long)st[STAT_ALLOCATOR],
                (unsigned long long)st[STAT_HOST]);
        for (int k = 0; k < COMM_N_OPS; k++)
            fprintf(f, "%s\"%s\": %llu", k ? ", " : "", comm_op_name((comm_op_kind)k),
                    (unsigned long long)st[STAT_SENT + k]);
        fprintf(f, "}, \"load_peak_rss_bytes\": %llu}", (unsigned long long)st[STAT_RSS]);
    }
    fprintf(f, "]}\n");
}

static void print_table(const session *s, const uint64_t *all, double hidden)
{
    char desc[512], nodes[96], line[1024];
    accel_config_describe(&s->acc, desc, sizeof desc);
    comm_describe_nodes(s->cm, nodes, sizeof nodes);
    log_info("%d rank(s) = %s, %s; shard group %d, replica group %d", s->world, nodes, desc, s->f.shard_size,
             s->f.replica_size);
    for (int row = 0; row < N_STATS; row++) {
        if (row == STAT_PEAK)
            log_info("peak memory per rank (MiB, %s backend):", s->be->name);
        if (row == STAT_SENT)
            log_info("bytes sent per rank (MiB, whole run):");
        if (row == STAT_RSS)
            log_info("process memory (MiB):");
        const char *name = row < STAT_TOTAL ? mem_category_names[row]
                           : row == STAT_TOTAL ? "total"
                           : row == STAT_ALLOCATOR ? "allocator held"
                           : row == STAT_HOST ? "offloaded to host"
                           : row < STAT_RSS ? comm_op_name((comm_op_kind)(row - STAT_SENT))
                                             : "rss after loading";
        int n = snprintf(line, sizeof line, "  %-17s", name);
        for (int r = 0; r < s->world && n < (int)sizeof line - 16; r++)
            n += snprintf(line + n, sizeof line - (size_t)n, " %10.2f", all[(size_t)r * N_STATS + row] / 1048576.0);
        log_info("%s", line);
    }
    double busy = 0.0;
    for (int k = 0; k < COMM_N_OPS; k++)
        busy += s->cm->async_busy_seconds[k];
    if (s->cm->overlap_unmeasured)
        log_info("asynchronous collectives ran %.3f s on their own stream (rank 0); how much of it the compute "
                 "stream waited for is not measured", busy);
    else
        log_info("collective time hidden behind compute (rank 0): %.0f%% (all-gathers %.0f%%, reduce-scatters %.0f%%)",
                 100.0 * hidden, 100.0 * comm_hidden_fraction(s->cm, COMM_ALL_GATHER),
                 100.0 * comm_hidden_fraction(s->cm, COMM_REDUCE_SCATTER));
}

int session_report(session *s, const char *json_path, errbuf *e)
{
    uint64_t mine[N_STATS];
    for (int c = 0; c < MEM_N_CATEGORIES; c++)
        mine[STAT_PEAK + c] = s->be->peak_bytes[c];
    mine[STAT_TOTAL] = s->be->peak_total_bytes;
    mine[STAT_ALLOCATOR] = s->be->allocator_peak_bytes ? s->be->allocator_peak_bytes : s->be->peak_total_bytes;
    mine[STAT_HOST] = 0;
    for (int c = 0; c < MEM_N_CATEGORIES; c++) /* shards and moments: allocated once, so peaks add up */
        mine[STAT_HOST] += s->be->host_peak_bytes[c];
    for (int k = 0; k < COMM_N_OPS; k++)
        mine[STAT_SENT + k] = s->cm->bytes_sent[k];
    mine[STAT_RSS] = s->load_peak_rss_bytes;
    uint64_t *all = xmalloc((size_t)s->world * sizeof mine);
    s->cm->all_gather(s->cm, COMM_WORLD, mine, all, sizeof mine, 0);
    double hidden = comm_hidden_fraction(s->cm, COMM_N_OPS);
    int rc = 0;
    backend_profile_report(s->be);
    if (s->rank == 0) {
        print_table(s, all, hidden);
        if (json_path) {
            FILE *f = fopen(json_path, "w");
            if (!f)
                rc = err_set(e, "%s: cannot write", json_path);
            else {
                write_json(s, all, hidden, f);
                if (fclose(f) != 0)
                    rc = err_set(e, "%s: write failed", json_path);
            }
        }
    }
    free(all);
    return rc;
}
