/* plan.c: `shardtune plan` runs two optimizer steps of the real FSDP
 * schedule on the counting backend (backend_null.c) and the counting
 * communicator (comm_sim.c), as rank 0 of --num_processes ranks would.
 * The numbers are therefore what this program's allocations and
 * collectives add up to, not a separate formula that could drift from
 * them.  Nothing but config.json is read.
 *
 * Three layouts, as the backend a run would open: the CPU backend's (fp32
 * compute buffers; with --device cpu and bf16 on a CPU with bf16
 * instructions, its bf16 mode's: bf16 residual stream and linear weights),
 * or the CUDA backend's with --device cuda, or by default when bf16 is
 * asked for (--bf16 True, mixed_precision: bf16).  For the latter the counting backend reports what
 * backend_cuda_create does (the bf16 residual stream) and keeps the CUDA
 * ops' scratch, and collectives between host and device buffers
 * (fsdp_offload_params) stage the host side through device buffers in
 * comm_buffers, as cuda/comm_nccl.c does.  4-bit weights follow
 * --bnb_4bit_quant_type and --use_nested_quant (or a bitsandbytes 4-bit
 * checkpoint's quantization_config) through model_quantize_linears, as a
 * run's do.
 *
 * Rank 0's numbers are every rank's: fsdp_init pads each unit so that all
 * shards have one size, every rank runs the same schedule on full
 * micro-batches (--max_seq_len tokens, as the plan assumes), and the only
 * rank-dependent count (a broadcast's root) occurs in loading, which the
 * plan does not run.
 *
 * The peaks are those of a whole training run: after the steps, the plan
 * also gathers the adapter as train.c's save_adapter does at the end of
 * every run (one unit's full trainable buffer in comm_buffers, larger than
 * the step's reduce-scatter shard), so that every category equals a real
 * run's to the byte.  That gather is a one-off and is not counted in the
 * traffic per step. */
#include "plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "comm.h"
#include "config.h"
#include "fsdp.h"
#include "model.h"
#include "optim.h"
#include "preempt.h"
#include "session.h"
#include "weight4.h"

static int storage_of(const run_config *c, const llama_config *cfg, storage_dtype *dt, errbuf *e)
{
    const char *name = c->torch_dtype ? c->torch_dtype : cfg->torch_dtype;
    if (!name || !*name || !strcmp(name, "float32"))
        *dt = DT_F32;
    else if (!strcmp(name, "bfloat16"))
        *dt = DT_BF16;
    else if (!strcmp(name, "float16"))
        *dt = DT_F16;
    else
        return err_set(e, "--torch_dtype: '%s' is not float32, bfloat16 or float16", name);
    return 0;
}

/* NCCL's staging (cuda/comm_nccl.c, run and run_staged): a collective with
 * one side in host memory and the other on the device copies the host side
 * through a device buffer allocated for the collective and freed at its
 * end; all-host collectives run on MPI, all-device ones in place.  The
 * counting communicator's own collectives run after, so traffic is counted
 * as before. */
typedef struct staging {
    backend *be;
    comm_request *(*all_gather)(comm *, comm_group, const void *, void *, size_t, int);
    comm_request *(*reduce_scatter)(comm *, comm_group, const float *, float *, size_t, int);
} staging;

static void stage(comm *c, comm_op_kind kind, comm_group g, const void *send, const void *recv, size_t payload)
{
    backend *be = ((staging *)c->impl)->be;
    const int send_dev = backend_null_on_device(be, send), recv_dev = backend_null_on_device(be, recv);
    if (send_dev == recv_dev)
        return;
    const size_t group = (size_t)c->size[g];
    void *send_stage = NULL, *recv_stage = NULL;
    if (!send_dev)
        send_stage = be->alloc(be, kind == COMM_REDUCE_SCATTER ? payload * group : payload, MEM_COMM);
    if (!recv_dev && send != recv)
        recv_stage = be->alloc(be, kind == COMM_ALL_GATHER ? payload * group : payload, MEM_COMM);
    be->free(be, send_stage);
    be->free(be, recv_stage);
}

