/* train.c: set up -> load data -> loop (forward, backward, reduce, clip,
 * AdamW, schedule, log) -> save the adapter.  Also evaluation.
 *
 * Data parallelism: every optimizer step consumes the same global batch
 * whatever the number of ranks: G x N consecutive micro-batches of the
 * epoch's permutation (G = gradient_accumulation_steps, N = ranks), rank r
 * taking micro-batches r, r + N, ...  So N ranks compute what one rank with
 * N x G accumulation computes. */
#include "train.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "bad_steps.h"
#include "checkpoint.h"
#include "fault_inject.h"
#include "flops.h"
#include "optim.h"
#include "peft_adapter.h"
#include "plot_train.h"
#include "preempt.h"
#include "progress.h"
#include "rank_agree.h"
#include "rng.h"
#include "run_data.h"
#include "run_lock.h"
#include "session.h"
#include "train_log.h"

static int longest_row(const dataset *d)
{
    int longest = 1;
    for (size_t i = 0; i < d->n_rows; i++)
        longest = d->len[i] > longest ? d->len[i] : longest;
    return longest;
}

typedef struct step_plan {
    size_t micro_per_step;   /* G x N */
    size_t steps_per_epoch;
    int total_steps;
    int warmup_steps;
} step_plan;

/* transformers' arithmetic: an epoch is floor(batches / (G x N)) optimizer
 * steps (at least one); warmup from steps or ratio (ceil). */
static step_plan plan_steps(const run_config *c, size_t n_batches, int world)
{
    step_plan p;
    p.micro_per_step = (size_t)c->gradient_accumulation_steps * (size_t)world;
    p.steps_per_epoch = n_batches / p.micro_per_step;
    if (p.steps_per_epoch < 1)
        p.steps_per_epoch = 1;
    p.total_steps = c->max_steps > 0 ? c->max_steps : (int)ceil(c->num_train_epochs * (double)p.steps_per_epoch);
    p.warmup_steps = c->warmup_steps > 0 ? c->warmup_steps : (int)ceil(c->warmup_ratio * p.total_steps);
    return p;
}

static st_dtype st_dtype_of(storage_dtype d) { return d == DT_BF16 ? ST_BF16 : d == DT_F16 ? ST_F16 : ST_F32; }

/* The adapter, and the embedding layers when the vocabulary was resized
 * (PEFT's save_embedding_layers "auto"). */
static int save_adapter(session *s, const char *dir, const char *base, errbuf *e)
{
    model *m = &s->m;
    float **host = xcalloc((size_t)m->n_units, sizeof *host);
    for (int ui = 0; ui < m->n_units; ui++)
        if (m->units[ui].n_train_elems) {
            host[ui] = xmalloc(m->units[ui].n_train_elems * sizeof(float));
            fsdp_gather_trainable(&s->f, ui, 0, host[ui]); /* collective: every rank */
        }
    adapter_extra extra[2];
    int n_extra = 0;
    if (model_saves_embeddings(m))
        for (int ui = 0; ui < m->n_units; ui++)
            for (int i = 0; i < m->units[ui].n_params; i++) {
                const param_entry *p = &m->units[ui].params[i];
                if (p->trainable || !*model_embedding_peft_key(p))
                    continue;
                void *data = xmalloc(storage_bytes(p->storage, p->n_elems));
                fsdp_gather_frozen_tensor(&s->f, ui, p, data);
                extra[n_extra++] = (adapter_extra){model_embedding_peft_key(p), st_dtype_of(p->storage),
                                                   {p->shape[0], p->shape[1]}, data};
            }
    int rc = s->rank == 0 ? peft_adapter_save(m, host, extra, n_extra, dir, base, e) : 0;
    for (int i = 0; i < n_extra; i++)
        free((void *)extra[i].data);
    for (int ui = 0; ui < m->n_units; ui++)
        free(host[ui]);
    free(host);
    return rc;
}

/* One optimizer step: this rank's micro-batches of the global batch.
 * Returns the global loss sum and sets *n_targets, *n_tokens (global) and
 * *row_len (this rank's mean row length). */
