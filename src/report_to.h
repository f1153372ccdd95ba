/* report_to.h: --report_to, TrainingArguments' list of logging
 * integrations, of which this build has the local one: tensorboard. */
#ifndef SHARDTUNE_REPORT_TO_H
#define SHARDTUNE_REPORT_TO_H

#include <stddef.h>

#include "log.h"

/* Parses a comma-separated list: "none" (alone), "all", and transformers'
 * integration names.  Sets *tensorboard when the list asks for it ("all"
 * does: it is the one installed), and copies the other integrations named
 * into others ("" when none; they need services this build has no client
 * for, the caller notes it).  0, or -1 with e naming --report_to for an
 * empty entry, an unknown name or "none" beside others. */
int report_to_parse(const char *list, int *tensorboard, char *others, size_t others_size, errbuf *e);

#endif
