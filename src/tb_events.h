/* tb_events.h: TensorBoard event files (events.out.tfevents.*), scalars
 * only: what transformers' TensorBoardCallback writes for a run's logs.
 *
 * A file is a sequence of TFRecords, each one serialized tensorboard.Event
 * (src/tb_event.proto): first the file version, then one Event per scalar. */
#ifndef SHARDTUNE_TB_EVENTS_H
#define SHARDTUNE_TB_EVENTS_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

typedef struct tb_writer tb_writer;

/* Creates dir (mkdir -p) and a new file in it,
 * events.out.tfevents.<unix time>.<host>.<pid> (the pid keeps two runs of
 * one second apart; TensorBoard reads every file of the directory), and
 * writes the "brain.Event:2" record.  NULL and e set on failure. */
tb_writer *tb_open(const char *dir, errbuf *e);

/* A SessionLog START at step: TensorBoard's reader then drops what it read
 * (from this directory's earlier files) at steps >= step.  A run that
 * starts at step 1, or resumes a checkpoint of step N at N + 1, thus shows
 * what metrics.jsonl holds rather than the old run's later steps too.
 * 0, or -1 with e set. */
int tb_session_start(tb_writer *w, int64_t step, errbuf *e);

/* One scalar (stored as float32, as TensorBoard stores simple_value) at a
 * step, flushed so that a running TensorBoard sees it.  0, or -1 with e set. */
int tb_scalar(tb_writer *w, int64_t step, const char *tag, double value, errbuf *e);

/* Closes and frees w (NULL is fine): 0, or -1 with e set when a write failed. */
int tb_close(tb_writer *w, errbuf *e);

/* The file's path (for messages). */
const char *tb_path(const tb_writer *w);

/* The masked CRC32C that TFRecord framing stores (exposed for the tests). */
uint32_t tb_masked_crc32c(const void *data, size_t n_bytes);

#endif