static double run_step(session *s, const run_config *c, const dataset *data, sampler *smp, const step_plan *plan,
                       int step, double *n_targets, double *n_tokens, double *row_len)
{
    const int G = c->gradient_accumulation_steps;
    const size_t n_batches = sampler_n_batches(smp);
    const int epoch = (int)((size_t)step / plan->steps_per_epoch);
    const size_t step_in_epoch = (size_t)step % plan->steps_per_epoch;
    host_batch *hbs = xcalloc((size_t)G, sizeof *hbs);
    long *ks = xmalloc((size_t)G * sizeof *ks);
    double counts[2] = {0.0, 0.0}; /* targets, tokens */
    for (int t = 0; t < G; t++) {
        ks[t] = sampler_step_micro(step_in_epoch, G, s->world, s->rank, t, n_batches);
        if (ks[t] < 0)
            continue;
        const size_t *rows;
        int n = sampler_batch(smp, epoch, (size_t)ks[t], &rows);
        dataset_batch(data, rows, n, session_pad_id(s), &hbs[t]);
        counts[0] += (double)hbs[t].n_targets;
        counts[1] += (double)hbs[t].batch * hbs[t].seq;
    }
    /* this rank's mean (padded) row length, for the progress line's FLOPs:
     * known without another collective */
    double rows = 0.0;
    for (int t = 0; t < G; t++)
        rows += ks[t] >= 0 ? hbs[t].batch : 0;
    *row_len = rows > 0 ? counts[1] / rows : 0.0;
    /* the step's loss is averaged over every target of the global batch */
    session_sum(s, counts, 2);
    float grad_scale = counts[0] > 0 ? (float)(1.0 / counts[0]) : 0.0f;
    fsdp_zero_grads(&s->f);
    double loss_sum = 0.0;
    for (int t = 0; t < G; t++) {
        /* dropout masks follow the global micro-batch, not the rank */
        s->m.dropout_key = rng_hash((uint64_t)c->seed, (uint64_t)step * 65536u + (uint64_t)(ks[t] < 0 ? 0 : ks[t]));
        loss_sum += session_run_batch(s, ks[t] >= 0 ? &hbs[t] : NULL, grad_scale, 1, NULL);
        if (ks[t] >= 0)
            host_batch_free(&hbs[t]);
    }
    free(hbs);
    free(ks);
    session_sum(s, &loss_sum, 1);
    *n_targets = counts[0];
    *n_tokens = counts[1];
    return loss_sum;
}

/* Mean token loss over a dataset: batch k on rank k % N, every rank making
 * the same number of passes (an empty one when it has no batch left). */
static double evaluate(session *s, const dataset *data, int B, double *n_targets, const progress *prog)
{
    double sums[2] = {0.0, 0.0}; /* loss, targets */
    size_t *rows = xmalloc((size_t)B * sizeof *rows);
    const size_t n_batches = (data->n_rows + (size_t)B - 1) / (size_t)B;
    const int was_training = s->m.training;
    s->m.training = 0;
    for (size_t k0 = 0; k0 < n_batches; k0 += (size_t)s->world) {
        progress_live(prog, "evaluating: batch %zu/%zu", k0 + (size_t)s->world < n_batches ? k0 + (size_t)s->world
                                                                                           : n_batches, n_batches);
        size_t k = k0 + (size_t)s->rank;
        if (k >= n_batches) {
            session_run_batch(s, NULL, 0.0f, 0, NULL);
            continue;
        }
        int n = 0;
        for (size_t r = k * (size_t)B; r < data->n_rows && n < B; r++)
            rows[n++] = r;
        host_batch hb;
        dataset_batch(data, rows, n, session_pad_id(s), &hb);
        sums[0] += session_run_batch(s, &hb, 0.0f, 0, NULL);
        sums[1] += (double)hb.n_targets;
        host_batch_free(&hb);
    }
    s->m.training = was_training;
    free(rows);
    session_sum(s, sums, 2);
    *n_targets = sums[1];
    return sums[1] > 0 ? sums[0] / sums[1] : NAN;
}

/* What train and eval open alike: the tokenizer (with chat tokens), the
 * sharded model sized for it, the pad id, and split 0 of the data. */
