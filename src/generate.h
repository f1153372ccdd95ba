/* generate.h: `shardtune generate`: continue a prompt with the model (and
 * adapter), greedy at temperature 0, with a KV cache. */
#ifndef SHARDTUNE_GENERATE_H
#define SHARDTUNE_GENERATE_H

#include "config.h"

int generate_run(const run_config *c, int argc, char **argv, errbuf *e);

#endif
