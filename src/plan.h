/* plan.h: `shardtune plan`: expected peak bytes per rank by category and
 * bytes each rank sends per optimizer step, from config.json alone. */
#ifndef SHARDTUNE_PLAN_H
#define SHARDTUNE_PLAN_H

#include "config.h"

int plan_run(const run_config *c, int argc, char **argv, errbuf *e);

#endif