static int open_run(session *s, run_data *rd, dataset *data, const run_config *c, int want_lora, int argc,
                    char **argv, errbuf *e)
{
    if (run_data_prepare(rd, c, e) != 0)
        return -1;
    if (session_open(s, c, want_lora, rd->vocab_size, argc, argv, e) != 0)
        return -1;
    s->m.cfg.pad_token_id = run_data_pad_id(rd, s->m.cfg.pad_token_id);
    if (dataset_load(&rd->o, 0, rd->tok, s->m.cfg.vocab_size, data, e) != 0)
        return -1;
    /* a node with another copy of the data would train apart silently */
    char what[4400];
    snprintf(what, sizeof what, "read other data than rank 0 (--dataset_name %s: the tokenized rows differ)",
             c->dataset_name);
    const uint64_t mine = rank_agree_dataset(data);
    return rank_agree_check(s->cm, &mine, 1, (const char *const[]){what}, e);
}

/* The progress line: live on a terminal; the FLOP count of this model and
 * adapter, and the measured peak of the CPU backend (every rank at once,
 * as they share the machine when training). */
static void start_progress(progress *p, session *s, const run_config *c, int start_step, int total_steps)
{
    const int live = s->rank == 0 && isatty(STDERR_FILENO) && !c->disable_tqdm;
    double peak = 0.0;
    if (!strcmp(s->be->name, "cpu")) {
        peak = cpu_gemm_peak(s->be->activation_dtype == DT_BF16);
        session_sum(s, &peak, 1);
    }
    double n_trainable = (double)model_n_trainable(&s->m);
    progress_begin(p, live, start_step, total_steps, &s->m.cfg, n_trainable, peak);
    char peak_text[96] = "unknown on this backend (no MFU)";
    if (peak > 0)
        snprintf(peak_text, sizeof peak_text, "%.3g TFLOP/s (the best %s product, 1024^3, of %d rank(s) at once)",
                 peak / 1e12, s->be->activation_dtype == DT_BF16 ? "bf16" : "fp32", s->world);
    log_info("model FLOPs per token: %.6g at %d tokens a row (bench/lora_flops.py's count); peak %s",
             model_flops_per_token(&s->m.cfg, c->max_seq_len, n_trainable), c->max_seq_len, peak_text);
}

/* The flags, as a JSON list, for the checkpoint's "config". */
static char *flags_json(int argc, char **argv)
{
    json_t *list = json_array();
    for (int i = 0; i < argc; i++)
        json_array_append_new(list, json_string(argv[i]));
    char *text = json_dumps(list, JSON_COMPACT);
    json_decref(list);
    return text;
}

static int resume(session *s, optimizer *opt, const run_config *c, const step_plan *plan, int *start_step, errbuf *e)
{
    char path[4096];
    if (strcmp(c->resume_from_checkpoint, "latest") == 0) {
        if (ckpt_resolve_latest(c->output_dir, path, sizeof path, e) != 0)
            return -1;
    } else {
        snprintf(path, sizeof path, "%s", c->resume_from_checkpoint);
    }
    ckpt_meta meta;
    double t0 = monotonic_seconds();
    if (ckpt_load(&s->f, opt, &meta, path, e) != 0)
        return -1;
    double seconds = monotonic_seconds() - t0;
    if (meta.steps_per_epoch != (int)plan->steps_per_epoch)
        return err_set(e, "%s: written with %d steps per epoch, this run has %zu: keep "
                          "per_device_train_batch_size x gradient_accumulation_steps x ranks the same",
                       path, meta.steps_per_epoch, plan->steps_per_epoch);
    if (meta.seed != c->seed)
        return err_set(e, "%s: written with --seed %lld, this run has %d", path, (long long)meta.seed, c->seed);
    *start_step = meta.global_step;
    log_info("resumed from %s at step %d (%s layout, written by %d rank(s)) in %.3f s", path, meta.global_step,
             meta.layout == CKPT_FULL ? "full" : "sharded", meta.world_size, seconds);
    return 0;
}

