/* train.c: build model -> load data -> loop (forward, backward, clip,
 * AdamW, schedule, log) -> save the adapter.  Also evaluation. */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "optim.h"
#include "peft_adapter.h"
#include "rng.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

backend *train_backend_create(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    int threads = env && atoi(env) > 0 ? atoi(env) : omp_get_max_threads();
    return backend_cpu_create(threads);
}

int train_load_model(model *m, const run_config *c, int want_lora, backend *be, errbuf *e)
{
    lora_config lc = {0};
    if (c->adapter) {
        if (peft_adapter_read_config(c->adapter, &lc, e) != 0)
            return -1;
    } else if (want_lora) {
        lc.r = c->lora_r;
        lc.alpha = (float)c->lora_alpha;
        lc.dropout = (float)c->lora_dropout;
        lc.use_rslora = c->use_rslora;
        if (lora_parse_targets(c->lora_target_modules, &lc.target_mask, e) != 0)
            return -1;
    }
    if (model_load(m, c->model_name_or_path, &lc, (uint64_t)c->seed, be, e) != 0)
        return -1;
    if (c->adapter && peft_adapter_load(m, c->adapter, e) != 0)
        return -1;
    return 0;
}

void train_upload_batch(backend *be, const host_batch *hb, model_batch *mb)
{
    size_t n_bytes = (size_t)hb->batch * hb->seq * sizeof(int32_t);
    mb->batch = hb->batch;
    mb->seq = hb->seq;
    mb->ids = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
    mb->targets = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
    mb->pos = be->alloc(be, n_bytes, MEM_ACTIVATIONS);
    mb->seg = NULL;
    be->copy_to_device(be, mb->ids, hb->ids, n_bytes);
    be->copy_to_device(be, mb->targets, hb->targets, n_bytes);
    be->copy_to_device(be, mb->pos, hb->pos, n_bytes);
}

void train_release_batch(backend *be, model_batch *mb)
{
    be->free(be, mb->ids);
    be->free(be, mb->targets);
    be->free(be, mb->pos);
    memset(mb, 0, sizeof *mb);
}

static int longest_row(const dataset *d)
{
    int longest = 1;
    for (size_t i = 0; i < d->n_rows; i++)
        longest = d->len[i] > longest ? d->len[i] : longest;
    return longest;
}

static int pad_id_of(const llama_config *cfg) { return cfg->pad_token_id >= 0 ? cfg->pad_token_id : 0; }

static void print_memory(const backend *be)
{
    log_info("peak memory per category (rank 0, %s backend):", be->name);
    for (int c = 0; c < MEM_N_CATEGORIES; c++)
        if (be->peak_bytes[c])
            log_info("  %-17s %10.2f MiB", mem_category_names[c], be->peak_bytes[c] / 1048576.0);
    log_info("  %-17s %10.2f MiB", "total", be->peak_total_bytes / 1048576.0);
}

/* ------------------------------------------------------------------ */

typedef struct step_plan {
    size_t steps_per_epoch;
    int total_steps;
    int warmup_steps;
} step_plan;

/* transformers' arithmetic: an epoch is floor(batches / accumulation)
 * optimizer steps (at least one); warmup from steps or ratio (ceil). */
static step_plan plan_steps(const run_config *c, size_t n_batches)
{
    step_plan p;
    p.steps_per_epoch = n_batches / (size_t)c->gradient_accumulation_steps;
    if (p.steps_per_epoch < 1)
        p.steps_per_epoch = 1;
    p.total_steps = c->max_steps > 0 ? c->max_steps : (int)ceil(c->num_train_epochs * (double)p.steps_per_epoch);
    p.warmup_steps = c->warmup_steps > 0 ? c->warmup_steps : (int)ceil(c->warmup_ratio * p.total_steps);
    return p;
}