static comm_request *staged_all_gather(comm *c, comm_group g, const void *send, void *recv, size_t n, int async)
{
    stage(c, COMM_ALL_GATHER, g, send, recv, comm_payload_bytes(COMM_ALL_GATHER, n, COMM_BYTE));
    return ((staging *)c->impl)->all_gather(c, g, send, recv, n, async);
}

static comm_request *staged_reduce_scatter(comm *c, comm_group g, const float *send, float *recv, size_t n, int async)
{
    stage(c, COMM_REDUCE_SCATTER, g, send, recv, comm_payload_bytes(COMM_REDUCE_SCATTER, n, COMM_F32));
    return ((staging *)c->impl)->reduce_scatter(c, g, send, recv, n, async);
}

/* All-reduces and broadcasts are in place (send == recv): never staged. */
static void stage_through_device(comm *sim, backend *be)
{
    if (sim->impl)
        die(EXIT_FAILURE_RUN, "plan: the counting communicator has state of its own; staging cannot wrap it");
    staging *st = xcalloc(1, sizeof *st);
    st->be = be;
    st->all_gather = sim->all_gather;
    st->reduce_scatter = sim->reduce_scatter;
    sim->impl = st;
    sim->all_gather = staged_all_gather;
    sim->reduce_scatter = staged_reduce_scatter;
}

/* The layout a run would have: the CUDA backend's for --device cuda, or
 * (device auto) when bf16 is asked for; the device comes from --device,
 * else $SHARDTUNE_DEVICE, as a run's does. */
static int plans_cuda(const run_config *c, const accel_config *acc, int *bf16, errbuf *e)
{
    const char *env = getenv("SHARDTUNE_DEVICE");
    const char *device = c->device ? c->device : env && *env ? env : "auto";
    if (!c->device && config_check_device(device, "SHARDTUNE_DEVICE", e) != 0)
        return -1;
    *bf16 = c->bf16 || strcmp(acc->mixed_precision, "bf16") == 0;
    return strcmp(device, "cuda") == 0 || (strcmp(device, "auto") == 0 && *bf16);
}

/* One optimizer step of train.c's schedule on full micro-batches. */
static void plan_step(fsdp *f, optimizer *opt, int B, int T, int G)
{
    backend *be = f->be;
    comm *cm = f->cm;
    double counts[3] = {0, 0, 0}, votes[PREEMPT_AGREE_ELEMS] = {0};
    if (cm->size[COMM_WORLD] > 1) /* the step boundary's pre-emption vote (preempt_check) */
        cm->all_reduce(cm, COMM_WORLD, votes, PREEMPT_AGREE_ELEMS, COMM_F64, 0);
    cm->all_reduce(cm, COMM_WORLD, counts, 2, COMM_F64, 0);
    fsdp_zero_grads(f);
    for (int t = 0; t < G; t++) {
        size_t n_bytes = (size_t)B * T * sizeof(int32_t);
        model_batch mb = {.batch = B, .seq = T};
        mb.ids = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        mb.targets = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        mb.pos = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        fsdp_forward_backward(f, &mb, 1.0f, 1, NULL);
        be->free(be, mb.ids);
        be->free(be, mb.targets);
        be->free(be, mb.pos);
    }
    cm->all_reduce(cm, COMM_WORLD, counts + 2, 1, COMM_F64, 0);
    fsdp_finish_grads(f);
    optim_step(opt, be, f->param_shards, f->grad_shards, 1e-4f);
}

static double gib(size_t n_bytes) { return (double)n_bytes / (1024.0 * 1024.0 * 1024.0); }