static int save_checkpoint(session *s, const optimizer *opt, const run_config *c, const step_plan *plan, int steps_done,
                           const char *config_json, errbuf *e)
{
    ckpt_meta meta = {.layout = s->acc.state_dict_type == STATE_DICT_FULL ? CKPT_FULL : CKPT_SHARDED,
                      .global_step = steps_done, .epoch = steps_done / (int)plan->steps_per_epoch,
                      .steps_per_epoch = (int)plan->steps_per_epoch, .adam_step = opt->step, .seed = c->seed,
                      .world_size = s->world, .fingerprint = s->f.fingerprint};
    char name[64], path[4200];
    snprintf(name, sizeof name, "checkpoint-%d.h5", steps_done);
    snprintf(path, sizeof path, "%s/%s", c->output_dir, name);
    double t0 = monotonic_seconds();
    if (ckpt_save(&s->f, opt, &meta, config_json, path, e) != 0)
        return -1;
    double seconds = monotonic_seconds() - t0;
    if (s->rank == 0 && ckpt_mark_latest(c->output_dir, name, c->save_total_limit, e) != 0)
        return -1;
    struct stat st;
    log_info("checkpoint %s: %.1f MiB written in %.3f s", path, stat(path, &st) == 0 ? st.st_size / 1048576.0 : 0.0,
             seconds);
    return 0;
}

/* A signal or the time limit stopped the run before step `step`: the
 * steps done since the last checkpoint go into one (unless this run just
 * saved that step, or none was done), and the log says why the run ends. */
static int stop_preempted(session *s, const optimizer *opt, const run_config *c, const step_plan *plan, int step,
                          int start_step, int saved_step, const char *config_json, const preempt_watch *pw, errbuf *e)
{
    const int saved = step == start_step || saved_step == step;
    if (!saved && save_checkpoint(s, opt, c, plan, step, config_json, e) != 0)
        return -1;
    if (step == 0)
        log_info("stopping before the first step: %s; nothing to save; exit status %d (pre-empted)", pw->reason,
                 EXIT_PREEMPTED);
    else
        log_info("stopping after step %d of %d: %s; checkpoint-%d.h5 holds every step done; exit status %d "
                 "(pre-empted: requeue or resubmit with --resume_from_checkpoint latest)",
                 step, plan->total_steps, pw->reason, step, EXIT_PREEMPTED);
    return TRAIN_STOPPED;
}

/* The run stops after --max_bad_steps bad steps in a row: the last good
 * state (the parameters and moments untouched since step `good`) goes to
 * checkpoint-GOOD.h5, so that a resumed run retries the bad steps' batches.
 * When this run already saved exactly that state, it is kept as it is. */
static int save_last_good(session *s, const optimizer *opt, const run_config *c, const step_plan *plan, int good,
                          int saved_step, const char *config_json, char *path, size_t n_bytes, errbuf *e)
{
    snprintf(path, n_bytes, "%s/checkpoint-%d.h5", c->output_dir, good);
    if (saved_step == good) {
        char name[64];
        snprintf(name, sizeof name, "checkpoint-%d.h5", good);
        return s->rank == 0 ? ckpt_mark_latest(c->output_dir, name, c->save_total_limit, e) : 0;
    }
    return save_checkpoint(s, opt, c, plan, good, config_json, e);
}