int train_run(const run_config *c, errbuf *e)
{
    int rc = -1;
    backend *be = train_backend_create();
    model m;
    dataset data = {0};
    sampler smp = {0};
    optimizer opt = {0};
    FILE *metrics = NULL;
    int sched_id = lr_schedule_from_name(c->lr_scheduler_type);
    if (sched_id < 0) {
        be->destroy(be);
        return err_set(e, "--lr_scheduler_type: '%s' is not one of constant, constant_with_warmup, linear, cosine",
                       c->lr_scheduler_type);
    }
    if (train_load_model(&m, c, 1, be, e) != 0)
        goto out_backend;
    if (dataset_load_jsonl(c->dataset_name, c->max_seq_len, m.cfg.vocab_size, &data, e) != 0)
        goto out_model;
    if (mkdir(c->output_dir, 0777) != 0 && errno != EEXIST) {
        err_set(e, "--output_dir %s: cannot create: %s", c->output_dir, strerror(errno));
        goto out_data;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/metrics.jsonl", c->output_dir);
    metrics = fopen(path, "w");
    if (!metrics) {
        err_set(e, "%s: cannot write: %s", path, strerror(errno));
        goto out_data;
    }

    const int B = c->per_device_train_batch_size, G = c->gradient_accumulation_steps;
    sampler_init(&smp, data.n_rows, B, (uint64_t)c->seed);
    const size_t n_batches = sampler_n_batches(&smp);
    const step_plan plan = plan_steps(c, n_batches);
    model_prepare(&m, B, longest_row(&data), c->gradient_checkpointing);
    optim_init(&opt, &m, (float)c->adam_beta1, (float)c->adam_beta2, (float)c->adam_epsilon,
               (float)c->weight_decay);
    m.training = 1;
    lr_schedule sched = (lr_schedule)sched_id;
    log_info("shardtune train: %zu rows, %zu micro-batches of %d per epoch, %zu optimizer steps per epoch, "
             "%d steps (warmup %d), %zu trainable parameters (LoRA r=%d alpha=%g)",
             data.n_rows, n_batches, B, plan.steps_per_epoch, plan.total_steps, plan.warmup_steps,
             model_n_trainable(&m), m.lora.r, m.lora.alpha);

    double t_start = now_seconds(), t_log = t_start;
    size_t tokens_since_log = 0;
    const size_t *rows;
    for (int step = 0; step < plan.total_steps; step++) {
        int epoch = (int)((size_t)step / plan.steps_per_epoch);
        size_t k0 = ((size_t)step % plan.steps_per_epoch) * (size_t)G;
        size_t k1 = k0 + (size_t)G < n_batches ? k0 + (size_t)G : n_batches;
        /* the step's loss is averaged over every target of its micro-batches */
        host_batch *hbs = xcalloc(k1 - k0, sizeof *hbs);
        size_t n_targets = 0;
        for (size_t k = k0; k < k1; k++) {
            int n = sampler_batch(&smp, epoch, k, &rows);
            dataset_batch(&data, rows, n, pad_id_of(&m.cfg), &hbs[k - k0]);
            n_targets += hbs[k - k0].n_targets;
        }
        float grad_scale = n_targets ? 1.0f / (float)n_targets : 0.0f;
        model_zero_grads(&m);
        double loss_sum = 0.0;
        for (size_t k = k0; k < k1; k++) {
            model_batch mb;
            train_upload_batch(be, &hbs[k - k0], &mb);
            m.dropout_key = rng_hash((uint64_t)c->seed, (uint64_t)step * 65536u + k);
            loss_sum += model_step(&m, &mb, grad_scale, 1, NULL);
            tokens_since_log += (size_t)mb.batch * mb.seq;
            train_release_batch(be, &mb);
            host_batch_free(&hbs[k - k0]);
        }
        free(hbs);
        double grad_norm = sqrt(optim_grad_sum_squares(&m));
        optim_clip(&m, grad_norm, c->max_grad_norm);
        double lr = c->learning_rate * lr_schedule_factor(sched, step, plan.warmup_steps, plan.total_steps);
        optim_step(&opt, &m, (float)lr);

        double loss = n_targets ? loss_sum / (double)n_targets : 0.0;
        if (!isfinite(loss) || !isfinite(grad_norm)) {
            err_set(e, "step %d: loss %g, grad norm %g: training diverged (lower --learning_rate?)", step + 1,
                    loss, grad_norm);
            goto out_all;
        }
        if ((step + 1) % c->logging_steps == 0 || step + 1 == plan.total_steps) {
            double t = now_seconds();
            double tps = tokens_since_log / (t - t_log > 1e-9 ? t - t_log : 1e-9);
            double ep = (double)(step + 1) / (double)plan.steps_per_epoch;
            fprintf(metrics,
                    "{\"step\": %d, \"epoch\": %.6g, \"loss\": %.9g, \"learning_rate\": %.9g, "
                    "\"grad_norm\": %.9g, \"tokens_per_second\": %.6g, \"mfu\": null, \"peak_bytes\": %zu}\n",
                    step + 1, ep, loss, lr, grad_norm, tps, be->peak_total_bytes);
            fflush(metrics);
            log_info("step %d/%d | epoch %.2f | loss %.4f | lr %.3e | grad_norm %.4f | %.0f tok/s | peak %.1f MiB",
                     step + 1, plan.total_steps, ep, loss, lr, grad_norm, tps, be->peak_total_bytes / 1048576.0);
            t_log = t;
            tokens_since_log = 0;
        }
    }
    log_info("trained %d steps in %.1f s", plan.total_steps, now_seconds() - t_start);
    if (peft_adapter_save(&m, c->output_dir, c->model_name_or_path, e) != 0)
        goto out_all;
    log_info("adapter written to %s (adapter_config.json, adapter_model.safetensors)", c->output_dir);
    print_memory(be);
    rc = 0;
out_all:
    optim_free(&opt, &m);
    sampler_free(&smp);
    if (metrics && fclose(metrics) != 0 && rc == 0)
        rc = err_set(e, "%s/metrics.jsonl: write failed", c->output_dir);
out_data:
    dataset_free(&data);
out_model:
    model_free(&m);
out_backend:
    be->destroy(be);
    return rc;
}

/* ------------------------------------------------------------------ */

int eval_run(const run_config *c, errbuf *e)
{
    int rc = -1;
    backend *be = train_backend_create();
    model m;
    dataset data = {0};
    if (train_load_model(&m, c, 0, be, e) != 0)
        goto out_backend;
    if (dataset_load_jsonl(c->dataset_name, c->max_seq_len, m.cfg.vocab_size, &data, e) != 0)
        goto out_model;
    const int B = c->per_device_eval_batch_size;
    model_prepare(&m, B, longest_row(&data), 0);
    double loss_sum = 0.0;
    size_t n_targets = 0;
    size_t *rows = xmalloc((size_t)B * sizeof *rows);
    for (size_t r0 = 0; r0 < data.n_rows; r0 += (size_t)B) {
        int n = 0;
        for (size_t r = r0; r < data.n_rows && n < B; r++)
            rows[n++] = r;
        host_batch hb;
        model_batch mb;
        dataset_batch(&data, rows, n, pad_id_of(&m.cfg), &hb);
        train_upload_batch(be, &hb, &mb);
        loss_sum += model_step(&m, &mb, 0.0f, 0, NULL);
        n_targets += hb.n_targets;
        train_release_batch(be, &mb);
        host_batch_free(&hb);
    }
    free(rows);
    if (!n_targets) {
        err_set(e, "%s: no tokens to evaluate (every row shorter than 2 tokens or fully ignored)", c->dataset_name);
        goto out_data;
    }
    double loss = loss_sum / (double)n_targets;
    if (c->json)
        log_info("{\"eval_loss\": %.9g, \"eval_tokens\": %zu, \"eval_rows\": %zu}", loss, n_targets, data.n_rows);
    else
        log_info("eval_loss: %.6f", loss);
    rc = 0;
out_data:
    dataset_free(&data);
out_model:
    model_free(&m);
out_backend:
    be->destroy(be);
    return rc;
}
