/* session.h: what every model-running command sets up the same way: the
 * backend, the accelerate configuration, the communicator, the model's
 * tables and its sharded buffers (frozen weights and adapter loaded). */
#ifndef SHARDTUNE_SESSION_H
#define SHARDTUNE_SESSION_H

#include "accel_config.h"
#include "backend.h"
#include "comm.h"
#include "config.h"
#include "data.h"
#include "fsdp.h"
#include "model.h"

typedef struct session {
    backend *be;
    comm *cm;
    accel_config acc;
    model m;
    fsdp f;
    int rank, world;
    size_t load_peak_rss_bytes; /* the process's peak resident memory once the model is loaded */
} session;

/* want_lora: build adapters from the LoRA flags (train) when no --adapter
 * is given; otherwise a model without adapters (eval).  vocab_size: the
 * tokenizer's size once chat tokens were added (0: config.json's); an
 * adapter that saved embedding layers sets it too.  argc/argv are the
 * command's flags: every rank checks that all ranks got the same ones and
 * the same accelerate configuration. */
int session_open(session *s, const run_config *c, int want_lora, int vocab_size, int argc, char **argv, errbuf *e);
void session_close(session *s);
/* The accelerate configuration of a run of `world` ranks: defaults, then
 * --config_file, then accelerate's environment variables; num_processes
 * must equal world. */
int session_load_accel_config(accel_config *acc, const run_config *c, int world, errbuf *e);

/* A micro-batch on the device, and its release. */
void session_upload_batch(session *s, const host_batch *hb, model_batch *mb);
void session_release_batch(session *s, model_batch *mb);
/* Runs host batch hb (NULL: an empty pass that only takes part in the
 * collectives, for a rank with no micro-batch left) and returns its loss sum. */
double session_run_batch(session *s, const host_batch *hb, float grad_scale, int do_backward, float *logits);
int session_pad_id(const session *s);
/* Sum over all ranks (in place). */
void session_sum(session *s, double *values, int n);
/* Prints per-rank peak memory by category, traffic and hidden fraction;
 * with json_path (rank 0 writes it) also as one JSON object. */
int session_report(session *s, const char *json_path, errbuf *e);

#endif
