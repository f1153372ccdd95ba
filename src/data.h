/* data.h: datasets, packing and micro-batches.
 *
 * dataset_load reads what PEFT's examples/sft/train.py trains on (with
 * TRL's SFTTrainer): .jsonl or .json files, or a directory with one file per
 * split; rows of plain text (--dataset_text_field), conversations
 * ("messages" [{role, content}] or ShareGPT "conversations" [{from, value}])
 * rendered by PEFT's chatml/zephyr template (chat.h) or the model's own
 * (chat_model.h), or pre-tokenized "input_ids" with
 * optional "labels" (-100 = not trained on).  Texts are tokenized, then
 * truncated to max_seq_len or packed (wrapped, or best-fit decreasing with
 * document boundaries kept).  Micro-batches are right-padded to their
 * longest row; targets are the labels shifted by one, as Hugging Face's
 * causal-LM loss does. */
#ifndef SHARDTUNE_DATA_H
#define SHARDTUNE_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "chat.h"
#include "log.h"
#include "tokenizer.h"

enum { IGNORE_INDEX = -100 };

typedef struct dataset {
    size_t n_rows;
    int *len;           /* tokens per row after truncation */
    int32_t **ids;
    int32_t **labels;   /* NULL entry: labels = ids */
    int32_t **seg;      /* NULL entry: one document; else the document of each
                         * token (best-fit packing: positions restart at each
                         * document, attention stays inside it) */
    size_t cap_rows;    /* allocated entries of the arrays above */
} dataset;

void dataset_free(dataset *d);

typedef enum packing_strategy { PACK_WRAPPED, PACK_BFD } packing_strategy;

/* The data flags of train.py and TRL (config.h holds them as strings). */
typedef struct data_options {
    const char *dataset_name;       /* a .jsonl / .json file, or a directory of <split>.jsonl|.json */
    const char *splits;             /* "train,test": the first is trained on, the second evaluated */
    const char *dataset_text_field; /* the text column ("text"; PEFT's chat runs use "content") */
    chat_format chat_format;        /* conversations are rendered with it, or with: */
    const struct chat_model *chat_model; /* the model's own template (CHAT_NONE only; NULL: none) */
    int packing;
    packing_strategy packing_strategy;
    int append_concat_token;        /* packing: EOS after each document */
    int add_special_tokens;         /* the tokenizer's BOS/EOS around each text */
    int assistant_only_loss;        /* labels only on assistant turns */
    int max_seq_len;
} data_options;

/* train.py's defaults: text field "text", splits "train,test", no chat
 * template (the caller sets chat_model), no packing (wrapped when on), no concat token, no special
 * tokens, loss on every token, 512 tokens. */
void data_options_default(data_options *o);
/* The options of a run's flags (config.h); o points into c's strings. */
struct run_config;
int data_options_from_config(const struct run_config *c, data_options *o, errbuf *e);
/* "wrapped" or "bfd". */
int packing_strategy_from_name(const char *name, packing_strategy *s, errbuf *e);

/* 1 when split (0 train, 1 eval) is named in o->splits and present: a
 * directory holds <name>.jsonl or <name>.json; a single file is split 0
 * only. */
int dataset_has_split(const data_options *o, int split);

/* Loads split (0: the first of o->splits, 1: the second).  tok turns text
 * into ids (NULL only for input_ids data); with a chat format it must have
 * been through chat_setup_tokenizer.  Every id is checked to be in
 * [0, vocab_size).  A bad row is an error naming the file and line. */
int dataset_load(const data_options *o, int split, const tokenizer *tok, int vocab_size, dataset *d, errbuf *e);

/* Appends a row; the dataset takes ids, labels (NULL: = ids) and seg (NULL:
 * one document). */
void dataset_push(dataset *d, int32_t *ids, int32_t *labels, int32_t *seg, int len);

/* Packing, from documents (rows of any length, no seg) to rows of at most
 * seq tokens; docs is left as it was.
 * wrapped (TRL's pack_dataset "wrapped"): all documents end to end, cut
 * every seq tokens; the last, shorter block is kept.  Positions run on
 * across documents and attention sees the whole block, as TRL's does.
 * bfd (TRL's "bfd"): each document truncated to seq, taken longest first
 * (ties in data order) into the fullest bin it fits (ties: the bin that
 * reached that space first), else a new bin; bins in order of creation.
 * A document is never split; seg numbers the documents of a row 0, 1, ...
 * so that positions restart and attention stays inside each. */
void dataset_pack_wrapped(const dataset *docs, int seq, dataset *out);
void dataset_pack_bfd(const dataset *docs, int seq, dataset *out);
/* Without packing: each row cut to its first seq tokens (in place). */
void dataset_truncate(dataset *d, int seq);

/* A host micro-batch, [batch * seq] each. */
typedef struct host_batch {
    int batch, seq;
    int32_t *ids, *targets, *pos;
    int32_t *seg;       /* NULL unless a row has documents (then padding is -1) */
    size_t n_targets;   /* targets != IGNORE_INDEX */
} host_batch;

/* Builds the micro-batch of rows[0..n-1], padding with pad_id. */
void dataset_batch(const dataset *d, const size_t *rows, int n, int pad_id, host_batch *hb);
void host_batch_free(host_batch *hb);

/* The data order of the training loop: micro-batch k of epoch e holds rows
 * perm_e[k*B .. (k+1)*B), perm_e a seeded permutation (rng.h). */
typedef struct sampler {
    size_t n_rows;
    int batch_size;
    uint64_t seed;
    int epoch;          /* of the current permutation */
    size_t *perm;
} sampler;

void sampler_init(sampler *s, size_t n_rows, int batch_size, uint64_t seed);
size_t sampler_n_batches(const sampler *s);
/* Rows of micro-batch k of epoch e (returns their count, <= batch_size). */
int sampler_batch(sampler *s, int epoch, size_t k, const size_t **rows);
void sampler_free(sampler *s);
/* The data-parallel split: optimizer step `step_in_epoch` spans G x N
 * consecutive micro-batches of the epoch; rank r's t-th pass (t < G) runs
 * micro-batch step_in_epoch x G x N + r + t x N, or none (-1) when that is
 * past the step's end or the epoch's n_batches.  Every rank count gives the
 * same global batches as one rank with N x G accumulation. */
long sampler_step_micro(size_t step_in_epoch, int G, int world, int rank, int t, size_t n_batches);

#endif
