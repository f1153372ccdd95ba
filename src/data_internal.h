/* data_internal.h: what the data files (data.c, data_rows.c, data_pack.c)
 * share and nothing else includes. */
#ifndef SHARDTUNE_DATA_INTERNAL_H
#define SHARDTUNE_DATA_INTERNAL_H

#include <jansson.h>

#include "chat.h"
#include "data.h"

/* The "input_ids" (and optional "labels") of a row, cut to max_len, every id
 * in [0, vocab_size); *ids and *labels (NULL when absent) are malloc'ed. */
int data_row_ids(json_t *row, const char *path, size_t line, int max_len, int vocab_size, int32_t **ids,
                 int32_t **labels, int *n, errbuf *e);


/* Turns rows into documents (untruncated, unpacked) appended to docs. */
typedef struct doc_reader {
    const data_options *o;
    const tokenizer *tok;  /* NULL: input_ids rows only */
    int vocab_size;
    int eos_id;            /* appended to each document when packing with append_concat_token */
    const char *path;      /* for messages */
    dataset *docs;
} doc_reader;

/* The messages of a conversation row's "messages" or ShareGPT
 * "conversations" (key), pointing into the JSON tree; ShareGPT roles become
 * user / assistant / system.  *out is malloc'ed. */
int data_row_messages(json_t *list, const char *key, const char *path, size_t line, chat_message **out,
                      size_t *n_out, errbuf *e);

/* The conversation of a row's key ("messages" or "conversations") as a
 * model's chat template gets it: "messages" as the row has them (every key of
 * every message, as TRL passes them), ShareGPT turns as {role, content}
 * mapped as data_row_messages maps them.  NULL and e set when it is not a
 * (non-empty) list of messages. */
json_t *data_row_template_messages(json_t *row, const char *key, const char *path, size_t line, errbuf *e);

/* One row of the file at line `line` (data_rows.c). */
int data_row_to_doc(doc_reader *r, json_t *row, size_t line, errbuf *e);

#endif
