/* generate.h: `shardtune generate`: continue a prompt with the model (and
 * adapter), greedy at temperature 0, with a KV cache. */
#ifndef SHARDTUNE_GENERATE_H
#define SHARDTUNE_GENERATE_H

int generate_main(int argc, char **argv);

#endif
