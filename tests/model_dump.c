/* model_dump: one forward + backward of the first --rows rows of a dataset
 * (loaded with train's data flags: chat template, packing, ...), written as
 * safetensors (logits, loss, every LoRA gradient under its PEFT key, and dx,
 * the gradient of the loss by the embedding output; loss_sum and n_targets in
 * the metadata) for comparison with the Python reference.  In eval mode (as
 * PEFT's model.eval()) unless --dropout True: then the adapter's LoRA dropout
 * is on, with the masks of the first micro-batch of `shardtune train --seed
 * S` (key rng_hash(S, 0)), which tests/ref/reference_common.py reproduces.
 * --gradient_checkpointing
 * recomputes each layer as train does.  Runs under mpirun
 * with any number of ranks and any accelerate config (--config_file): rank
 * 0 writes.  A test tool, not part of the installed program. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "config.h"
#include "rng.h"
#include "safetensors.h"
#include "session.h"

/* MODEL_DUMP_FROZEN=FILE: every frozen tensor as the shards store it (U8,
 * its storage bytes: a 4-bit weight's packed codes and block state, as
 * src/weight4.h lays them out), gathered from the shards, so that tests can
 * compare the stored bytes across world sizes and with bitsandbytes. */
static void dump_frozen(session *s, const char *path, int rank)
{
    st_writer *w = st_writer_new();
    model *m = &s->m;
    size_t n = 0;
    for (int ui = 0; ui < m->n_units; ui++)
        n += (size_t)m->units[ui].n_params;
    uint8_t **bufs = xcalloc(n ? n : 1, sizeof *bufs);
    size_t k = 0;
    for (int ui = 0; ui < m->n_units; ui++)
        for (int i = 0; i < m->units[ui].n_params; i++) {
            const param_entry *p = &m->units[ui].params[i];
            if (p->trainable)
                continue;
            int64_t bytes = (int64_t)storage_bytes(p->storage, p->n_elems);
            bufs[k] = xmalloc((size_t)bytes);
            fsdp_gather_frozen_tensor(&s->f, ui, p, bufs[k]);
            st_writer_add(w, p->name, ST_U8, 1, &bytes, bufs[k++]);
        }
    errbuf e;
    if (rank == 0 && st_writer_write(w, path, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    st_writer_free(w);
    while (k)
        free(bufs[--k]);
    free(bufs);
}

int main(int argc, char **argv)
{
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_SERIALIZED, &provided);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    log_set_rank(rank, size);
    run_config c;
    errbuf e;
    if (config_parse(&c, CMD_DUMP, argc - 1, argv + 1, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    data_options dopt;
    if (data_options_from_config(&c, &dopt, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    /* text and chat data need the model's tokenizer; input_ids data does not */
    tokenizer *tok = NULL;
    char tok_path[4096];
    struct stat st;
    snprintf(tok_path, sizeof tok_path, "%s/tokenizer.json", c.model_name_or_path);
    if (stat(tok_path, &st) == 0) {
        if (!(tok = tokenizer_load(c.model_name_or_path, &e)) || chat_setup_tokenizer(tok, dopt.chat_format, &e) != 0)
            die(EXIT_FAILURE_RUN, "%s", e.msg);
    }
    /* chat tokens grow the vocabulary: PEFT resizes to a multiple of 8 */
    int vocab = tok && dopt.chat_format != CHAT_NONE ? ((int)tokenizer_vocab_size(tok) + 7) / 8 * 8 : 0;
    session s;
    if (session_open(&s, &c, 0, vocab, argc - 1, argv + 1, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    model *m = &s.m;
    if (getenv("MODEL_DUMP_FROZEN"))
        dump_frozen(&s, getenv("MODEL_DUMP_FROZEN"), rank);
    dataset d;
    if (dataset_load(&dopt, 0, tok, m->cfg.vocab_size, &d, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    int n = c.rows < (int)d.n_rows ? c.rows : (int)d.n_rows;
    size_t *rows = xmalloc((size_t)n * sizeof *rows);
    for (int i = 0; i < n; i++)
        rows[i] = (size_t)i;
    host_batch hb;
    dataset_batch(&d, rows, n, session_pad_id(&s), &hb);
    model_prepare(m, hb.batch, hb.seq, c.gradient_checkpointing);
    m->training = c.dump_dropout;
    m->dropout_key = rng_hash((uint64_t)c.seed, 0); /* train's step 0, micro-batch 0 */
    size_t n_logits = (size_t)hb.batch * hb.seq * m->cfg.vocab_size;
    float *logits = xmalloc(n_logits * sizeof(float));
    fsdp_zero_grads(&s.f);
    /* every rank runs the same batch: the gradients are then N x one rank's */
    float scale = hb.n_targets ? 1.0f / ((float)hb.n_targets * (float)size) : 0.0f;
    double loss_sum = session_run_batch(&s, &hb, scale, 1, logits);
    size_t n_dx = (size_t)hb.batch * hb.seq * m->cfg.hidden_size;
    float *dx = xmalloc(n_dx * sizeof(float));
    model_input_grad(m, (size_t)hb.batch * hb.seq, dx);
    for (size_t i = 0; i < n_dx; i++) /* this rank's share of the mean: the whole of it */
        dx[i] *= (float)size;
    fsdp_finish_grads(&s.f);
    float loss = hb.n_targets ? (float)(loss_sum / (double)hb.n_targets) : 0.0f;

    st_writer *w = st_writer_new();
    int64_t lshape[3] = {hb.batch, hb.seq, m->cfg.vocab_size}, one = 1;
    st_writer_add(w, "logits", ST_F32, 3, lshape, logits);
    st_writer_add(w, "loss", ST_F32, 1, &one, &loss);
    int64_t dxshape[3] = {hb.batch, hb.seq, m->cfg.hidden_size};
    st_writer_add(w, "dx", ST_F32, 3, dxshape, dx);
    /* the unnormalised sum and its count, for packed vs unpacked runs; as
     * metadata, so that the tensors stay those the Python reference writes */
    char num[64];
    snprintf(num, sizeof num, "%.17g", loss_sum);
    st_writer_metadata(w, "loss_sum", num);
    snprintf(num, sizeof num, "%zu", hb.n_targets);
    st_writer_metadata(w, "n_targets", num);
    float **grads = xcalloc((size_t)m->n_units, sizeof *grads);
    for (int ui = 0; ui < m->n_units; ui++) {
        model_unit *u = &m->units[ui];
        if (!u->n_train_elems)
            continue;
        grads[ui] = xmalloc(u->n_train_elems * sizeof(float));
        fsdp_gather_trainable(&s.f, ui, 1, grads[ui]);
        for (int i = 0; i < u->n_params; i++)
            if (u->params[i].trainable)
                st_writer_add(w, u->params[i].name, ST_F32, u->params[i].n_dims, u->params[i].shape,
                              grads[ui] + u->params[i].offset);
    }
    if (rank == 0 && st_writer_write(w, c.out, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    st_writer_free(w);
    for (int ui = 0; ui < m->n_units; ui++)
        free(grads[ui]);
    free(grads);
    free(logits);
    free(dx);
    free(rows);
    host_batch_free(&hb);
    dataset_free(&d);
    tokenizer_free(tok);
    session_close(&s);
    config_free(&c);
    MPI_Finalize();
    return 0;
}