int plan_run(const run_config *c, int argc, char **argv, errbuf *e)
{
    accel_config acc;
    if (session_load_accel_config(&acc, c, c->num_processes, e) != 0)
        return -1;
    lora_config lc = {.r = c->lora_r, .alpha = (float)c->lora_alpha, .dropout = (float)c->lora_dropout,
                      .use_rslora = c->use_rslora, .use_dora = c->use_dora};
    if (lora_parse_targets(c->lora_target_modules, &lc.target_mask, e) != 0)
        return -1;
    llama_config cfg;
    if (llama_config_load(c->model_name_or_path, &cfg, e) != 0)
        return -1;
    storage_dtype dt = DT_F32;
    if (storage_of(c, &cfg, &dt, e) != 0)
        return -1;

    int bf16 = 0;
    const int cuda = plans_cuda(c, &acc, &bf16, e);
    if (cuda < 0)
        return -1;
    /* 4-bit as a run decides it (session.c): the flags, or a checkpoint
     * bitsandbytes saved 4-bit (config.json's quantization_config) */
    const int four_bit = c->use_4bit_quantization || cfg.bnb_4bit;
    const char *q4_type = cfg.bnb_4bit ? cfg.bnb_4bit_quant_type : c->bnb_4bit_quant_type;
    const storage_dtype q4 = weight4_dtype(strcmp(q4_type, "fp4") == 0 ? QUANT4_FP4 : QUANT4_NF4,
                                           cfg.bnb_4bit ? cfg.bnb_4bit_nested : c->use_nested_quant);

    /* --device cpu with bf16: the CPU's bf16 mode where this CPU has one, as
     * a run here would open it */
    const char *why_not;
    const int cpu_bf16 = !cuda && bf16 && backend_cpu_bf16_usable(&why_not);
    backend *be = cuda ? backend_null_create_cuda(bf16) : cpu_bf16 ? backend_null_create_cpu_bf16() : backend_null_create();
    comm *cm = comm_sim_create(fsdp_comm_layout(acc.sharding_strategy), c->num_processes, c->ranks_per_node);
    if (cuda)
        stage_through_device(cm, be);
    model m;
    fsdp f;
    optimizer opt;
    if (model_init_planned(&m, c->model_name_or_path, &lc, dt, be, e) != 0)
        return -1;
    if (four_bit)
        model_quantize_linears(&m, q4);
    fsdp_init(&f, &m, be, cm, &acc);
    fsdp_bind_resident(&f);
    const int B = c->per_device_train_batch_size, T = c->max_seq_len, G = c->gradient_accumulation_steps;
    model_prepare(&m, B, T, c->gradient_checkpointing);
    optim_init(&opt, be, f.n_ranges, f.shard_elems, 0.9f, 0.999f, 1e-8f, 0.0f, acc.offload_params);
    m.training = 1;

    /* optimizer steps as train.c runs them: two, because the CUDA ops'
     * scratch, allocated in the first, is held through the second (a run of
     * one step peaks lower); the traffic is the second's */
    size_t sent_per_step[COMM_N_OPS];
    for (int step = 0; step < 2; step++) {
        size_t sent_before[COMM_N_OPS];
        memcpy(sent_before, cm->bytes_sent, sizeof sent_before);
        plan_step(&f, &opt, B, T, G);
        for (int k = 0; k < COMM_N_OPS; k++)
            sent_per_step[k] = cm->bytes_sent[k] - sent_before[k];
    }

    /* the end of the run: the adapter gathered whole, unit by unit, to be
     * saved (a host buffer of the real size, though the counting backend
     * copies nothing into it) */
    for (int ui = 0; ui < m.n_units; ui++)
        if (m.units[ui].n_train_elems) {
            float *host = xmalloc(m.units[ui].n_train_elems * sizeof(float));
            fsdp_gather_trainable(&f, ui, 0, host);
            free(host);
        }

    size_t frozen_total = 0, n_frozen = 0;
    for (int ui = 0; ui < m.n_units; ui++) {
        frozen_total += m.units[ui].n_storage_bytes;
        n_frozen += m.units[ui].n_frozen_elems;
    }
    char desc[512], nodes[96];
    accel_config_describe(&acc, desc, sizeof desc);
    comm_describe_nodes(cm, nodes, sizeof nodes);
    const char *layout = !cuda ? (cpu_bf16 ? "cpu-bf16" : "cpu") : bf16 ? "cuda-bf16" : "cuda-fp32";
    /* a node's ranks: --ranks_per_node, else all of them on one node */
    const int per_node = c->ranks_per_node > 0 && c->ranks_per_node < c->num_processes ? c->ranks_per_node
                                                                                         : c->num_processes;
    if (c->json) {
        printf("{\"layout\": \"%s\", \"num_processes\": %d, \"ranks_per_node\": %d, \"shard_group\": %d, "
               "\"replica_group\": %d, \"frozen_params\": %zu, \"frozen_bytes\": %zu, \"frozen_linear_dtype\": \"%s\", "
               "\"trainable_params\": %zu, \"peak_bytes\": {",
               layout, c->num_processes, per_node, f.shard_size, f.replica_size, n_frozen, frozen_total,
               storage_dtype_name(four_bit ? q4 : dt), model_n_trainable(&m));
        for (int k = 0; k < MEM_N_CATEGORIES; k++)
            printf("%s\"%s\": %zu", k ? ", " : "", mem_category_names[k], be->peak_bytes[k]);
        size_t host = 0;
        for (int k = 0; k < MEM_N_CATEGORIES; k++)
            host += be->host_peak_bytes[k];
        printf("}, \"peak_total_bytes\": %zu, \"host_offload_bytes\": %zu, \"bytes_sent_per_step\": {",
               be->peak_total_bytes, host);
        for (int k = 0; k < COMM_N_OPS; k++)
            printf("%s\"%s\": %zu", k ? ", " : "", comm_op_name((comm_op_kind)k), sent_per_step[k]);
        printf("}}\n");
    } else {
        printf("plan: %s, %d layers, hidden %d, %zu frozen parameters (%.2f GiB as %s%s%s), %zu trainable (LoRA r=%d)\n",
               c->model_name_or_path, cfg.n_layers, cfg.hidden_size, n_frozen, gib(frozen_total), storage_dtype_name(dt),
               four_bit ? ", linear layers " : "", four_bit ? storage_dtype_name(q4) : "",
               model_n_trainable(&m), lc.r);
        printf("  %d rank(s) = %s, %s; shard group %d, replica group %d\n", c->num_processes, nodes, desc,
               f.shard_size, f.replica_size);
        printf("  micro-batch %d x %d tokens, %d accumulation steps, gradient checkpointing %s\n", B, T, G,
               c->gradient_checkpointing ? "on" : "off");
        printf("peak bytes per rank (GiB; %s):\n",
               !cuda ? (cpu_bf16 ? "CPU backend layout, bf16 residual stream and linear weights, fp32 otherwise"
                                 : "CPU backend layout, fp32 compute buffers")
               : bf16 ? "CUDA backend layout, bf16 residual stream, fp32 inside a layer and in gathered units"
                      : "CUDA backend layout, fp32");
        for (int k = 0; k < MEM_N_CATEGORIES; k++)
            printf("  %-17s %10.3f\n", mem_category_names[k], gib(be->peak_bytes[k]));
        printf("  %-17s %10.3f\n", "total", gib(be->peak_total_bytes));
        size_t host = 0;
        for (int k = 0; k < MEM_N_CATEGORIES; k++)
            host += be->host_peak_bytes[k];
        if (host)
            printf("  %-17s %10.3f  (fsdp_offload_params: shards and AdamW moments; %d rank(s) a node: %.3f)\n",
                   "offloaded to host", gib(host), per_node, gib(host * (size_t)per_node));
        printf("bytes each rank sends per optimizer step (GiB):\n");
        size_t all = 0;
        for (int k = 0; k < COMM_N_OPS; k++) {
            size_t n = sent_per_step[k];
            all += n;
            printf("  %-17s %10.3f\n", comm_op_name((comm_op_kind)k), gib(n));
        }
        printf("  %-17s %10.3f\n", "total", gib(all));
    }
    optim_free(&opt, be);
    fsdp_free(&f);
    model_free(&m);
    free(cm->impl); /* the staging, if any */
    cm->impl = NULL;
    cm->destroy(cm);
    be->destroy(be);
    return 0;
}
