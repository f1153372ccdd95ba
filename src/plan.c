/* plan.c: `shardtune plan` runs one optimizer step of the real FSDP
 * schedule on the counting backend (backend_null.c) and the counting
 * communicator (comm_sim.c), as rank 0 of --num_processes ranks would.
 * The numbers are therefore what this program's allocations and
 * collectives add up to, not a separate formula that could drift from
 * them: the CPU backend's layout (fp32 compute buffers).  Nothing but
 * config.json is read.
 *
 * Rank 0's numbers are every rank's: fsdp_init pads each unit so that all
 * shards have one size, every rank runs the same schedule on full
 * micro-batches (--max_seq_len tokens, as the plan assumes), and the only
 * rank-dependent count (a broadcast's root) occurs in loading, which the
 * plan does not run.
 *
 * The peaks are those of a whole training run: after the step, the plan
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
#include "session.h"

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

    backend *be = backend_null_create();
    comm *cm = comm_sim_create(fsdp_comm_layout(acc.sharding_strategy), c->num_processes, c->ranks_per_node);
    model m;
    fsdp f;
    optimizer opt;
    if (model_init_planned(&m, c->model_name_or_path, &lc, dt, c->use_4bit_quantization, be, e) != 0)
        return -1;
    fsdp_init(&f, &m, be, cm, &acc);
    fsdp_bind_resident(&f);
    const int B = c->per_device_train_batch_size, T = c->max_seq_len, G = c->gradient_accumulation_steps;
    model_prepare(&m, B, T, c->gradient_checkpointing);
    optim_init(&opt, be, f.n_ranges, f.shard_elems, 0.9f, 0.999f, 1e-8f, 0.0f, acc.offload_params);
    m.training = 1;

    /* one optimizer step, as train.c runs it */
    size_t sent_before[COMM_N_OPS];
    memcpy(sent_before, cm->bytes_sent, sizeof sent_before);
    double counts[3] = {0, 0, 0};
    cm->all_reduce(cm, COMM_WORLD, counts, 2, COMM_F64, 0);
    fsdp_zero_grads(&f);
    for (int t = 0; t < G; t++) {
        size_t n_bytes = (size_t)B * T * sizeof(int32_t);
        model_batch mb = {.batch = B, .seq = T};
        mb.ids = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        mb.targets = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        mb.pos = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
        fsdp_forward_backward(&f, &mb, 1.0f, 1, NULL);
        be->free(be, mb.ids);
        be->free(be, mb.targets);
        be->free(be, mb.pos);
    }
    cm->all_reduce(cm, COMM_WORLD, counts + 2, 1, COMM_F64, 0);
    fsdp_finish_grads(&f);
    optim_step(&opt, be, f.param_shards, f.grad_shards, 1e-4f);
    size_t sent_per_step[COMM_N_OPS];
    for (int k = 0; k < COMM_N_OPS; k++)
        sent_per_step[k] = cm->bytes_sent[k] - sent_before[k];

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
    char desc[512];
    accel_config_describe(&acc, desc, sizeof desc);
    if (c->json) {
        printf("{\"num_processes\": %d, \"shard_group\": %d, \"replica_group\": %d, \"frozen_params\": %zu, "
               "\"frozen_bytes\": %zu, \"trainable_params\": %zu, \"peak_bytes\": {",
               c->num_processes, f.shard_size, f.replica_size, n_frozen, frozen_total, model_n_trainable(&m));
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
        printf("plan: %s, %d layers, hidden %d, %zu frozen parameters (%.2f GiB as %s%s), %zu trainable (LoRA r=%d)\n",
               c->model_name_or_path, cfg.n_layers, cfg.hidden_size, n_frozen, gib(frozen_total), storage_dtype_name(dt),
               c->use_4bit_quantization ? ", linear layers nf4" : "", model_n_trainable(&m), lc.r);
        printf("  %d rank(s), %s; shard group %d, replica group %d\n", c->num_processes, desc, f.shard_size,
               f.replica_size);
        printf("  micro-batch %d x %d tokens, %d accumulation steps, gradient checkpointing %s\n", B, T, G,
               c->gradient_checkpointing ? "on" : "off");
        printf("peak bytes per rank (GiB; CPU backend layout, fp32 compute buffers):\n");
        for (int k = 0; k < MEM_N_CATEGORIES; k++)
            printf("  %-17s %10.3f\n", mem_category_names[k], gib(be->peak_bytes[k]));
        printf("  %-17s %10.3f\n", "total", gib(be->peak_total_bytes));
        size_t host = 0;
        for (int k = 0; k < MEM_N_CATEGORIES; k++)
            host += be->host_peak_bytes[k];
        if (host)
            printf("  %-17s %10.3f  (fsdp_offload_params: shards and AdamW moments)\n", "offloaded to host", gib(host));
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
    cm->destroy(cm);
    be->destroy(be);
    return 0;
}