int train_run(const run_config *c, int argc, char **argv, errbuf *e)
{
    int sched_id = lr_schedule_from_name(c->lr_scheduler_type);
    if (sched_id < 0)
        return err_set(e, "--lr_scheduler_type: '%s' is not one of constant, constant_with_warmup, linear, cosine",
                       c->lr_scheduler_type);
    int rc = -1;
    session s = {0};
    run_data rd;
    dataset data = {0}, eval_data = {0};
    sampler smp = {0};
    optimizer opt = {0};
    train_log log = {0};
    preempt_watch pw = {0};
    run_lock lock = {.fd = -1};
    char *config_json = NULL;
    const int do_eval = strcmp(c->eval_strategy, "no") != 0;
    if (preempt_begin(&pw, c, log_rank(), e) != 0)
        goto out;
    if (open_run(&s, &rd, &data, c, 1, argc, argv, e) != 0)
        goto out;
    if (do_eval && !dataset_has_split(&rd.o, 1)) {
        err_set(e, "--eval_strategy %s: no evaluation split (the second of --splits '%s' in %s)", c->eval_strategy,
                rd.o.splits, c->dataset_name);
        goto out;
    }
    if (do_eval && dataset_load(&rd.o, 1, rd.tok, s.m.cfg.vocab_size, &eval_data, e) != 0)
        goto out;
    if (s.rank == 0) {
        if (mkdir(c->output_dir, 0777) != 0 && errno != EEXIST) {
            err_set(e, "--output_dir %s: cannot create: %s", c->output_dir, strerror(errno));
            goto out;
        }
        if (run_lock_take(&lock, c->output_dir, e) != 0)
            goto out;
    }

    const int B = c->per_device_train_batch_size;
    sampler_init(&smp, data.n_rows, B, (uint64_t)c->seed);
    const size_t n_batches = sampler_n_batches(&smp);
    const step_plan plan = plan_steps(c, n_batches, s.world);
    int longest = longest_row(&data);
    if (do_eval && longest_row(&eval_data) > longest)
        longest = longest_row(&eval_data);
    model_prepare(&s.m, B > c->per_device_eval_batch_size || !do_eval ? B : c->per_device_eval_batch_size, longest,
                  c->gradient_checkpointing);
    const int eval_every = !strcmp(c->eval_strategy, "steps") ? (c->eval_steps > 0 ? c->eval_steps : c->logging_steps)
                         : !strcmp(c->eval_strategy, "epoch") ? (int)plan.steps_per_epoch
                                                              : 0;
    optim_init(&opt, s.be, s.f.n_ranges, s.f.shard_elems, (float)c->adam_beta1, (float)c->adam_beta2,
               (float)c->adam_epsilon, (float)c->weight_decay, s.acc.offload_params);
    s.m.training = 1;
    const lr_schedule sched = (lr_schedule)sched_id;
    log_info("shardtune train: %zu rows, %zu micro-batches of %d per epoch, %d rank(s) x %d accumulation, "
             "%zu steps per epoch, %d steps (warmup %d), %zu trainable parameters (LoRA r=%d alpha=%g)",
             data.n_rows, n_batches, B, s.world, c->gradient_accumulation_steps, plan.steps_per_epoch,
             plan.total_steps, plan.warmup_steps, model_n_trainable(&s.m), s.m.lora.r, s.m.lora.alpha);

    int start_step = 0;
    if (c->resume_from_checkpoint && resume(&s, &opt, c, &plan, &start_step, e) != 0)
        goto out;
    if (s.rank == 0 && (train_log_open(&log, c, start_step, e) != 0 || plot_train_args(c, s.world, e) != 0))
        goto out;
    config_json = flags_json(argc, argv);
    const int save_every = !strcmp(c->save_strategy, "steps")   ? c->save_steps
                           : !strcmp(c->save_strategy, "epoch") ? (int)plan.steps_per_epoch
                                                                : 0;
    bad_steps bad;
    bad_steps_init(&bad, c->max_bad_steps, start_step);
    int saved_step = -1; /* the step of this run's newest checkpoint */
    progress prog;
    start_progress(&prog, &s, c, start_step, plan.total_steps);
    double t_start = monotonic_seconds(), t_log = t_start, tokens_since_log = 0.0;
    for (int step = start_step; step < plan.total_steps; step++) {
        if (preempt_check(&pw, s.cm, s.rank)) { /* a step boundary: every rank stops here, or none */
            progress_end(&prog);
            rc = stop_preempted(&s, &opt, c, &plan, step, start_step, saved_step, config_json, &pw, e);
            goto out;
        }
        double n_targets, n_tokens, row_len;
        double loss_sum = run_step(&s, c, &data, &smp, &plan, step, &n_targets, &n_tokens, &row_len);
        tokens_since_log += n_tokens;
        fault_poison_grads(&s.f, step + 1, s.rank, s.world); /* a test hook (fault_inject.h) */
        double grad_norm = fsdp_finish_grads(&s.f);
        double lr = c->learning_rate * lr_schedule_factor(sched, step, plan.warmup_steps, plan.total_steps);
        double loss = n_targets > 0 ? loss_sum / n_targets : 0.0;
        double ep = (double)(step + 1) / (double)plan.steps_per_epoch;
        /* judged before anything is applied: a bad step changes nothing */
        step_verdict verdict = bad_steps_judge(&bad, &log, step + 1, ep, loss, grad_norm);
        if (verdict == STEP_STOP) {
            char kept[4200];
            if (save_last_good(&s, &opt, c, &plan, bad.last_good, saved_step, config_json, kept, sizeof kept, e) == 0)
                bad_steps_refuse(&bad, step + 1, loss, grad_norm, kept, e);
            goto out;
        }
        if (verdict == STEP_APPLY) {
            optim_clip(&opt, s.be, s.f.grad_shards, grad_norm, c->max_grad_norm);
            optim_step(&opt, s.be, s.f.param_shards, s.f.grad_shards, (float)lr);
        }
        const int log_now = verdict == STEP_APPLY && ((step + 1) % c->logging_steps == 0 || step + 1 == plan.total_steps);
        double t = monotonic_seconds();
        double tps = tokens_since_log / (t - t_log > 1e-9 ? t - t_log : 1e-9);
        if (verdict == STEP_APPLY)
            progress_step(&prog,
                          &(progress_step_info){step + 1, ep, loss, lr, grad_norm, n_tokens, row_len, tps,
                                                s.be->peak_total_bytes},
                          log_now);
        if (log_now) {
            if (train_log_step(&log, step + 1, ep, loss, lr, grad_norm, tps, progress_mfu(&prog, row_len, tps),
                               s.be->peak_total_bytes, e) != 0)
                goto out;
            t_log = t;
            tokens_since_log = 0.0;
        }
        if (eval_every && ((step + 1) % eval_every == 0 || step + 1 == plan.total_steps)) {
            double n_eval, eval_loss = evaluate(&s, &eval_data, c->per_device_eval_batch_size, &n_eval, &prog);
            double ep = (double)(step + 1) / (double)plan.steps_per_epoch;
            if (train_log_eval(&log, step + 1, ep, eval_loss, n_eval, e) != 0)
                goto out;
            log_info("step %d/%d | eval_loss %.4f (%.0f tokens)", step + 1, plan.total_steps, eval_loss, n_eval);
        }
        if (save_every && (step + 1) % save_every == 0) {
            progress_live(&prog, "saving checkpoint-%d.h5 ...", step + 1);
            if (save_checkpoint(&s, &opt, c, &plan, step + 1, config_json, e) == 0)
                saved_step = step + 1;
            else if (strcmp(c->save_on_error, "continue") != 0)
                goto out;
            else /* the previous checkpoint and latest stand; the next save tries again */
                log_info("%s; training goes on (--save_on_error continue)", e->msg);
            if (s.rank == 0)
                plot_train_draw(c->output_dir, 0);
        }
    }
    progress_end(&prog);
    log_info("trained %d steps in %.1f s", plan.total_steps, monotonic_seconds() - t_start);
    if (bad.total)
        log_info("%d step(s) skipped for a non-finite loss or gradient norm (see metrics.jsonl)", bad.total);
    if (save_adapter(&s, c->output_dir, c->model_name_or_path, e) != 0)
        goto out;
    if (s.rank == 0 && run_data_save_tokenizer(&rd, c->output_dir, e) != 0)
        goto out;
    log_info("adapter written to %s (adapter_config.json, adapter_model.safetensors)", c->output_dir);
    char summary[4096];
    snprintf(summary, sizeof summary, "%s/summary.json", c->output_dir);
    if (session_report(&s, summary, e) != 0)
        goto out;
    if (s.rank == 0)
        plot_train_draw(c->output_dir, 1);
    rc = 0;
out:
    /* A pre-empted run keeps its handlers until the process exits: the
     * batch system may signal again while the ranks finalize (srun
     * --kill-on-bad-exit does once the first rank exits 75), and every rank
     * must still exit 75. */
    if (rc != TRAIN_STOPPED)
        preempt_end(&pw);
    if (train_log_close(&log, rc != -1 ? e : NULL) != 0)
        rc = -1;
    if (opt.n_ranges)
        optim_free(&opt, s.be);
    sampler_free(&smp);
    dataset_free(&data);
    dataset_free(&eval_data);
    session_close(&s);
    run_data_free(&rd);
    free(config_json);
    run_lock_release(&lock);
    return rc;
}

