/* merge.h: `mpirun -np N shardtune merge --model_name_or_path BASE --adapter DIR
 * --out DIR`: a Hugging Face model directory with W + s B A merged in. */
#ifndef SHARDTUNE_MERGE_H
#define SHARDTUNE_MERGE_H

#include "config.h"

int merge_run(const run_config *c, int argc, char **argv, errbuf *e);

#endif
