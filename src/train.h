/* train.h: the training loop and evaluation. */
#ifndef SHARDTUNE_TRAIN_H
#define SHARDTUNE_TRAIN_H

#include "backend.h"
#include "config.h"
#include "data.h"
#include "model.h"

/* shardtune train: returns 0, or -1 with e set. */
int train_run(const run_config *c, errbuf *e);
/* shardtune eval: mean token loss over the dataset. */
int eval_run(const run_config *c, errbuf *e);

/* Shared by the commands and tools that run the model: the CPU backend
 * with OMP_NUM_THREADS threads (all cores when unset). */
backend *train_backend_create(void);
/* Loads the model with the LoRA configuration of the flags, or of
 * c->adapter (and its weights) when one is given. */
int train_load_model(model *m, const run_config *c, int want_lora, backend *be, errbuf *e);
/* Copies a host micro-batch to the device. */
void train_upload_batch(backend *be, const host_batch *hb, model_batch *mb);
void train_release_batch(backend *be, model_batch *mb);

#endif
