/* tok_cli.c: `shardtune tokenize` without MPI or the main dispatch, so the
 * tokenizer tests can drive the command before and apart from main.c. */
#include "tokenizer.h"

int main(int argc, char **argv)
{
    return tokenize_main(argc - 1, argv + 1);
}