/* ------------------------------------------------------------------ */

int eval_run(const run_config *c, int argc, char **argv, errbuf *e)
{
    int rc = -1;
    session s = {0};
    run_data rd;
    dataset data = {0};
    /* eval reads the first of --splits (a file: the file) */
    if (open_run(&s, &rd, &data, c, 0, argc, argv, e) != 0)
        goto out;
    model_prepare(&s.m, c->per_device_eval_batch_size, longest_row(&data), 0);
    double n_targets;
    double loss = evaluate(&s, &data, c->per_device_eval_batch_size, &n_targets, NULL);
    if (n_targets <= 0) {
        err_set(e, "%s: no tokens to evaluate (every row shorter than 2 tokens or fully ignored)", c->dataset_name);
        goto out;
    }
    if (c->json)
        log_result("{\"eval_loss\": %.9g, \"eval_tokens\": %.0f, \"eval_rows\": %zu}", loss, n_targets, data.n_rows);
    else
        log_result("eval_loss: %.6f", loss);
    rc = 0;
out:
    dataset_free(&data);
    session_close(&s);
    run_data_free(&rd);
    return rc;
}

/* ------------------------------------------------------------------ */

/* shardtune export CHECKPOINT --out DIR: the run's flags come from the
 * checkpoint; its model is opened as training opened it, the checkpoint
 * loaded into the shards, and the adapter written as training writes it. */
