/* dir_make.h: mkdir -p, for the directories a command writes into. */
#ifndef SHARDTUNE_DIR_MAKE_H
#define SHARDTUNE_DIR_MAKE_H

#include "log.h"

/* Creates dir and every missing directory on the way: 0, or -1 with e set
 * ("PATH: cannot create directory: ..." / "... is not a directory"). */
int dir_make(const char *dir, errbuf *e);

#endif
