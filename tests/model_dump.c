/* model_dump: one forward + backward of the first --rows rows of a dataset,
 * written as safetensors (logits, loss, and every LoRA gradient under its
 * PEFT key) for comparison with the Python reference.  A test tool, not
 * part of the installed program. */
#include <mpi.h>
#include <stdlib.h>

#include "config.h"
#include "safetensors.h"
#include "train.h"

int main(int argc, char **argv)
{
    MPI_Init(&argc, &argv);
    run_config c;
    errbuf e;
    if (config_parse(&c, CMD_DUMP, argc - 1, argv + 1, &e) != 0)
        die(EXIT_USAGE, "%s", e.msg);
    backend *be = train_backend_create();
    model m;
    if (train_load_model(&m, &c, 0, be, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    dataset d;
    if (dataset_load_jsonl(c.dataset_name, c.max_seq_len, m.cfg.vocab_size, &d, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    int n = c.rows < (int)d.n_rows ? c.rows : (int)d.n_rows;
    size_t *rows = xmalloc((size_t)n * sizeof *rows);
    for (int i = 0; i < n; i++)
        rows[i] = (size_t)i;
    host_batch hb;
    model_batch mb;
    dataset_batch(&d, rows, n, m.cfg.pad_token_id >= 0 ? m.cfg.pad_token_id : 0, &hb);
    model_prepare(&m, hb.batch, hb.seq, 0);
    train_upload_batch(be, &hb, &mb);
    size_t n_logits = (size_t)hb.batch * hb.seq * m.cfg.vocab_size;
    float *logits = xmalloc(n_logits * sizeof(float));
    model_zero_grads(&m);
    double loss_sum = model_step(&m, &mb, hb.n_targets ? 1.0f / (float)hb.n_targets : 0.0f, 1, logits);
    float loss = hb.n_targets ? (float)(loss_sum / (double)hb.n_targets) : 0.0f;

    st_writer *w = st_writer_new();
    int64_t lshape[3] = {hb.batch, hb.seq, m.cfg.vocab_size}, one = 1;
    st_writer_add(w, "logits", ST_F32, 3, lshape, logits);
    st_writer_add(w, "loss", ST_F32, 1, &one, &loss);
    float **grads = xcalloc((size_t)m.n_units, sizeof *grads);
    for (int ui = 0; ui < m.n_units; ui++) {
        model_unit *u = &m.units[ui];
        if (!u->n_train_elems)
            continue;
        grads[ui] = xmalloc(u->n_train_elems * sizeof(float));
        be->copy_to_host(be, grads[ui], u->grad, u->n_train_elems * sizeof(float));
        for (int i = 0; i < u->n_params; i++)
            if (u->params[i].trainable)
                st_writer_add(w, u->params[i].name, ST_F32, 2, u->params[i].shape, grads[ui] + u->params[i].offset);
    }
    if (st_writer_write(w, c.out, &e) != 0)
        die(EXIT_FAILURE_RUN, "%s", e.msg);
    st_writer_free(w);
    for (int ui = 0; ui < m.n_units; ui++)
        free(grads[ui]);
    free(grads);
    free(logits);
    free(rows);
    train_release_batch(be, &mb);
    host_batch_free(&hb);
    dataset_free(&d);
    model_free(&m);
    config_free(&c);
    be->destroy(be);
    MPI_Finalize();
    return 0;
}
