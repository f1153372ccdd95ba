/* run_data.h: what a run needs before the model exists: the data options
 * of its flags, the tokenizer (with the chat template's tokens added) and
 * the vocabulary size the model must have for them. */
#ifndef SHARDTUNE_RUN_DATA_H
#define SHARDTUNE_RUN_DATA_H

#include "chat_model.h"
#include "config.h"
#include "data.h"
#include "tokenizer.h"

typedef struct run_data {
    data_options o;
    tokenizer *tok;   /* NULL when neither the adapter nor the model has tokenizer.json */
    int vocab_size;   /* 0: the model's own; else resized for added tokens (multiple of 8) */
    chat_model *chat; /* without --chat_template_format: the tokenizer's own template or
                       * --chat_template_path's (NULL: none); o.chat_model points to it */
} run_data;

/* The tokenizer (and its chat template) comes from the adapter directory
 * when it has one (a trained chat adapter carries its added tokens and
 * template), else from the model. */
int run_data_prepare(run_data *rd, const run_config *c, errbuf *e);
void run_data_free(run_data *rd);
/* The pad id for micro-batches: the tokenizer's, else the model's, else 0. */
int run_data_pad_id(const run_data *rd, int model_pad_id);
/* Writes tokenizer.json and tokenizer_config.json (with the chat template
 * when one is used, also one read from a file) into dir, so the adapter directory is self-contained. */
int run_data_save_tokenizer(const run_data *rd, const char *dir, errbuf *e);

#endif