int export_run(const char *checkpoint, const char *out_dir, errbuf *e)
{
    char *config_json = NULL;
    if (ckpt_read_config(checkpoint, &config_json, e) != 0)
        return -1;
    json_t *list = json_loads(config_json, 0, NULL);
    free(config_json);
    if (!json_is_array(list)) {
        json_decref(list);
        return err_set(e, "%s: its config attribute is not a list of flags", checkpoint);
    }
    int argc = (int)json_array_size(list);
    char **argv = xcalloc((size_t)argc + 1, sizeof *argv);
    for (int i = 0; i < argc; i++)
        argv[i] = xstrdup(json_is_string(json_array_get(list, (size_t)i)) ? json_string_value(json_array_get(list, (size_t)i)) : "");
    json_decref(list);
    int rc = -1;
    run_config c;
    session s = {0};
    run_data rd;
    optimizer opt = {0};
    memset(&rd, 0, sizeof rd);
    if (config_parse(&c, CMD_TRAIN, argc, argv, e) != 0)
        goto out_argv;
    if (run_data_prepare(&rd, &c, e) != 0 || session_open(&s, &c, 1, rd.vocab_size, argc, argv, e) != 0)
        goto out;
    optim_init(&opt, s.be, s.f.n_ranges, s.f.shard_elems, 0.9f, 0.999f, 1e-8f, 0.0f, s.acc.offload_params);
    ckpt_meta meta;
    if (ckpt_load(&s.f, &opt, &meta, checkpoint, e) != 0)
        goto out;
    if (s.rank == 0 && mkdir(out_dir, 0777) != 0 && errno != EEXIST) {
        err_set(e, "--out %s: cannot create: %s", out_dir, strerror(errno));
        goto out;
    }
    if (save_adapter(&s, out_dir, c.model_name_or_path, e) != 0)
        goto out;
    if (s.rank == 0 && run_data_save_tokenizer(&rd, out_dir, e) != 0)
        goto out;
    log_info("exported %s (step %d) to %s", checkpoint, meta.global_step, out_dir);
    rc = 0;
out:
    if (opt.n_ranges)
        optim_free(&opt, s.be);
    session_close(&s);
    run_data_free(&rd);
    config_free(&c);
out_argv:
    for (int i = 0; i < argc; i++)
        free(argv[i]);
    free(argv);
    return rc;
}
